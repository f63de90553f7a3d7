"""Operating the product: process heartbeats, readiness, Prometheus metrics, logging set-up
(issue 13). Nothing here is on a route's hot path."""
