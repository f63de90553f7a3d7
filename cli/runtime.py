"""Assembling the job handlers of a process at start-up.

The engine's worker knows nothing of Prefect; this is where an installation decides what a
process does beyond the route's own work. Today: ``rehab mirror`` mirrors routes into
Prefect (the Prefect API of ``PREFECT_API_URL``, or ``REHAB_PREFECT_API_URL``) when
``REHAB_PREFECT_MIRROR`` is on; ``rehab worker`` has no handlers of its own.
"""

from __future__ import annotations

from engine.infra.settings import Settings
from engine.runtime.handlers import HandlerRegistry


def mirror_handlers(settings: Settings) -> HandlerRegistry:
    """The registry of a ``rehab mirror`` process (empty with the mirror off). Prefect's
    client (a second of CPU to import, 250 MB of memory) is loaded only by this process."""
    registry = HandlerRegistry()
    if settings.prefect_mirror:
        from tasks.prefect_mirror import PrefectMirrorHandler

        registry.register(PrefectMirrorHandler(settings.prefect_api_url or None))
    return registry
