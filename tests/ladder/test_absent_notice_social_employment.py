"""001 Регламент п.16: a social-employment route is not completed until all six actions are
done. A notice that the information is absent (001 Порядок п.11, a valid answer elsewhere)
does not do a mandatory action: the step needs clarification, audited with the clause, and
the coordinator asks again. An optional step (sport) and other templates' steps are
completed by it as before."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import (
    AnswerIn,
    EngineConfig,
    apply_answer,
    record_answer,
    resend_after_clarification,
)
from models.agencies import Agency, AnswerOutcome
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import absent_completes, get_template
from tests.conftest import kaliningrad
from tests.ladder.conftest import audits, new_route, receive_inbox

NOW = kaliningrad(2026, 1, 12, 10, 0)


def _steps(db: Engine, route_id: str) -> dict[str, Step]:
    with Session(db) as s:
        return {x.kind: x for x in s.exec(select(Step).where(Step.route_id == route_id)
                                          .order_by(col(Step.seq)))}


def _answer(db: Engine, clock: DbClock, cfg: EngineConfig, step: Step,
            outcome: AnswerOutcome, n: int = 0) -> None:
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id is not None
        ans, _ = record_answer(s, agency=agency, webhook_id=f"w-{step.id}-{n}", now=clock.now(),
                               answer=AnswerIn(task_id=step.current_request_id,
                                               outcome=outcome, payload={},
                                               comment="сведений нет"))
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()


def test_an_absent_notice_does_not_do_an_action_the_coordinator_asks_again(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    route_id = new_route(db, clock, cfg, seeded[0], template="social_employment",
                         template_version=1, at=NOW)
    need = _steps(db, route_id)["need_determined"]
    _answer(db, clock, cfg, need, AnswerOutcome.absent)
    steps = _steps(db, route_id)
    need = steps["need_determined"]
    assert need.status is StepStatus.needs_clarification
    assert need.outcome_note is not None and "001 Регламент п.16" in need.outcome_note
    # the next action does not start: the first is not done
    assert steps["conditions_created"].status is StepStatus.planned
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status is RouteStatus.active
    [rec] = audits(db, entity="step", action="answer_absent", route_id=route_id)
    assert rec.after is not None and rec.after["status"] == "needs_clarification"
    assert rec.after["absent_not_done"] is True
    assert rec.reason is not None and rec.reason.startswith("001 Регламент п.16")
    # the coordinator asks again; an answer that provides it does the action
    with Session(db, expire_on_commit=False) as s:
        req = resend_after_clarification(s, cfg, step_id=need.id, clarification="уточнено",
                                         now=clock.now(), actor="staff:coord39")
        s.commit()
    receive_inbox(db, clock, cfg, route_id)
    need = _steps(db, route_id)["need_determined"]
    assert need.current_request_id == req.id
    _answer(db, clock, cfg, need, AnswerOutcome.provided, n=1)
    steps = _steps(db, route_id)
    assert steps["need_determined"].status is StepStatus.answered
    assert steps["conditions_created"].status is StepStatus.sending


def test_an_optional_step_and_other_templates_are_completed_by_an_absent_notice(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    route_id = new_route(db, clock, cfg, seeded[0], template="social_employment",
                         template_version=1, at=NOW)
    _answer(db, clock, cfg, _steps(db, route_id)["need_determined"], AnswerOutcome.provided)
    receive_inbox(db, clock, cfg, route_id)
    _answer(db, clock, cfg, _steps(db, route_id)["sport"], AnswerOutcome.absent)
    assert _steps(db, route_id)["sport"].status is StepStatus.absent  # optional (п.6 пп.10)
    other = new_route(db, clock, cfg, seeded[1], template="supported_living", at=NOW)
    _answer(db, clock, cfg, _steps(db, other)["need_assessment"], AnswerOutcome.absent)
    assert _steps(db, other)["need_assessment"].status is StepStatus.absent
    # the rule, read from the template's data
    se = get_template("social_employment", 1)
    kinds = [st.kind for st in se.steps]
    assert absent_completes(se, kinds.index("services_provided")) == (
        False, "001 Регламент п.16")
    assert absent_completes(se, kinds.index("health_monitoring")) == (True, None)  # recurring
    assert absent_completes(get_template("accompaniment", 1), 0) == (True, None)
