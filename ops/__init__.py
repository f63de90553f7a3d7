"""Operating the product (issue 13): readiness, Prometheus metrics, the production topology
and the configuration reference. The processes' heartbeats, their logging set-up and request
ids are the engine's infrastructure (``engine/infra/``); nothing here is on a route's hot
path, and nothing of the engine imports it."""
