"""The Prefect mirror runs in a process of its own (``rehab mirror``): the worker does the
route's work and nothing of Prefect's; the mirror process does the mirror's jobs and nothing
of the route's, survives a failed pass, and finishes its batch without deadlocking against
the transitions that enqueue the same jobs again (PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli import main as cli_main
from engine.infra import queue
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig
from engine.runtime.handlers import WorkerContext
from engine.runtime.worker import Worker
from models.heartbeats import ProcessKind
from models.jobs import ROUTE_WORK, Job, JobKind
from models.types import utcnow
from tasks import prefect_mirror as pm
from tests.conftest import PG_URL, wait_for_lock_wait


class _Counting:
    """A mirror-like handler: counts its passes; the first ``failures`` of them raise."""

    kinds = (JobKind.mirror_route,)

    def __init__(self, failures: int = 0, stop_after: int = 3) -> None:
        self.passes = 0
        self.failures = failures
        self.stop_after = stop_after
        self.stop: asyncio.Event | None = None

    async def run_once(self, worker: WorkerContext, refs: list[str] | None) -> int:
        self.passes += 1
        if self.passes >= self.stop_after and self.stop is not None:
            self.stop.set()
        if self.passes <= self.failures:
            raise RuntimeError("Prefect said something odd")
        return 0

    async def aclose(self) -> None:
        pass


def _settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", var_dir=tmp_path, prefect_mirror=True,
                    worker_idle_poll_seconds=0.001)


def test_the_worker_command_registers_no_handler_and_the_mirror_command_a_lower_priority(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    niced: list[int] = []
    monkeypatch.setattr(cli_main, "run_worker_forever",
                        lambda settings, **kw: calls.append(kw))
    monkeypatch.setattr(cli_main, "_startup_check", lambda: None)
    monkeypatch.setattr(cli_main.os, "nice", niced.append)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "true")
    monkeypatch.setenv("REHAB_MIRROR_NICE", "7")
    cli_main.get_settings.cache_clear()
    try:
        assert CliRunner().invoke(cli_main.app, ["worker"]).exit_code == 0
        assert CliRunner().invoke(cli_main.app, ["mirror", "--name", "m1"]).exit_code == 0
    finally:
        cli_main.get_settings.cache_clear()
    worker_kw, mirror_kw = calls
    assert "handlers" not in worker_kw and worker_kw.get("kind", ProcessKind.worker) \
        is ProcessKind.worker
    assert mirror_kw["kind"] is ProcessKind.mirror and mirror_kw["worker_id"] == "m1"
    assert [type(h) for h in mirror_kw["handlers"]] == [pm.PrefectMirrorHandler]
    assert niced == [7]


def test_the_mirror_command_refuses_with_the_mirror_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "_startup_check", lambda: None)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "false")
    cli_main.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_main.app, ["mirror"])
    finally:
        cli_main.get_settings.cache_clear()
    assert result.exit_code == 2
    assert "REHAB_PREFECT_MIRROR" in result.output


def test_a_handlers_only_worker_leaves_the_routes_work_alone_and_outlives_a_failed_pass(
        db: Engine, clock: DbClock, cfg: EngineConfig, tmp_path: Path) -> None:
    with Session(db) as s:  # the route's work, due now
        for kind in (JobKind.send_request, JobKind.apply_answer, JobKind.send_notification):
            queue.enqueue(s, kind, f"{kind.value}-1")
        s.commit()
    with Session(db) as s:
        before = sorted((j.kind.value, j.ref, j.generation) for j in s.exec(select(Job)))
    handler = _Counting(failures=2, stop_after=4)

    async def go() -> Worker:
        stop = asyncio.Event()
        handler.stop = stop
        async with Worker(db, clock, cfg, _settings(tmp_path), worker_id="m-test",
                          handlers=[handler], core=False) as w:
            await asyncio.wait_for(w.run(stop), timeout=30)
        return w

    w = asyncio.run(go())
    assert handler.passes >= 4  # two passes failed, and it went on
    assert w.stats.background_errors == 2
    assert w.stats.sent == 0 and w.stats.answers_applied == 0
    with Session(db) as s:  # none of the route's jobs was claimed
        jobs = list(s.exec(select(Job)))
        assert sorted((j.kind.value, j.ref, j.generation) for j in jobs) == before
        assert all(j.locked_by is None and j.attempts == 0 for j in jobs)


def _mirror_jobs(db: Engine, refs: list[str]) -> list[queue.ClaimedJob]:
    with Session(db) as s:
        for ref in refs:  # inserted in this order: "b" is found first by a scan
            queue.enqueue(s, JobKind.mirror_route, ref)
        s.commit()
    jobs = queue.claim(db, "mirror-1", kinds=[JobKind.mirror_route], limit=10,
                       lease_seconds=60)
    assert sorted(j.ref for j in jobs) == sorted(refs)
    return jobs


def _held_while_waiting(db: Engine, hold: str, probe: str, act: Any) -> bool:
    """Hold ``hold``'s job row in another transaction, run ``act`` in a thread until it
    waits for that row, and say whether it holds ``probe``'s row meanwhile."""
    with db.connect() as holder, db.connect() as prober:
        holder.execute(text("BEGIN"))
        holder.execute(text("SELECT id FROM job WHERE ref = :r FOR UPDATE"), {"r": hold})
        done = threading.Event()

        def run() -> None:
            act()
            done.set()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_for_lock_wait(db, timeout=15)  # until it waits for the held row
        assert not done.is_set(), "it did not wait for the held row"
        prober.execute(text("SET lock_timeout = '50ms'"))
        try:
            prober.execute(text("SELECT id FROM job WHERE ref = :r FOR UPDATE NOWAIT"),
                           {"r": probe})
            held = False
        except Exception:  # noqa: BLE001 - could not lock: the other holds it
            held = True
        prober.rollback()
        holder.execute(text("ROLLBACK"))
        t.join(15)
        assert done.is_set()
        return held


@pytest.mark.skipif(not PG_URL, reason="row lock order: PostgreSQL")
def test_a_mirror_finishing_its_batch_locks_the_jobs_in_ref_order(db: Engine) -> None:
    jobs = _mirror_jobs(db, ["b", "a"])
    with Session(db) as s:  # the routes moved meanwhile: their jobs have a new generation
        queue.enqueue(s, JobKind.mirror_route, "b")  # ("b"'s row found first again)
        queue.enqueue(s, JobKind.mirror_route, "a")
        s.commit()

    def finish() -> None:
        with Session(db) as s:
            queue.finish_many(s, jobs, lock_in_order=True)
            s.commit()

    # "a" is taken before "b" is waited for: the order a transition's upsert takes them in
    assert _held_while_waiting(db, hold="b", probe="a", act=finish)
    with Session(db) as s:  # not removed (a new generation): unlocked for another pass
        left = list(s.exec(select(Job)))
        assert sorted(j.ref for j in left) == ["a", "b"]
        assert all(j.locked_by is None for j in left)


@pytest.mark.skipif(not PG_URL, reason="row lock order: PostgreSQL")
def test_a_transition_upserts_its_jobs_in_ref_order(db: Engine) -> None:
    _mirror_jobs(db, ["b", "a"])

    def transition() -> None:
        with Session(db) as s:
            with queue.buffered(s):  # one statement at the end, as a transition's
                queue.enqueue(s, JobKind.mirror_route, "b")  # asked for in this order
                queue.enqueue(s, JobKind.mirror_route, "a")
            s.commit()

    assert _held_while_waiting(db, hold="b", probe="a", act=transition)


def _due(db: Engine, kind: JobKind, ref: str, seconds_ago: float) -> None:
    with Session(db) as s:
        queue.enqueue(s, kind, ref, due_at=utcnow() - timedelta(seconds=seconds_ago))
        s.commit()


def test_the_workers_count_as_busy_with_a_backlog_or_a_job_left_waiting(db: Engine) -> None:
    work = ROUTE_WORK
    assert not queue.busy(db, work, backlog=3)
    _due(db, JobKind.apply_answer, "fresh", 0.0)  # just due: a worker takes it at once
    _due(db, JobKind.mirror_route, "m", 60.0)  # not the routes' work
    assert not queue.busy(db, work, backlog=3)
    _due(db, JobKind.send_request, "waiting", 5.0)  # due 5 s ago and nobody took it
    assert queue.busy(db, work, backlog=3)
    claimed = queue.claim(db, "w1", kinds=[JobKind.send_request], limit=1, lease_seconds=60)
    assert [j.ref for j in claimed] == ["waiting"]  # now on the wire: not left waiting
    assert not queue.busy(db, work, backlog=3)
    _due(db, JobKind.send_cancel, "third", 0.0)  # three due at once: a backlog
    assert queue.busy(db, work, backlog=3)


def test_the_mirror_gives_way_while_the_workers_are_busy_but_never_past_its_lag(
        db: Engine, clock: DbClock, cfg: EngineConfig, tmp_path: Path) -> None:
    settings = Settings(environment="test", var_dir=tmp_path, prefect_mirror=True,
                        mirror_max_lag_seconds=30.0)
    w = Worker(db, clock, cfg, settings, worker_id="m-lag", core=False)
    _due(db, JobKind.mirror_route, "recent", 1.0)
    _due(db, JobKind.mirror_route, "old", 45.0)
    assert sorted(j.ref for j in pm.claim_mirror_jobs(w, None)) == ["old", "recent"]  # idle
    queue.release_held(db, "m-lag")
    _due(db, JobKind.apply_answer, "late", 5.0)  # the routes' work is waiting
    assert [j.ref for j in pm.claim_mirror_jobs(w, None)] == ["old"]  # 45 s ≥ the lag
    queue.release_held(db, "m-lag")
    assert [j.ref for j in pm.claim_mirror_jobs(w, ["recent"])] == ["recent"]  # asked for
    queue.release_held(db, "m-lag")
    no_lag = Worker(db, clock, cfg, settings.model_copy(update={"mirror_max_lag_seconds": 0}),
                    worker_id="m-lag", core=False)
    assert sorted(j.ref for j in pm.claim_mirror_jobs(no_lag, None)) == ["old", "recent"]
