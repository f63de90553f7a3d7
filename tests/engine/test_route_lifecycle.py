"""A route through its steps on the inbox channel (no HTTP): deadlines, answers, audit."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.infra.clock import DbClock
from engine.routes.transitions import (
    AnswerIn,
    EngineConfig,
    apply_answer,
    record_answer,
    register_application,
    resend_after_clarification,
)
from models.agencies import Agency, AgencyAnswer, AgencyRequest, AnswerEffect, AnswerOutcome
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.timers import Timer, TimerKind, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import receive_inbox


def _answer(db: Engine, cfg: EngineConfig, clock: DbClock, step: Step, outcome: AnswerOutcome,
            webhook_id: str) -> AgencyAnswer:
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id is not None
        ans, created = record_answer(
            s, agency=agency, webhook_id=webhook_id,
            answer=AnswerIn(step.current_request_id, outcome, {"ok": True}, None),
            now=clock.now())
        s.commit()
        assert created
    with Session(db, expire_on_commit=False) as s:
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
        fresh = s.get(AgencyAnswer, ans.id)
        assert fresh is not None
    receive_inbox(db, clock, cfg, step.route_id)  # the next agency opens its inbox at once
    return fresh


def _steps(db: Engine, route_id: str) -> list[Step]:
    with Session(db, expire_on_commit=False) as s:
        return list(s.exec(select(Step).where(Step.route_id == route_id).order_by(col(Step.seq))))


def test_route_runs_through_its_steps_with_legal_deadlines(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]
) -> None:
    # Application registered 30 Dec 2025: send by 12 Jan 2026, answer by 19 Jan 2026.
    clock.freeze(kaliningrad(2025, 12, 30, 10, 0))
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
    receive_inbox(db, clock, cfg, route.id)  # the agency opens its inbox at once
    steps = _steps(db, route.id)
    assert steps[0].send_by_date == date(2026, 1, 12)
    # inbox agency: received at registration -> 5 working days from 30 Dec 2025
    assert steps[0].status is StepStatus.awaiting
    assert steps[0].answer_by_date == date(2026, 1, 16)
    assert [s.status for s in steps[1:]] == [StepStatus.planned, StepStatus.planned]

    clock.freeze(kaliningrad(2026, 1, 12, 11, 0))
    _answer(db, cfg, clock, steps[0], AnswerOutcome.provided, "w1")
    steps = _steps(db, route.id)
    assert steps[0].status is StepStatus.answered
    assert steps[1].status is StepStatus.awaiting
    assert steps[1].answer_by_date == date(2026, 1, 19)  # 5 working days from 12 Jan

    # an absent-information notice is a valid completion (298-п п.11)
    _answer(db, cfg, clock, steps[1], AnswerOutcome.absent, "w2")
    steps = _steps(db, route.id)
    assert steps[1].status is StepStatus.absent
    _answer(db, cfg, clock, steps[2], AnswerOutcome.provided, "w3")
    with Session(db) as s:
        r = s.get(Route, route.id)
        assert r is not None and r.status is RouteStatus.completed
        actions = [e.action for e in s.exec(select(AuditEvent).where(
            AuditEvent.route_id == route.id).order_by(col(AuditEvent.id)))]
        pending = s.exec(select(Timer).where(Timer.route_id == route.id,
                                             Timer.status == TimerStatus.pending)).all()
    assert actions[0] == "registered" and actions[-1] == "completed"
    assert actions.count("answer_provided") == 2 and actions.count("answer_absent") == 1
    assert pending == []


def test_late_answer_is_accepted_and_counted_in_working_days(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]
) -> None:
    clock.freeze(kaliningrad(2025, 3, 3, 10, 0))  # Monday
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
    receive_inbox(db, clock, cfg, route.id)  # the agency opens its inbox at once
    step = _steps(db, route.id)[0]
    assert step.answer_by_date == date(2025, 3, 10)  # 8 Mar 2025 fell on a Saturday: no transfer
    clock.freeze(kaliningrad(2025, 3, 12, 9, 0))  # 11 and 12 Mar: 2 working days late
    ans = _answer(db, cfg, clock, step, AnswerOutcome.provided, "late-1")
    assert ans.late_working_days == 2
    assert _steps(db, route.id)[0].late_working_days == 2


def test_duplicate_webhook_id_changes_nothing_and_other_agency_gets_404(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]
) -> None:
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
    receive_inbox(db, clock, cfg, route.id)  # the agency opens its inbox at once
    step = _steps(db, route.id)[0]
    assert step.current_request_id is not None
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        other = s.get(Agency, "mz39")
        assert agency is not None and other is not None
        a1, c1 = record_answer(s, agency=agency, webhook_id="dup", now=clock.now(),
                               answer=AnswerIn(step.current_request_id, AnswerOutcome.provided,
                                               {}, None))
        s.commit()
        a2, c2 = record_answer(s, agency=agency, webhook_id="dup", now=clock.now(),
                               answer=AnswerIn(step.current_request_id, AnswerOutcome.absent,
                                               {}, None))
        s.commit()
        assert c1 and not c2 and a1.id == a2.id
        with pytest.raises(NotFoundError, match="task_id"):
            record_answer(s, agency=other, webhook_id="x", now=clock.now(),
                          answer=AnswerIn(step.current_request_id, AnswerOutcome.provided,
                                          {}, None))
        s.rollback()
        assert len(s.exec(select(AgencyAnswer)).all()) == 1
    # a second answer (new webhook id) to a step already answered does not move it twice
    with Session(db, expire_on_commit=False) as s:
        assert a1.id is not None
        assert apply_answer(s, cfg, a1.id, now=clock.now()) is AnswerEffect.moved_route
        s.commit()
    second = _answer(db, cfg, clock, step, AnswerOutcome.provided, "second")
    assert second.effect is AnswerEffect.already_answered
    assert _steps(db, route.id)[1].status is StepStatus.awaiting


def test_rejection_needs_clarification_then_resend(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]
) -> None:
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
    receive_inbox(db, clock, cfg, route.id)  # the agency opens its inbox at once
    step = _steps(db, route.id)[0]
    _answer(db, cfg, clock, step, AnswerOutcome.rejected, "rej")
    step = _steps(db, route.id)[0]
    assert step.status is StepStatus.needs_clarification
    with Session(db, expire_on_commit=False) as s:
        with pytest.raises(EngineError, match="clarification"):
            resend_after_clarification(s, cfg, step_id=step.id, clarification="  ",
                                       now=clock.now(), actor="u1")
        s.rollback()
        req = resend_after_clarification(s, cfg, step_id=step.id, clarification="уточнение",
                                         now=clock.now(), actor="u1")
        s.commit()
    receive_inbox(db, clock, cfg, route.id)
    step2 = _steps(db, route.id)[0]
    assert step2.status is StepStatus.awaiting and step2.current_request_id == req.id
    with Session(db) as s:
        assert len(s.exec(select(AgencyRequest).where(AgencyRequest.step_id == step.id)).all()) == 2
        kinds = {t.kind for t in s.exec(select(Timer).where(Timer.step_id == step.id,
                                                            Timer.status == TimerStatus.pending))}
    assert TimerKind.answer_overdue in kinds


def test_unknown_template_and_person_are_refused(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]
) -> None:
    with Session(db) as s:
        with pytest.raises(ValueError, match="template"):
            register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                 template_code="nope")
        with pytest.raises(NotFoundError, match="person_id"):
            register_application(s, cfg, now=clock.now(), person_id="pn_x",
                                 template_code="supported_living", template_version=0)
        s.rollback()
        assert s.exec(select(Route)).all() == []


def test_an_answer_applied_late_counts_from_when_it_came(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]
) -> None:
    """A worker that was down applies the answer days later: the step was answered when the
    agency answered, and the next step's send-by period (1 working day, 298-п п.10) counts
    from then — it is already overdue, not silently moved."""
    clock.freeze(kaliningrad(2025, 3, 3, 10, 0))  # Monday
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
    receive_inbox(db, clock, cfg, route.id)  # the agency opens its inbox at once
    first = _steps(db, route.id)[0]
    answered_at = kaliningrad(2025, 3, 4, 11, 0)  # Tuesday
    clock.freeze(answered_at)
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, first.agency_id)
        assert agency is not None and first.current_request_id is not None
        ans, _ = record_answer(s, agency=agency, webhook_id="w-late-apply", now=clock.now(),
                               answer=AnswerIn(first.current_request_id,
                                               AnswerOutcome.provided, {}, None))
        s.commit()
    clock.freeze(kaliningrad(2025, 3, 7, 9, 0))  # applied on Friday
    with Session(db, expire_on_commit=False) as s:
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
    done, nxt = _steps(db, route.id)[:2]
    assert done.answered_at == answered_at
    assert nxt.ready_at == answered_at
    assert nxt.send_by_date == date(2025, 3, 5)  # Wednesday: 1 working day after Tuesday
