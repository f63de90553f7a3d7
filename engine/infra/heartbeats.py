"""Heartbeats: each long-running process keeps its ``process_beat`` row up to date.

A worker beats every ``heartbeat_seconds`` from a task beside its loop (one small UPDATE, off
the transitions' path), a sweeper after each sweep. A clean stop writes ``stopped_at``; a
killed process just goes silent, and readiness, ``rehab status`` and ``/metrics`` show how
long ago it last beat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from sqlalchemy import Engine, delete, text, update
from sqlmodel import Session, col, select

from models.heartbeats import ProcessBeat, ProcessKind
from models.types import utcnow

log = logging.getLogger("rehab.heartbeats")

#: a process silent this long is forgotten when another one starts
FORGET_AFTER = timedelta(days=1)

_HOLDING = text("SELECT count(*) FROM job WHERE locked_by = :pid")
_TABLE = ProcessBeat.__table__  # type: ignore[attr-defined]


def product_version() -> str:
    """The installed product's version (pyproject's), or ``unknown`` when not installed."""
    try:
        return package_version("rehab-routes")
    except PackageNotFoundError:
        return "unknown"


def register(engine: Engine, process_id: str, kind: ProcessKind) -> None:
    """Start (or restart) the process's row: started and beating now, holding nothing."""
    now = utcnow()
    with Session(engine) as s:
        # processes silent for a day are gone (killed, or their container removed)
        s.execute(delete(ProcessBeat).where(col(ProcessBeat.beat_at) < now - FORGET_AFTER))
        row = s.get(ProcessBeat, process_id) or ProcessBeat(
            process_id=process_id, kind=kind, host="", pid=0, version="")
        row.kind = kind
        row.host = socket.gethostname()[:80]
        row.pid = os.getpid()
        row.version = product_version()[:40]
        row.started_at = row.beat_at = now
        row.stopped_at = None
        row.holding = 0
        row.counters = {}
        s.add(row)
        s.commit()


def beat(engine: Engine, process_id: str, counters: Mapping[str, Any], *,
         stopping: bool = False) -> int:
    """One beat: now, the jobs under the process's lease, its counters; with ``stopping``,
    also ``stopped_at`` (its last beat). Returns ``holding``."""
    now = utcnow()
    with engine.begin() as conn:
        holding = int(conn.execute(_HOLDING, {"pid": process_id}).scalar_one())
        conn.execute(update(_TABLE).where(_TABLE.c.process_id == process_id).values(
            beat_at=now, holding=holding, counters=dict(counters),
            stopped_at=now if stopping else None))
    return holding


def stopped(engine: Engine, process_id: str, counters: Mapping[str, Any]) -> None:
    """The process stopped cleanly: its last beat says so."""
    beat(engine, process_id, counters, stopping=True)


@dataclass(frozen=True)
class BeatView:
    """A process's row as readiness, ``rehab status`` and ``/metrics`` show it."""

    process_id: str
    kind: str
    host: str
    pid: int
    version: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    holding: int
    counters: dict[str, Any]
    silent_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "kind": self.kind, "host": self.host,
                "pid": self.pid, "version": self.version,
                "started_at": self.started_at.isoformat(), "beat_at": self.beat_at.isoformat(),
                "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
                "holding": self.holding, "silent_seconds": round(self.silent_seconds, 1),
                "counters": self.counters}


def read_beats(engine: Engine, *, include_stopped: bool = False) -> list[BeatView]:
    """Every process's last beat, workers first, newest first within a kind."""
    now = utcnow()
    with Session(engine) as s:
        q = select(ProcessBeat)
        if not include_stopped:
            q = q.where(col(ProcessBeat.stopped_at).is_(None))
        rows = s.exec(q.order_by(col(ProcessBeat.kind), col(ProcessBeat.beat_at).desc())).all()
    out = []
    for r in rows:
        counters = r.counters if isinstance(r.counters, dict) else {}
        out.append(BeatView(r.process_id, str(r.kind), r.host, r.pid, r.version, r.started_at,
                            r.beat_at, r.stopped_at, r.holding, counters,
                            (now - r.beat_at).total_seconds()))
    return out


async def beat_forever(engine: Engine, process_id: str, counters: Callable[[], Mapping[str, Any]],
                       *, interval_seconds: float, stop: asyncio.Event) -> None:
    """Beat every ``interval_seconds`` until ``stop`` is set (in a thread: the event loop is
    never blocked by the UPDATE). A failed beat is logged and the next one tries again."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(beat, engine, process_id, counters())
        except Exception:  # noqa: BLE001 - a beat never stops the process
            log.warning("heartbeat of %s failed", process_id, exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
        except TimeoutError:
            pass
