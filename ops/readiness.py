"""Readiness: can this deployment do its work now? (issue 13)

Required: the database answers, its schema is at the newest migration, and in production the
business clock is the system clock (no shifted or frozen ``clock_state``). Reported but not
required: Prefect's API (the mirror catches up when it returns) and the processes' heartbeats
(a silent worker is an operator's alarm, not a reason to stop taking agencies' answers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from engine.infra.clock import ClockNotRealError, require_real_clock
from engine.infra.db import SchemaNotAtHeadError, require_schema_at_head
from engine.infra.heartbeats import BeatView, read_beats
from engine.infra.settings import Settings

#: a process is silent after this many missed beats
SILENT_AFTER_BEATS = 3


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not_ready", "checks": self.checks}


def is_silent(beat: BeatView, settings: Settings) -> bool:
    """Three beats missed: the process's own beat interval (a sweeper's is its sweep
    interval), or ``heartbeat_seconds``."""
    interval = beat.counters.get("beat_interval_seconds", settings.heartbeat_seconds)
    try:
        seconds = float(interval)
    except (TypeError, ValueError):
        seconds = settings.heartbeat_seconds
    return beat.silent_seconds > SILENT_AFTER_BEATS * seconds


def check(engine: Engine, settings: Settings, *, prefect_timeout: float = 2.0) -> Readiness:
    """Run every check; ``ready`` only if each required one passed."""
    out = Readiness(ready=True)

    def fail(name: str, detail: str) -> None:
        out.ready = False
        out.checks[name] = {"ok": False, "required": True, "detail": detail}

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        out.checks["database"] = {"ok": True, "required": True}
    except SQLAlchemyError as exc:
        fail("database", f"unreachable ({type(exc).__name__})")
        return out
    try:
        out.checks["schema"] = {"ok": True, "required": True,
                                "revision": require_schema_at_head(engine)}
    except SchemaNotAtHeadError as exc:
        fail("schema", str(exc))
    if settings.environment == "production":
        try:
            require_real_clock(engine)
            out.checks["clock"] = {"ok": True, "required": True, "detail": "system clock"}
        except ClockNotRealError as exc:
            fail("clock", str(exc))
    out.checks["prefect"] = _prefect(settings, prefect_timeout)
    out.checks["processes"] = _processes(engine, settings)
    return out


def _prefect(settings: Settings, timeout: float) -> dict[str, Any]:
    if not settings.prefect_mirror:
        return {"ok": True, "required": False, "detail": "mirror off"}
    url = settings.prefect_api_url
    if not url:
        return {"ok": True, "required": False, "detail": "embedded (started by the demo)"}
    try:
        r = httpx.get(url.rstrip("/") + "/health", timeout=timeout)
        return {"ok": r.status_code == 200, "required": False, "url": url}
    except httpx.HTTPError as exc:
        return {"ok": False, "required": False, "url": url,
                "detail": f"unreachable ({type(exc).__name__}); the mirror catches up later"}


def _processes(engine: Engine, settings: Settings) -> dict[str, Any]:
    try:
        beats = read_beats(engine)
    except SQLAlchemyError as exc:
        return {"ok": False, "required": False, "detail": type(exc).__name__}
    procs = [{"process_id": b.process_id, "kind": b.kind, "holding": b.holding,
              "last_beat_seconds_ago": round(b.silent_seconds, 1),
              "silent": is_silent(b, settings)} for b in beats]
    kinds = {p["kind"] for p in procs if not p["silent"]}
    return {"ok": "worker" in kinds, "required": False, "processes": procs,
            "detail": None if "worker" in kinds else "no worker beating"}
