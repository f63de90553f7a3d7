"""Consent withdrawn mid-route (152-ФЗ art. 9 ч.2; 004 п.11): the route is suspended, the
agency with the open request gets a cancel notice, timers stop, it is audited — and nothing
carrying the person's data is sent afterwards (the agency's HTTP endpoint proves it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.persons.consent_withdrawal import withdraw_consent
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from engine.supervisor.actions import reassign_step
from models.agencies import Agency, AgencyRequest, AnswerEffect, AnswerOutcome, RequestState
from models.person_file import ApplicationRecord, ConsentVersion, PersonDetail
from models.routes import CancelNotice, Route, RouteStatus, Step, StepStatus
from models.staff import StaffUser
from models.timers import Timer, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import AgencyEndpoint, Staff, run_worker, sweep, worker_settings
from tests.person_file.conftest import audits, consent, extract, form


def _route_awaiting(api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
                    coord: Staff, tmp_path: Path) -> tuple[str, str, Step]:
    assert api.post("/api/ipra", json=extract(), headers=coord.headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form("supported_living"), "consent": consent()})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["eligible"] is True and body["route_id"]
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    with Session(db) as s:
        step = s.exec(select(Step).where(Step.route_id == body["route_id"],
                                         Step.seq == 0)).one()
    assert step.status.value == "awaiting" and step.current_request_id
    return body["person_id"], body["route_id"], step


def test_withdrawal_mid_route_suspends_it_and_nothing_is_sent_afterwards(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path) -> None:
    coord = staff["coord39"]
    person_id, route_id, step = _route_awaiting(api, db, clock, cfg, coord, tmp_path)
    assert step.agency_id in ("msp39", "msp39b")
    sent = endpoint.to(step.agency_id)
    assert len(sent) == 1 and sent[0].body["subject"]["snils"] == "112-233-445 95"
    with Session(db) as s:
        assert s.exec(select(Timer).where(Timer.route_id == route_id,
                                          Timer.status == TimerStatus.pending)).first()

    w = api.post(f"/api/persons/{person_id}/consent/withdraw", headers=coord.headers)
    assert w.status_code == 200, w.text
    body = w.json()
    assert body["routes_suspended"] == [route_id] and body["cancel_notices"] == 1
    assert body["consents"] == ["cn_1/v2"] and body["timers_cancelled"] > 0
    assert body["applications_blocked"] == 1
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status is RouteStatus.suspended
        assert not s.exec(select(Timer).where(Timer.route_id == route_id,
                                              Timer.status == TimerStatus.pending)).all()
        req = s.get(AgencyRequest, step.current_request_id)
        assert req is not None and req.state is RequestState.cancelled
        versions = s.exec(select(ConsentVersion).order_by(ConsentVersion.version)).all()
        assert [(v.version, v.withdrawn_at is not None) for v in versions] == [
            (1, False), (2, True)]
        detail = s.get(PersonDetail, person_id)
        assert detail is not None and detail.destroy_by is not None
        assert all(a.blocked_at is not None for a in s.exec(select(ApplicationRecord)))
    assert [e.action for e in audits(db, entity="route", route_id=route_id)
            if e.action == "suspended"] == ["suspended"]
    [ev] = audits(db, action="consent_withdrawn")
    assert ev.actor == "staff:coord39" and ev.entity_id == person_id
    assert "112-233-445" not in str(ev.after)

    # the worker delivers the cancel notice — and nothing else
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    after = endpoint.to(step.agency_id)
    assert len(after) == 2 and after[1].body == {
        "task_id": step.current_request_id, "cancelled": True,
        "reason": "согласие на обработку персональных данных отозвано (152-ФЗ ст. 9 ч. 2)"}
    with Session(db) as s:
        notice = s.exec(select(CancelNotice)).one()
        assert notice.state.value == "delivered"

    # the agency answers the withdrawn request anyway: ignored, no next step's request
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id is not None
        ans, _ = record_answer(s, agency=agency, webhook_id="wh-late-1", now=clock.now(),
                               answer=AnswerIn(task_id=step.current_request_id,
                                               outcome=AnswerOutcome.provided, payload={},
                                               comment=None))
        assert ans.id is not None
        assert apply_answer(s, cfg, ans.id, now=clock.now()) is AnswerEffect.request_cancelled
        s.commit()
    # a supervisor cannot send the suspended route's step to another agency
    other = "msp39b" if step.agency_id == "msp39" else "msp39"
    with Session(db) as s:
        sup = s.get(StaffUser, "sup39")
        assert sup is not None
        with pytest.raises(EngineError):
            reassign_step(s, cfg, staff=sup, step_id=step.id, agency_id=other,
                          reason="проверка", now=clock.now())
        s.rollback()
    # weeks pass: no timer fires, nothing goes out
    clock.freeze(kaliningrad(2026, 3, 2, 10, 0))
    assert sweep(db, clock, cfg).fired == {}
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    assert len(endpoint.received) == 2
    with Session(db) as s:
        assert len(s.exec(select(AgencyRequest)).all()) == 1


def test_a_second_withdrawal_has_nothing_to_withdraw(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form(), "consent": consent()})
    person_id = r.json()["person_id"]
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=coord.headers).status_code == 200
    again = api.post(f"/api/persons/{person_id}/consent/withdraw", headers=coord.headers)
    assert again.status_code == 409
    # another region's coordinator does not learn the person exists
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=staff["coord16"].headers).status_code == 404
    # after the withdrawal the person's contacts are not shown (blocked)
    p = api.get(f"/api/persons/{person_id}", headers=coord.headers).json()
    assert p["processing_stopped"] is True and p["phones"] is None and p["email"] is None


def test_withdraw_consent_use_case_refuses_an_unknown_person(
        db: Engine, cfg: EngineConfig, now: object) -> None:
    with Session(db) as s, pytest.raises(EngineError):
        withdraw_consent(s, cfg, person_id="pn_nope", now=kaliningrad(2026, 1, 12, 12),
                         actor="t")


def test_a_suspended_route_shows_in_prefect_and_on_the_overview_page() -> None:
    from api.web.core import ROUTE_STATUS_RU as STATUS_RU
    from tasks.prefect_mirror import RouteView, StepView, route_state

    steps = [StepView(id=f"s{i}", seq=i, kind="k", status=st, agency="Минздрав",
                      answer_by_date=None, send_by_date=None, task_run_id=None, mirrored=None)
             for i, st in enumerate((StepStatus.answered, StepStatus.awaiting,
                                     StepStatus.planned))]
    state = route_state(RouteView(id="rt_1", region="39", template="supported_living",
                                  status=RouteStatus.suspended, flow_run_id=None,
                                  mirrored=None, steps=steps))
    assert (state.type.value, state.name) == ("CANCELLED", "Suspended")
    assert state.message == "маршрут приостановлен: согласие отозвано, после 1 из 3 шагов"
    assert STATUS_RU[RouteStatus.suspended] == "приостановлен"
