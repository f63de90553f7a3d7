"""Timers do not depend on Prefect: the sweeper fires due timers on its own loop while the
Prefect server is dead (SIGKILL), and its reports of the sweeps catch up when Prefect is back
(298-п Порядок п.10, п.11, п.13; 363н п.10б)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig, register_application
from engine.runtime.sweeper import SweeperLoop, SweepReport
from flows.sweeper import PrefectSweepReporter
from models.persons import Person
from models.timers import Timer, TimerStatus
from tasks.prefect_server import PrefectServer
from tests.conftest import kaliningrad

pytestmark = pytest.mark.slow


def _until(what: str, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait (real time: a sweeper and a server at work) until ``cond()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


def _pending_due(db: Engine, clock: DbClock) -> int:
    with Session(db) as s:
        return int(s.exec(select(func.count()).select_from(Timer).where(
            Timer.status == TimerStatus.pending, col(Timer.due_at) <= clock.now())).one())


def _fired(db: Engine) -> int:
    with Session(db) as s:
        return int(s.exec(select(func.count()).select_from(Timer).where(
            Timer.status == TimerStatus.fired)).one())


def _reported_runs(api: str, sweeper_id: str) -> list[str]:
    async def go() -> list[str]:
        async with PrefectClient(api=api) as c:
            runs = await c.read_flow_runs(flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"sweeper:{sweeper_id}"])))
        return [r.state.message or "" for r in runs if r.state and r.state.is_completed()]
    return asyncio.run(go())


def test_timers_fire_on_time_with_prefect_dead_and_reports_catch_up(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        tmp_path: Path) -> None:
    import os

    server = PrefectServer(home=tmp_path / "prefect",
                           database_url=os.environ.get("REHAB_PREFECT_DATABASE_URL") or None)
    server.start()
    clock.freeze(kaliningrad(2025, 12, 22, 12, 0))
    with Session(db) as s:
        for i in range(4):
            register_application(s, cfg, now=clock.now(), person_id=seeded[i % 3].id,
                                 template_code="supported_living", template_version=0)
        s.commit()
    sweeps: list[SweepReport] = []
    reporter = PrefectSweepReporter(server.api_url, timeout_seconds=5)

    def counting(reports: list[SweepReport]) -> int:
        n = reporter(reports)
        sweeps.extend(reports[:n])
        return n

    loop = SweeperLoop(db, clock, cfg, sweeper_id="sw-test", interval_seconds=0.2,
                       reporter=counting)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        # Prefect up: sweeps are reported as they happen
        _until("a report reached Prefect", lambda: loop.reported > 0)
        # Prefect dies; business time moves past the answer deadlines, the New Year
        # holidays in between: reminders, overdue notices and escalations come due
        server.kill()
        assert not server.healthy()
        fired_before = _fired(db)
        clock.freeze(kaliningrad(2026, 1, 20, 10, 0))
        # on time: fired within a few sweeps of coming due, with Prefect dead
        _until("the timers due after the holidays fired",
               lambda: _pending_due(db, clock) == 0, timeout=15)
        assert _fired(db) > fired_before
        # the sweep that fired them commits before it queues its report: wait for the queue
        # (its report cannot go out: Prefect is dead, so it stays queued)
        _until("the sweeps' reports wait for Prefect", lambda: len(loop.unreported) > 0,
               timeout=15)
        reported_while_dead, sweeps_then = loop.reported, loop.sweeps
        _until("two more sweeps", lambda: loop.sweeps >= sweeps_then + 2, timeout=15)
        # nothing went out while Prefect is dead: every sweep's report waits
        assert loop.reported == reported_while_dead and len(loop.unreported) >= 2
        assert not server.healthy()
        # Prefect is back: every sweep's report catches up, in order, once
        server.start()
        _until("the reports caught up", lambda: not loop.unreported and
               len(sweeps) == loop.sweeps, timeout=120)
    finally:
        stop.set()
        thread.join(30)
    try:
        messages = _reported_runs(server.api_url, "sw-test")
        assert len(messages) == len(sweeps) == len({s.seq for s in sweeps})
        assert [s.seq for s in sweeps] == sorted(s.seq for s in sweeps)
        reported_fired = sum(s.counts["fired"] for s in sweeps)
        assert reported_fired == _fired(db)
        assert all(m.startswith("fired ") for m in messages)
    finally:
        server.stop()


def test_a_reporter_that_raises_never_stops_the_sweeps(
        db: Engine, clock: DbClock, cfg: EngineConfig) -> None:
    def broken(_reports: list[SweepReport]) -> int:
        raise RuntimeError("prefect client bug")

    loop = SweeperLoop(db, clock, cfg, sweeper_id="sw", interval_seconds=1, reporter=broken)
    loop.sweep_once()
    assert loop.report() == 0 and len(loop.unreported) == 1
    loop.sweep_once()
    assert loop.sweeps == 2 and len(loop.unreported) == 2
    with pytest.raises(ValueError, match="interval"):
        SweeperLoop(db, clock, cfg, sweeper_id="sw", interval_seconds=0)
