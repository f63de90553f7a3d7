"""Recurring steps and the order of social employment's six actions, on the moved clock.

001 Регламент п.6 пп.8: the health of a social-employment participant is monitored
periodically — the template's ``health_monitoring`` asks its agency again every 60 working
days while the route lives: each occurrence a new request with its own key, opened by a
timer the previous answer wrote; a missed check goes up the ladder; the route completes
without waiting for it and ends it (its agency told). 001 Регламент п.16: the six actions
are mandatory and in this order: none opens before the one before it is done, and the
route is not completed until all six are."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import calendars
from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.routes import transitions
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from models.agencies import Agency, AgencyRequest, AnswerOutcome
from models.routes import CancelNotice, Route, RouteStatus, Step, StepStatus
from models.templates import template_of
from models.timers import Escalation, EscalationLevel, Timer, TimerKind, TimerStatus
from tests.ladder.conftest import Staff, receive_inbox, sweep
from tests.person_file.conftest import apply_with_ipra, consent, extract, form

SIX = ["need_determined", "conditions_created", "services_provided", "person_recorded",
       "services_recorded", "satisfaction_monitored"]
OPEN = (StepStatus.sending, StepStatus.awaiting)
PERIOD = 60  # the template's period of health monitoring, working days


def _route(api: TestClient, coord: Staff) -> str:
    doc = extract()
    doc["ipra"]["limitations"] = [{"category": "work", "degree": 3}]
    doc["ipra"]["work_recommendation"] = "simple_work_with_significant_help"
    assert api.post("/api/ipra", json=doc, headers=coord.headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form("social_employment"), "consent": consent()})
    assert r.status_code == 201 and r.json()["eligible"] is True, r.text
    route_id: str = r.json()["route_id"]
    return route_id


def _steps(db: Engine, route_id: str) -> dict[str, Step]:
    with Session(db) as s:
        return {x.kind: x for x in s.exec(select(Step).where(Step.route_id == route_id))}


def _answer(db: Engine, clock: DbClock, cfg: EngineConfig, step: Step) -> None:
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id is not None
        ans, _ = record_answer(s, agency=agency, webhook_id=f"wh-{step.current_request_id}",
                               now=clock.now(),
                               answer=AnswerIn(task_id=step.current_request_id,
                                               outcome=AnswerOutcome.provided, payload={},
                                               comment=None))
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()


def _next_check(db: Engine, step_id: str) -> Timer | None:
    with Session(db) as s:
        return s.exec(select(Timer).where(Timer.step_id == step_id,
                                          Timer.kind == TimerKind.recur_next,
                                          Timer.status == TimerStatus.pending)).first()


def _requests(db: Engine, step_id: str) -> list[AgencyRequest]:
    with Session(db) as s:
        return list(s.exec(select(AgencyRequest).where(AgencyRequest.step_id == step_id)
                           .order_by(col(AgencyRequest.created_at))))


def _health_open(api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
                 staff: dict[str, Staff]) -> str:
    route_id = _route(api, staff["coord39"])
    _answer(db, clock, cfg, _steps(db, route_id)["need_determined"])
    assert _steps(db, route_id)["health_monitoring"].status in OPEN
    return route_id


def test_a_check_recurs_every_n_working_days_across_holidays(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id = _health_open(api, db, clock, cfg, staff)
    cal = calendars.get_calendar("39")
    opened = []
    for n in range(3):
        step = _steps(db, route_id)["health_monitoring"]
        assert step.status in OPEN and step.ready_at is not None
        opened.append(step.ready_at)
        _answer(db, clock, cfg, step)
        timer = _next_check(db, step.id)
        assert timer is not None  # written with the answer, in its transaction
        want = calendars.deadline(step.ready_at, PERIOD, "39")
        assert (timer.due_at, timer.due_date) == (want.due_at, want.due_date)
        if n == 2:
            break
        clock.freeze(timer.due_at - timedelta(minutes=1))
        assert sweep(db, clock, cfg).fired.get("recur_next", 0) == 0  # not before its time
        clock.freeze(timer.due_at)
        assert sweep(db, clock, cfg).fired == {"recur_next": 1}
    reqs = _requests(db, _steps(db, route_id)["health_monitoring"].id)
    assert len(reqs) == 3 and len({r.idempotency_key for r in reqs}) == 3  # a key each
    assert [r.id for r in reqs] == [r.idempotency_key for r in reqs]
    for a, b in zip(opened, opened[1:], strict=False):
        assert b == calendars.deadline(a, PERIOD, "39").due_at
        days = [a.date() + timedelta(days=i) for i in range((b - a).days)]
        # the spacing counts working days: weekday holidays (23 Feb, 9 Mar, 1 May …) in it
        assert any(d.weekday() < 5 and not cal.is_working_day(d) for d in days)
    assert _steps(db, route_id)["health_monitoring"].status is StepStatus.answered
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status is RouteStatus.active


def test_a_missed_check_goes_up_the_ladder(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id = _health_open(api, db, clock, cfg, staff)
    _answer(db, clock, cfg, _steps(db, route_id)["health_monitoring"])
    timer = _next_check(db, _steps(db, route_id)["health_monitoring"].id)
    assert timer is not None
    clock.freeze(timer.due_at)
    sweep(db, clock, cfg)
    receive_inbox(db, clock, cfg, route_id)  # the agency opens the new check in its inbox
    step = _steps(db, route_id)["health_monitoring"]
    assert step.status is StepStatus.awaiting and step.answer_by is not None
    clock.freeze(step.answer_by)
    clock.advance_working_days(3)  # the agency is silent: overdue, then escalated
    sweep(db, clock, cfg)
    with Session(db) as s:
        levels = {e.level for e in s.exec(select(Escalation).where(
            Escalation.step_id == step.id, Escalation.deadline_kind == "answer_by"))}
    assert {EscalationLevel.overdue, EscalationLevel.escalated} <= levels
    assert _next_check(db, step.id) is None  # no new occurrence over a missed one


def test_the_six_actions_go_in_order_and_the_route_completes_after_the_sixth(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """And the completion ends the recurring check: its open occurrence is withdrawn (its
    agency told) and no timer of it is left."""
    route_id = _health_open(api, db, clock, cfg, staff)
    # action 3 cannot start while action 2 is open: refused, naming the rule
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None
        third = s.exec(select(Step).where(Step.route_id == route_id,
                                          Step.kind == "services_provided")).one()
        with pytest.raises(EngineError, match=r"services_provided cannot start before "
                                              r"conditions_created.*001 Регламент п\.16"):
            transitions._start_step(s, cfg, route, template_of(route), third,
                                    ready_at=clock.now(), now=clock.now(), actor="test")
        s.rollback()
    for kind in ("sport", "culture"):  # optional, beside the actions
        _answer(db, clock, cfg, _steps(db, route_id)[kind])
    for i, kind in enumerate(SIX[1:], start=1):
        steps = _steps(db, route_id)
        # only the next action is open; the later ones wait, with no request
        assert [k for k in SIX if steps[k].status in OPEN] == [kind]
        assert all(steps[k].status is StepStatus.planned and steps[k].current_request_id
                   is None for k in SIX[i + 1:])
        with Session(db) as s:
            route = s.get(Route, route_id)
            assert route is not None and route.status is RouteStatus.active
        _answer(db, clock, cfg, steps[kind])
    steps = _steps(db, route_id)
    health = steps["health_monitoring"]
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status is RouteStatus.completed
        pending = list(s.exec(select(Timer).where(Timer.route_id == route_id,
                                                  Timer.status == TimerStatus.pending)))
        assert pending == []
        assert health.current_request_id is not None
        req = s.get(AgencyRequest, health.current_request_id)
        assert req is not None and req.state.value == "cancelled"
        notice = s.get(CancelNotice, f"{req.idempotency_key}:cancel")
        assert notice is not None  # the agency is told
    assert health.status is StepStatus.cancelled
    clock.advance_working_days(PERIOD + 5)
    assert sweep(db, clock, cfg).fired.get("recur_next", 0) == 0
    assert len(_requests(db, health.id)) == 1


def test_closing_an_optional_step_opens_what_waits_for_it_beside_a_recurring_check(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """Supported living: the person does not choose the training apartment (000 п.12 "при
    наличии возможности"); the supervisor closes it while the annual need monitoring (000
    п.10, recurring) runs beside it — supported housing, which waited for both the
    assessment and the apartment, opens at once."""
    coord = staff["coord39"]
    route_id = apply_with_ipra(api, coord.headers, "supported_living")
    _answer(db, clock, cfg, _steps(db, route_id)["need_assessment"])
    steps = _steps(db, route_id)
    assert steps["need_monitoring"].status in OPEN
    assert steps["supported_housing"].status is StepStatus.planned
    resp = api.post(f"/api/supervisor/steps/{steps['training_apartment'].id}/close",
                    headers=staff["sup39"].headers,
                    json={"reason": "получатель выбрал проживание без тренировочной квартиры"})
    assert resp.status_code == 200, resp.text
    steps = _steps(db, route_id)
    assert steps["training_apartment"].status is StepStatus.cancelled
    assert steps["need_monitoring"].status in OPEN
    assert steps["supported_housing"].status in OPEN
