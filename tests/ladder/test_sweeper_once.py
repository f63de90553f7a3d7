"""Each timer fires exactly once: two sweepers at a time, a crash between finding and
firing, and batches after a long holiday."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from engine.runtime.sweeper import SweepResult, sweep_due_timers
from models.audit import AuditEvent
from models.jobs import Job, JobKind
from models.persons import Person
from models.timers import Escalation, Timer, TimerKind, TimerStatus
from tests.conftest import PG_URL, kaliningrad
from tests.ladder.conftest import Staff, new_route, sweep

ROUTES = 40


def _many_routes(db: Engine, clock: DbClock, cfg: EngineConfig, people: list[Person]) -> int:
    """ROUTES routes received on 30.12.2025 (before the New Year holidays); returns the
    number of their ladder timers (a send-by timer of a delivered step goes stale)."""
    clock.freeze(kaliningrad(2025, 12, 30, 10, 0))
    for i in range(ROUTES):
        new_route(db, clock, cfg, people[i % len(people)])
    with Session(db) as s:
        return int(s.exec(select(func.count()).select_from(Timer)
                          .where(Timer.status == TimerStatus.pending,
                                 Timer.kind != TimerKind.send_overdue)).one())


def _assert_each_fired_once(db: Engine, timers: int, results: list[SweepResult]) -> None:
    assert sum(r.total_fired for r in results) == timers
    with Session(db) as s:
        statuses = Counter(t.status for t in s.exec(select(Timer)))
        fired_audits = Counter(e.entity_id for e in s.exec(
            select(AuditEvent).where(AuditEvent.entity == "timer",
                                     AuditEvent.action == "fired")))
        levels = Counter((e.step_id, int(e.level)) for e in s.exec(select(Escalation)))
    assert statuses[TimerStatus.pending] == 0
    assert len(fired_audits) == timers and set(fired_audits.values()) == {1}
    assert len(levels) == ROUTES * 3 and set(levels.values()) == {1}


@pytest.mark.parametrize("batch_size", [7, 200])
def test_two_sweepers_at_once_fire_each_timer_once(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], batch_size: int,
) -> None:
    """Threads sweeping the same database (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the
    BEGIN IMMEDIATE write lock)."""
    timers = _many_routes(db, clock, cfg, seeded)
    assert timers == ROUTES * 3
    clock.freeze(kaliningrad(2026, 2, 2, 10, 0))  # long after the holidays: all due
    barrier = threading.Barrier(3)
    results: list[SweepResult] = []
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            barrier.wait()
            results.append(sweep_due_timers(db, clock, cfg, sweeper_id=name,
                                            batch_size=batch_size))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"s{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    _assert_each_fired_once(db, timers, results)


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="REHAB_TEST_DATABASE_URL is not set")
def test_skip_locked_sweepers_share_the_work_on_postgres(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    """While one sweeper holds a batch locked, a second one skips it and fires the rest."""
    timers = _many_routes(db, clock, cfg, seeded)
    clock.freeze(kaliningrad(2026, 2, 2, 10, 0))
    held = threading.Event()
    release = threading.Event()
    results: list[SweepResult] = []

    def hold(ids: list[int]) -> None:
        held.set()
        assert release.wait(60)

    def first() -> None:
        results.append(sweep_due_timers(db, clock, cfg, sweeper_id="slow", batch_size=10,
                                        max_batches=1, check_calendar=False,
                                        on_claimed=hold))

    t = threading.Thread(target=first)
    t.start()
    assert held.wait(60)
    second = sweep_due_timers(db, clock, cfg, sweeper_id="fast", batch_size=10,
                              check_calendar=False)
    release.set()
    t.join(60)
    assert second.total_fired + second.stale + 10 >= timers
    assert results[0].total_fired + results[0].stale == 10
    _assert_each_fired_once(db, timers, [second, *results])


def test_crash_between_finding_and_firing_fires_later_exactly_once(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    timers = _many_routes(db, clock, cfg, seeded)
    clock.freeze(kaliningrad(2026, 2, 2, 10, 0))

    def crash(ids: list[int]) -> None:
        assert ids
        raise RuntimeError("sweeper killed after claiming")

    with pytest.raises(RuntimeError, match="killed"):
        sweep(db, clock, cfg, batch_size=25, on_claimed=crash)
    with Session(db) as s:  # nothing of the claimed batch happened
        assert s.exec(select(func.count()).select_from(Escalation)).one() == 0
        assert s.exec(select(func.count()).select_from(Timer)
                      .where(Timer.status == TimerStatus.fired)).one() == 0
    again = sweep(db, clock, cfg, batch_size=25)
    third = sweep(db, clock, cfg, batch_size=25)
    assert third.total_fired == 0
    _assert_each_fired_once(db, timers, [again])


def test_after_the_holidays_timers_fire_in_batches(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    timers = _many_routes(db, clock, cfg, seeded)
    clock.freeze(kaliningrad(2026, 2, 2, 10, 0))
    first = sweep(db, clock, cfg, batch_size=50, max_batches=1)
    assert first.batches == 1 and first.total_fired + first.stale == 50
    rest = sweep(db, clock, cfg, batch_size=50)
    assert rest.batches >= 2
    assert first.total_fired + rest.total_fired == timers
    assert rest.as_dict()["fired"] == rest.total_fired
    with Session(db) as s:  # one send job per notification, in the firing transaction
        jobs = s.exec(select(func.count()).select_from(Job)
                      .where(Job.kind == JobKind.send_notification)).one()
    assert jobs == ROUTES * 3  # agency reminder, coordinator, supervisor sup39
