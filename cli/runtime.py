"""Assembling a worker at start-up: the job handlers beyond its core work.

The engine's worker knows nothing of Prefect; this is where an installation decides what its
workers also do (``engine/runtime/handlers.py``). Today: mirroring routes into Prefect when
``REHAB_PREFECT_MIRROR`` is on (the Prefect API of ``PREFECT_API_URL``, or
``REHAB_PREFECT_API_URL``).
"""

from __future__ import annotations

from engine.infra.settings import Settings
from engine.runtime.handlers import HandlerRegistry


def worker_handlers(settings: Settings) -> HandlerRegistry:
    """The registry of a ``rehab worker`` process. Prefect's client (a second of CPU to
    import) is loaded only by a worker that mirrors."""
    registry = HandlerRegistry()
    if settings.prefect_mirror:
        from tasks.prefect_mirror import PrefectMirrorHandler

        registry.register(PrefectMirrorHandler(settings.prefect_api_url or None))
    return registry
