"""An answer applied while a sweeper fires the same step's timers, with two real concurrent
transactions on PostgreSQL: the step's row lock serialises them, so either the sweep is seen
whole (its escalations resolved by the answer, its fired timers left fired) or the sweeper
finds the step busy and comes back. On SQLite writers never interleave (every write
transaction holds the database's write lock from BEGIN IMMEDIATE), so the race cannot happen
there and these tests are PostgreSQL-only."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from engine.runtime.sweeper import SweepResult, sweep_due_timers
from engine.supervisor.actions import acknowledge
from models.agencies import Agency, AnswerEffect, AnswerOutcome
from models.persons import Person
from models.routes import StepStatus
from models.staff import StaffUser
from models.timers import EscalationStatus, Timer, TimerStatus
from tests.conftest import PG_URL, kaliningrad, wait_for_lock_wait
from tests.ladder.conftest import Staff, audits, escalations, new_route, step_of, sweep

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="PostgreSQL only: SQLite serialises every write "
                       "transaction (BEGIN IMMEDIATE), so an answer and a sweep cannot "
                       "interleave there"),
]


def _stored_answer(db: Engine, clock: DbClock, route_id: str) -> int:
    step = step_of(db, route_id)
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        ans, _ = record_answer(s, agency=agency, webhook_id="late-1", now=clock.now(),
                               answer=AnswerIn(step.current_request_id, AnswerOutcome.provided,
                                               {"ok": True}, None))
        s.commit()
        assert ans.id is not None
        return ans.id


def _timers(db: Engine, step_id: str) -> list[Timer]:
    with Session(db) as s:
        return list(s.exec(select(Timer).where(Timer.step_id == step_id)))


def test_answer_arriving_while_the_sweep_fires_the_step_resolves_what_it_opened(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    """The sweeper has fired the step's three rungs and not committed yet; the answer is
    applied meanwhile. It waits for the sweep, then resolves all three escalations; the
    fired timers stay fired (never overwritten to cancelled)."""
    route_id = new_route(db, clock, cfg, seeded[0])  # answer by Mon 10.03.2025
    step = step_of(db, route_id)
    clock.freeze(kaliningrad(2025, 3, 13, 10, 0))  # reminder, overdue, escalation all due
    answer_id = _stored_answer(db, clock, route_id)
    fired_all = threading.Event()
    release = threading.Event()
    results: list[SweepResult] = []
    effects: list[AnswerEffect] = []
    errors: list[BaseException] = []

    def hold(ids: list[int]) -> None:
        if ids:
            fired_all.set()
            assert release.wait(60)

    def sweeper() -> None:
        try:
            results.append(sweep_due_timers(db, clock, cfg, sweeper_id="s",
                                            check_calendar=False, before_commit=hold))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def answer() -> None:
        try:
            with Session(db) as s:
                effects.append(apply_answer(s, cfg, answer_id, now=clock.now()))
                s.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ts = threading.Thread(target=sweeper)
    ts.start()
    assert fired_all.wait(30)
    ta = threading.Thread(target=answer)
    ta.start()
    wait_for_lock_wait(db)  # the answer waits for the sweep's transaction
    release.set()
    ts.join(60)
    ta.join(60)
    assert not errors
    assert results[0].total_fired == 3 and effects == [AnswerEffect.moved_route]
    assert step_of(db, route_id).status is StepStatus.answered
    timers = _timers(db, step.id)
    assert not [t for t in timers if t.status is TimerStatus.cancelled and t.fired_at]
    assert sorted(t.kind.value for t in timers if t.status is TimerStatus.fired) == [
        "answer_escalation", "answer_overdue", "answer_reminder"]
    rows = escalations(db, route_id)
    assert len(rows) == 3 and {e.status for e in rows} == {EscalationStatus.resolved}
    assert {e.resolution for e in rows} == {"answer received 3 working day(s) late"}
    assert len(audits(db, action="resolved_by_answer")) == 3


def test_sweep_claiming_timers_while_the_answer_is_applied_leaves_them_to_it(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    """The sweeper has claimed the step's due timers; the answer takes the step's lock and
    waits for the timers. The sweeper finds the step busy, leaves the timers and commits;
    the answer cancels them: no escalation is opened for an answered step."""
    route_id = new_route(db, clock, cfg, seeded[0])
    step = step_of(db, route_id)
    clock.freeze(kaliningrad(2025, 3, 13, 10, 0))
    answer_id = _stored_answer(db, clock, route_id)
    claimed = threading.Event()
    release = threading.Event()
    results: list[SweepResult] = []
    errors: list[BaseException] = []

    def hold(ids: list[int]) -> None:
        if not claimed.is_set():
            claimed.set()
            assert release.wait(60)

    def sweeper() -> None:
        try:
            results.append(sweep_due_timers(db, clock, cfg, sweeper_id="s",
                                            check_calendar=False, on_claimed=hold))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def answer() -> None:
        try:
            with Session(db) as s:
                apply_answer(s, cfg, answer_id, now=clock.now())
                s.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ts = threading.Thread(target=sweeper)
    ts.start()
    assert claimed.wait(30)
    ta = threading.Thread(target=answer)
    ta.start()
    wait_for_lock_wait(db)  # the answer holds the step and waits for the claimed timers
    release.set()
    ts.join(60)
    ta.join(60)
    assert not errors
    assert results[0].total_fired == 0
    assert step_of(db, route_id).status is StepStatus.answered
    assert escalations(db, route_id) == []
    ladder_timers = [t for t in _timers(db, step.id) if t.kind.value.startswith("answer")]
    assert {t.status for t in ladder_timers} == {TimerStatus.cancelled}
    assert all(t.fired_at is None for t in ladder_timers)


def test_a_sweeper_finding_the_step_busy_comes_back_for_it(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    """A supervisor's transaction holds the step (acknowledging its overdue escalation);
    the sweeper skips the step's due escalation timer, tries again, and fires it once the
    supervisor has committed."""
    route_id = new_route(db, clock, cfg, seeded[0])
    clock.freeze(kaliningrad(2025, 3, 11, 10, 0))  # reminder and overdue due
    assert sweep(db, clock, cfg).total_fired == 2
    overdue = next(e for e in escalations(db, route_id) if int(e.level) == 1)
    clock.freeze(kaliningrad(2025, 3, 13, 10, 0))  # now the escalation is due
    retrying = threading.Event()
    committed = threading.Event()
    claims: list[list[int]] = []
    results: list[SweepResult] = []

    def on_claimed(ids: list[int]) -> None:
        claims.append(ids)
        if len(claims) == 2:  # the step was busy: this is the second try
            retrying.set()
            assert committed.wait(60)

    with Session(db) as s:  # the supervisor's transaction, open
        sup = s.get(StaffUser, "sup39")
        assert sup is not None and overdue.id is not None
        acknowledge(s, staff=sup, escalation_id=overdue.id, now=clock.now(), reason="звоню")
        t = threading.Thread(target=lambda: results.append(sweep_due_timers(
            db, clock, cfg, sweeper_id="s", check_calendar=False, on_claimed=on_claimed)))
        t.start()
        assert retrying.wait(30)
        s.commit()
    committed.set()
    t.join(60)
    assert results[0].fired == {"answer_escalation": 1} and results[0].busy == 0
    assert claims[0] == claims[1]
    levels = {int(e.level): e.status for e in escalations(db, route_id)}
    assert levels == {0: EscalationStatus.open, 1: EscalationStatus.acknowledged,
                      2: EscalationStatus.open}
