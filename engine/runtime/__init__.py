"""The processes that run the use cases: the worker (``worker``) and its job handler registry
(``handlers``), the timer sweeper's loop (``sweeper``), and driving one route by hand
(``drive``). Knows nothing of Prefect: its handlers and reporters are given at start-up."""
