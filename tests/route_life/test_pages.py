"""The route page's forms of the route's life (004 п.11–13; 298-п Порядок п.11): a
coordinator records a paper delivery, the person's refusal of a participant and its
resumption, and the application to stop; a refusal comes back with the reason, nothing
changed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from engine.infra.clock import DbClock
from engine.staff.passwords import hash_password
from models.routes import RouteStatus, StepStatus
from models.staff import StaffUser
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff
from tests.route_life.conftest import register, request_of, route, steps
from tests.web.conftest import PASSWORD, csrf_of, sign_in_client


def test_the_coordinator_uses_the_route_page_forms(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    route_id = register(api, staff["coord39"])
    with Session(db) as s:
        user = s.get(StaffUser, "coord39")
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
        s.add(user)
        s.commit()
    web = sign_in_client(api.app, "coord39")  # type: ignore[arg-type]
    page = web.get(f"/routes/{route_id}")
    assert page.status_code == 200
    assert "ожидает получения" in page.text and "Запрос вручён ведомству" in page.text
    csrf = csrf_of(page.text)
    sfr = steps(db, route_id)["sfr_tsr_consulting"]
    req = request_of(db, sfr)

    r = web.post(f"/routes/{route_id}/receipt/{req.id}",
                 data={"csrf_token": csrf, "received_at": "2026-01-12T12:00"})
    assert r.status_code == 303 and "notice=" in r.headers["location"], r.headers
    got = steps(db, route_id)["sfr_tsr_consulting"]
    assert got.status is StepStatus.awaiting, r.headers["location"]
    assert got.status is StepStatus.awaiting and got.answer_by_date is not None
    assert got.answer_by_date.isoformat() == "2026-01-19"

    clock.freeze(kaliningrad(2026, 1, 14, 10))
    bad = web.post(f"/routes/{route_id}/life", data={
        "csrf_token": csrf, "act": "refuse", "agency_id": sfr.agency_id,
        "application_date": "2026-02-01"})
    # refused beside the form, in Russian, naming the field and the rule; nothing changed
    assert bad.status_code == 422
    assert 'id="life-error"' in bad.text and \
        "Дата заявления: дата ещё не наступила." in bad.text
    assert steps(db, route_id)["sfr_tsr_consulting"].status is StepStatus.awaiting
    r = web.post(f"/routes/{route_id}/life", data={
        "csrf_token": csrf, "act": "refuse", "agency_id": sfr.agency_id,
        "application_date": "2026-01-14"})
    assert r.status_code == 303
    assert steps(db, route_id)["sfr_tsr_consulting"].status is StepStatus.paused
    shown = web.get(r.headers["location"])
    assert shown.status_code == 200 and "приостановлен (отказ от сопровождения)" in shown.text
    r = web.post(f"/routes/{route_id}/life", data={
        "csrf_token": csrf, "act": "resume", "agency_id": sfr.agency_id,
        "application_date": "2026-01-14"})
    assert r.status_code == 303
    assert steps(db, route_id)["sfr_tsr_consulting"].status is StepStatus.awaiting
    r = web.post(f"/routes/{route_id}/life", data={
        "csrf_token": csrf, "act": "terminate", "agency_id": "",
        "application_date": "2026-01-14"})
    assert r.status_code == 303
    assert route(db, route_id).status is RouteStatus.terminated
    assert "сопровождение прекращено" in web.get(f"/routes/{route_id}").text
