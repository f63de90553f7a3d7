"""The timer sweeper: ``rehab sweeper`` fires every due timer exactly once on its own loop, in
batches, and reports each sweep to Prefect as one ``timer-sweeper`` run (never one per timer)
with its counts — identifiers and numbers only; the flow also builds as a scheduled
deployment (298-п Порядок п.10, п.11, п.13; 363н п.10б; 152-ФЗ)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.settings import temporary_settings
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli.main import app
from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig, register_application
from flows.sweeper import (
    DEPLOYMENT_NAME,
    FLOW_NAME,
    SweepTarget,
    counts_message,
    register_unscheduled_deployment,
    run_sweep,
    sweeper_deployment,
)
from models.audit import AuditEvent
from models.persons import Person
from models.timers import Timer, TimerStatus
from tasks.prefect_server import PrefectServer
from tests.conftest import kaliningrad

ROOT = Path(__file__).resolve().parents[2]
ROUTES = 6


@pytest.fixture(scope="module")
def prefect_url(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's Prefect server (``prefect_api`` of tests/conftest.py) when there is
    one; otherwise a server for this module (SQLite, or REHAB_PREFECT_DATABASE_URL)."""
    try:
        url: str = request.getfixturevalue("prefect_api")
    except pytest.FixtureLookupError:
        server = PrefectServer(home=tmp_path_factory.mktemp("prefect-sweeper"),
                               database_url=os.environ.get("REHAB_PREFECT_DATABASE_URL")
                               or None)
        server.start()
        try:
            yield server.api_url
        finally:
            server.stop()
        return
    yield url


def _due_timers(db: Engine, clock: DbClock, cfg: EngineConfig, people: list[Person]) -> int:
    """ROUTES routes whose first request reached the agency's inbox on 22.12.2025; then
    business time moves past their deadlines and escalations (New Year holidays in
    between). Returns the number of timers due now."""
    clock.freeze(kaliningrad(2025, 12, 22, 12, 0))
    with Session(db, expire_on_commit=False) as s:
        for i in range(ROUTES):
            register_application(s, cfg, now=clock.now(), person_id=people[i % 3].id,
                                 template_code="supported_living", template_version=0)
        s.commit()
    clock.freeze(kaliningrad(2026, 1, 20, 10, 0))
    with Session(db) as s:
        due = s.exec(select(func.count()).select_from(Timer).where(
            Timer.status == TimerStatus.pending, col(Timer.due_at) <= clock.now())).one()
    return int(due)


def _fired_once(db: Engine) -> Counter[str]:
    """How many times each timer was fired, by the audit log."""
    with Session(db) as s:
        return Counter(e.entity_id for e in s.exec(
            select(AuditEvent).where(AuditEvent.entity == "timer",
                                     AuditEvent.action == "fired")))


async def _sweeper_runs(api: str, **flt: Any) -> list[FlowRun]:
    async with PrefectClient(api=api) as c:
        return await c.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])), **flt)


def _no_personal_data(runs: list[FlowRun], people: list[Person]) -> None:
    pd = [p.full_name for p in people] + [p.snils for p in people] + \
        [p.birth_date.isoformat() for p in people]
    blob = " ".join(" ".join([r.name, *r.tags, str(r.parameters),
                              (r.state.message or "") if r.state else ""]) for r in runs)
    assert not any(x in blob for x in pd), "personal data reached Prefect"


# --------------------------------------------------------------------------- the deployment
def test_the_deployment_is_scheduled_on_its_interval() -> None:
    dep = sweeper_deployment(interval_seconds=90, batch_size=50)
    assert dep.name == DEPLOYMENT_NAME and dep.flow_name == FLOW_NAME
    assert dep.entrypoint == "flows.sweeper.timer_sweeper"  # importable from anywhere
    assert dep.parameters == {"batch_size": 50}
    assert dep.paused is False  # a restarted sweeper is never left paused
    assert dep.schedules is not None
    [sched] = dep.schedules
    assert isinstance(sched.schedule, IntervalSchedule)
    assert sched.schedule.interval == timedelta(seconds=90) and sched.active
    with pytest.raises(ValueError, match="interval: must be a positive"):
        sweeper_deployment(interval_seconds=0)
    with pytest.raises(ValueError, match="batch_size: must be at least 1"):
        sweeper_deployment(interval_seconds=60, batch_size=0)


def test_rehab_sweeper_refuses_a_bad_interval() -> None:
    out = CliRunner().invoke(app, ["sweeper", "--interval", "0"])
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "'--interval'" in text and "greater than or equal to 1" in text


def test_counts_message_names_counts_only() -> None:
    msg = counts_message({"fired_answer_overdue": 2, "fired_answer_reminder": 1, "fired": 3,
                          "stale": 1, "batches": 1, "recomputed": 0})
    assert msg == "fired 3 (answer_overdue=2, answer_reminder=1); stale 1; batches 1"


# --------------------------------------------------------------------------- runs
@pytest.mark.slow
def test_a_run_of_the_flow_fires_due_timers_once_and_returns_counts(
    prefect_url: str, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
) -> None:
    due = _due_timers(db, clock, cfg, seeded)
    assert due >= ROUTES * 2  # at least overdue and escalation of each first step
    with temporary_settings(updates={"api.url": prefect_url}):
        # the deployment `rehab sweeper` serves, as the Prefect server stores it
        dep_id = sweeper_deployment(interval_seconds=60).apply()
        assert isinstance(dep_id, UUID)  # the sync path of Prefect's async_dispatch

        async def read_dep() -> Any:
            async with PrefectClient(api=prefect_url) as c:
                return await c.read_deployment(dep_id)

        stored = asyncio.run(read_dep())
        assert stored.name == DEPLOYMENT_NAME
        assert [s.schedule.interval for s in stored.schedules] == [timedelta(seconds=60)]
        assert stored.paused is False
        target = SweepTarget(db, clock, cfg, "test-sweeper")
        tag = uuid4().hex[:8]  # names of this test's runs (the server may hold older ones)
        first = run_sweep(target, run_name=f"timer-sweeper {tag}-1", batch_size=4)
        again = run_sweep(target, run_name=f"timer-sweeper {tag}-2", batch_size=4)
    # one flow run fired them all, in batches of 4; the next found nothing to fire
    assert first["fired"] == due and first["batches"] >= due // 4
    assert sum(v for k, v in first.items() if k.startswith("fired_")) == due
    assert again["fired"] == 0 and again["stale"] == 0
    fired = _fired_once(db)
    assert len(fired) == due and set(fired.values()) == {1}
    runs = asyncio.run(_sweeper_runs(prefect_url))
    mine = {r.name: r for r in runs if r.name.startswith(f"timer-sweeper {tag}-")}
    assert set(mine) == {f"timer-sweeper {tag}-1", f"timer-sweeper {tag}-2"}
    assert all(r.state is not None and r.state.is_completed() for r in mine.values())
    one = mine[f"timer-sweeper {tag}-1"]
    assert one.state is not None and one.state.message == counts_message(first)
    assert one.parameters == {"batch_size": 4}
    _no_personal_data(list(mine.values()), seeded)


@pytest.mark.slow
def test_sweeps_started_by_their_caller_are_runs_of_an_unscheduled_deployment(
    prefect_url: str, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
) -> None:
    """The demo's way: the deployment is registered without a schedule (Prefect starts no
    run of it; the demo's business clock decides when a sweep happens) and each sweep is
    one run of it, started and run in the caller's process."""
    due = _due_timers(db, clock, cfg, seeded)
    tag = uuid4().hex[:8]
    with temporary_settings(updates={"api.url": prefect_url}):
        sweeper_deployment(interval_seconds=60).apply()  # a scheduled one before: replaced
        dep_id = register_unscheduled_deployment()
        assert register_unscheduled_deployment() == dep_id  # registering again: the same
        counts = run_sweep(SweepTarget(db, clock, cfg, "demo-like"),
                           run_name=f"timer-sweeper {tag}", deployment_id=dep_id,
                           tags=["rehab-demo", f"demo-run:{tag}"])

    async def read() -> tuple[Any, list[FlowRun]]:
        async with PrefectClient(api=prefect_url) as c:
            dep = await c.read_deployment(dep_id)
            runs = await c.read_flow_runs(flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[dep_id]),
                tags=FlowRunFilterTags(all_=[f"demo-run:{tag}"])))
            return dep, runs

    dep, runs = asyncio.run(read())
    assert dep.name == DEPLOYMENT_NAME and dep.schedules == []
    assert counts["fired"] == due
    [run] = runs
    assert run.deployment_id == dep_id and run.name == f"timer-sweeper {tag}"
    assert run.state is not None and run.state.is_completed()
    assert run.state.message == counts_message(counts)
    _no_personal_data(runs, seeded)


@pytest.mark.slow
def test_rehab_sweeper_fires_each_timer_once_and_reports_each_sweep(
    prefect_url: str, db_url: str, db: Engine, clock: DbClock, cfg: EngineConfig,
    seeded: list[Person], tmp_path: Path,
) -> None:
    """The production path: ``rehab sweeper --interval N`` sweeps on its own loop and
    reports each sweep to Prefect as a completed ``timer-sweeper`` run with its counts."""
    due = _due_timers(db, clock, cfg, seeded)
    env = {**os.environ, "REHAB_DATABASE_URL": db_url, "PREFECT_API_URL": prefect_url,
           "PREFECT_HOME": str(tmp_path / "ph"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    started = datetime.now(UTC)  # runs from before (other tests, other sessions) are not ours
    log = (tmp_path / "sweeper.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "sweeper", "--interval", "1"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    completed: list[FlowRun] = []
    reported: list[int] = []
    try:
        t0 = time.monotonic()  # real time: processes starting, not business time
        end = t0 + 240
        # until two sweeps are reported and their counts account for every due timer
        while time.monotonic() < end and (len(completed) < 2 or sum(reported) < due):
            assert proc.poll() is None, (tmp_path / "sweeper.log").read_text()[-3000:]
            runs = asyncio.run(_sweeper_runs(prefect_url))
            completed = [r for r in runs if r.created is not None and r.created >= started
                         and r.state is not None and r.state.is_completed()
                         and "timers" in r.tags]
            # each reported sweep carries its counts in its state message
            found = [re.match(r"fired (\d+)", (r.state.message or "") if r.state else "")
                     for r in completed]
            assert all(found), [r.state for r in completed]
            reported = [int(m.group(1)) for m in found if m]
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert len(completed) >= 2, (tmp_path / "sweeper.log").read_text()[-3000:]
    # every due timer fired exactly once over all the sweeps, and the reports say so: one
    # sweep fired them (in batches), the others found nothing left
    fired = _fired_once(db)
    assert len(fired) == due and set(fired.values()) == {1}
    assert sum(reported) == due and max(reported) > 0
    _no_personal_data(completed, seeded)
    # and `--once` runs the flow once more, in this process: nothing left to fire
    once = subprocess.run([sys.executable, "-m", "cli.main", "sweeper", "--once"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)
    assert once.returncode == 0, once.stderr[-3000:]
    assert '"fired": 0' in once.stdout.splitlines()[-1]
