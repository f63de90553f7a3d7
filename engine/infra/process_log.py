"""Logging of the product's processes: plain text by default, JSON lines as an option
(``REHAB_LOG_FORMAT=json``, python-json-logger), third-party INFO noise quieted, and one start
line and one stop line per process.

No personal data in any log: the product logs identifiers only, and the start line masks
secrets and the credentials of database URLs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from sqlalchemy.engine import make_url

from engine.infra.heartbeats import product_version
from engine.infra.settings import Settings

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d"
#: ``component``: which of the product's processes wrote a start or stop line
#: libraries whose INFO lines are noise to an operator (one per HTTP call, per Prefect call)
QUIET = ("httpx", "httpcore", "uvicorn.access", "prefect", "alembic", "asyncio",
         "apprise", "docket", "websockets")

log = logging.getLogger("rehab.process")


def configure(settings: Settings, *, stream: Any = None) -> None:
    """Set up the root logger once per process from the settings."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={
            "asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(PLAIN))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("rehab").setLevel(settings.log_level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def masked_url(url: str) -> str:
    """A database URL with its password hidden (``***``); empty stays empty."""
    if not url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is not shown at all
        return "<unparsable>"


def settings_that_matter(settings: Settings) -> dict[str, Any]:
    """What a start line says of the configuration: no secret, no password."""
    return {
        "environment": settings.environment,
        "database": masked_url(settings.effective_database_url),
        "prefect_mirror": settings.prefect_mirror,
        "prefect_api_url": settings.prefect_api_url or "(embedded)",
        "public_base_url": settings.effective_public_base_url,
        "sender_region": settings.sender_region,
        "log_format": settings.log_format,
    }


def started(process: str, settings: Settings, **extra: Any) -> None:
    """The process's start line: what it is, its version, the settings that matter."""
    facts = {"component": process, "version": product_version(),
             **settings_that_matter(settings), **extra}
    log.info("%s started: %s", process, " ".join(f"{k}={v}" for k, v in facts.items()),
             extra={"event": "start", **facts})


def stopped(process: str, **facts: Any) -> None:
    """The process's stop line (a clean shutdown: SIGTERM or SIGINT)."""
    log.info("%s stopped: %s", process, " ".join(f"{k}={v}" for k, v in facts.items()),
             extra={"event": "stop", "component": process, **facts})
