"""The answer period of a paper/inbox agency starts on receipt (298-п Порядок п.11: «со дня
получения»), not when the request is prepared: until then the step awaits receipt and the
send-by deadline of п.10 still runs. Opened in the agency's inbox two working days after
preparation, the answer is due 5 working days after the opening. Staff may record a paper
delivery instead, with when it happened."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from engine.staff.accounts import create_staff
from engine.staff.passwords import hash_password
from models.staff import StaffRole
from models.timers import DeadlineKind, Escalation, EscalationStatus
from tasks.prefect_mirror import load_view, step_state
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, sweep
from tests.route_life.conftest import pending, register, request_of, route_audits, steps
from tests.web.conftest import PASSWORD, sign_in_client


def test_inbox_opened_two_working_days_later_counts_five_days_from_the_opening(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id = register(api, staff["coord39"])  # prepared Mon 12.01.2026 12:00
    mse = steps(db, route_id)["mse_informing"]
    req = request_of(db, mse)
    assert mse.status.value == "sending" and mse.answer_by_date is None
    assert mse.send_by_date == date(2026, 1, 13)  # 298-п Порядок п.10: 1 working day
    view = load_view(db, route_id, clock.now())
    assert view is not None
    state = step_state(next(x for x in view.steps if x.id == mse.id))
    assert state is not None and state.name == "AwaitingReceipt"

    clock.freeze(kaliningrad(2026, 1, 14, 10))  # Wed: two working days after preparation
    sweep(db, clock, cfg)  # the send-by deadline (Tue 13.01) ran out: it climbs the ladder
    with Session(db) as s:
        [late] = s.exec(select(Escalation).where(Escalation.step_id == mse.id)).all()
        assert late.deadline_kind is DeadlineKind.send_by
        user, _ = create_staff(s, id="agency_mse", display_name="Сотрудник МСЭ",
                               role=StaffRole.agency, region="39", agency_id=mse.agency_id)
        user.password_hash = hash_password(PASSWORD)
        s.add(user)
        s.commit()
    agency = sign_in_client(api.app, "agency_mse")  # type: ignore[arg-type]
    assert agency.get(f"/inbox/{req.id}").status_code == 200  # opened: received

    got = steps(db, route_id)["mse_informing"]
    # 15, 16, 19, 20, 21: 5 working days from the opening, not from the preparation
    assert got.status.value == "awaiting" and got.answer_by_date == date(2026, 1, 21)
    assert {t.due_date for t in pending(db, mse.id)} >= {date(2026, 1, 21)}
    with Session(db) as s:
        esc = s.exec(select(Escalation).where(Escalation.step_id == mse.id)).one()
        assert esc.status is EscalationStatus.resolved
        assert esc.resolution == "request delivered 1 working day(s) late"
    [receipt] = route_audits(db, route_id, "received_by_agency")
    assert receipt.actor == "staff:agency_mse" and receipt.entity_id == req.id

    clock.freeze(kaliningrad(2026, 1, 16, 10))
    assert agency.get(f"/inbox/{req.id}").status_code == 200  # opened again: no change
    assert steps(db, route_id)["mse_informing"].answer_by_date == date(2026, 1, 21)
    assert len(route_audits(db, route_id, "received_by_agency")) == 1


def test_staff_record_a_paper_delivery_with_its_time(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)
    req = request_of(db, steps(db, route_id)["rehabilitation_route"])
    clock.freeze(kaliningrad(2026, 1, 16, 10))
    future = api.post(f"/api/requests/{req.id}/receipt", headers=coord.headers,
                      json={"received_at": "2026-01-17T10:00:00+02:00"})
    assert future.status_code == 422
    assert future.json()["detail"] == "received_at: must not be in the future"
    r = api.post(f"/api/requests/{req.id}/receipt", headers=coord.headers,
                 json={"received_at": "2026-01-13T15:00:00+02:00"})
    assert r.status_code == 200, r.text
    # received Tue 13.01: 14, 15, 16, 19, 20
    assert r.json() == {"request_id": req.id, "recorded": True, "answer_by_date": "2026-01-20"}
    again = api.post(f"/api/requests/{req.id}/receipt", headers=coord.headers, json={})
    assert again.status_code == 200 and again.json()["recorded"] is False
    other = api.post(f"/api/requests/{req.id}/receipt", headers=staff["sup16"].headers,
                     json={})
    assert other.status_code in (403, 404)


def test_a_withdrawn_request_opened_is_not_received_and_is_received_once_sent_again(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    """A refusal (004 п.11) withdraws the МСЭ's request before it was received; opening it
    then records no receipt, so once resumed and sent again its opening is the receipt
    and the answer period starts (298-п Порядок п.11)."""
    coord = staff["coord39"]
    route_id = register(api, coord)
    mse = steps(db, route_id)["mse_informing"]
    req = request_of(db, mse)
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"agency_id": mse.agency_id, "application_date": "2026-01-14"})
    assert r.status_code == 200, r.text
    opened = api.post(f"/api/requests/{req.id}/receipt", json={}, headers=coord.headers)
    assert opened.status_code == 200, opened.text
    assert opened.json()["recorded"] is False
    assert route_audits(db, route_id, "received_by_agency") == []
    assert steps(db, route_id)["mse_informing"].status.value == "paused"

    clock.freeze(kaliningrad(2026, 1, 21, 10))
    r = api.post(f"/api/routes/{route_id}/resume-participant", headers=coord.headers,
                 json={"agency_id": mse.agency_id, "application_date": "2026-01-21"})
    assert r.status_code == 200, r.text
    assert steps(db, route_id)["mse_informing"].status.value == "sending"
    clock.freeze(kaliningrad(2026, 1, 22, 10))
    got = api.post(f"/api/requests/{req.id}/receipt", json={}, headers=coord.headers)
    assert got.status_code == 200 and got.json()["recorded"] is True, got.text
    back = steps(db, route_id)["mse_informing"]
    # 23, 26, 27, 28, 29: 5 working days from the receipt of the request sent again
    assert back.status.value == "awaiting" and back.answer_by_date == date(2026, 1, 29)
    assert len(route_audits(db, route_id, "received_by_agency")) == 1
