"""Refusing and resuming accompaniment (004 п.11, п.12) on the moved clock: for one
participant the СФР's step pauses — no request, a cancel notice, no timers — while the
others go on; on resume it continues with the working days it had left, its request sent
again under its own idempotency key. For all participants every open or planned step
pauses and comes back. Outside the ИПРА's term the refusal is refused, nothing changed."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from models.agencies import RequestState
from models.route_life import ParticipantRefusal
from models.routes import CancelNotice, CancelState, StepStatus
from models.suspension import StepSuspension
from models.timers import Escalation
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, sweep
from tests.route_life.conftest import pending, register, request_of, route_audits, steps

OPEN = (StepStatus.sending, StepStatus.awaiting)


def _receive(api: TestClient, coord: Staff, request_id: str) -> str:
    r = api.post(f"/api/requests/{request_id}/receipt", json={}, headers=coord.headers)
    assert r.status_code == 200, r.text
    day: str = r.json()["answer_by_date"]
    return day


def test_one_participant_refused_and_resumed_with_the_days_it_had_left(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)  # Mon 12.01.2026
    sfr = steps(db, route_id)["sfr_tsr_consulting"]
    assert sfr.status is StepStatus.sending and sfr.agency_id is not None
    key = request_of(db, sfr).idempotency_key
    # the СФР received it on Mon 12.01: answer by Mon 19.01 (298-п Порядок п.11)
    assert _receive(api, coord, key) == "2026-01-19"

    clock.freeze(kaliningrad(2026, 1, 14, 10))  # Wed: 15, 16, 19 — 3 working days left
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"agency_id": sfr.agency_id, "application_date": "2026-01-14"})
    assert r.status_code == 200, r.text
    assert r.json()["steps_paused"] == [sfr.id] and r.json()["cancel_notices"] == 1
    now = steps(db, route_id)
    assert now["sfr_tsr_consulting"].status is StepStatus.paused
    assert request_of(db, sfr).state is RequestState.cancelled
    with Session(db) as s:
        notice = s.exec(select(CancelNotice).where(CancelNotice.request_id == key)).one()
        assert notice.state is CancelState.delivered  # shown in its inbox at once
        row = s.exec(select(StepSuspension).where(StepSuspension.step_id == sfr.id)).one()
        assert row.refusal_id is not None and row.answer_days_left == 3
    assert pending(db, sfr.id) == []
    # the other participants go on: their send-by timers still run
    assert now["mse_informing"].status is StepStatus.sending
    assert pending(db, now["mse_informing"].id)

    clock.freeze(kaliningrad(2026, 1, 20, 10))  # past the СФР's old answer day
    sweep(db, clock, cfg)
    with Session(db) as s:
        assert not s.exec(select(Escalation).where(Escalation.step_id == sfr.id)).all()
        assert s.exec(select(Escalation).where(
            Escalation.step_id == now["mse_informing"].id)).all()

    clock.freeze(kaliningrad(2026, 1, 21, 10))  # Wed: resumed; 3 days -> 22, 23, 26
    r = api.post(f"/api/routes/{route_id}/resume-participant", headers=coord.headers,
                 json={"agency_id": sfr.agency_id, "application_date": "2026-01-21"})
    assert r.status_code == 200, r.text
    assert r.json()["steps"] == [sfr.id] and r.json()["requests_resent"] == [key]
    back = steps(db, route_id)["sfr_tsr_consulting"]
    assert back.status is StepStatus.awaiting
    assert back.answer_by_date == date(2026, 1, 26)
    assert back.current_request_id == key  # the same request, its own idempotency key
    assert request_of(db, back).state is RequestState.delivered
    assert {t.due_date for t in pending(db, sfr.id)} >= {date(2026, 1, 26)}
    [refused] = route_audits(db, route_id, "participant_refused")
    assert refused.after is not None and refused.after["agency_id"] == sfr.agency_id
    [resumed] = route_audits(db, route_id, "participant_resumed")
    assert resumed.after is not None and resumed.after["steps"] == [sfr.id]
    with Session(db) as s:
        refusal = s.exec(select(ParticipantRefusal)).one()
        assert refusal.resumed_at is not None
        assert refusal.resume_application_date == date(2026, 1, 21)


def test_all_participants_refused_and_resumed(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)
    before = steps(db, route_id)
    sfr = before["sfr_tsr_consulting"]
    _receive(api, coord, request_of(db, sfr).id)
    live = {k for k, x in before.items() if not x.status.terminal}
    planned = {k for k, x in before.items() if x.status is StepStatus.planned}
    assert planned and {k for k, x in before.items() if x.status in OPEN} == {
        "mse_informing", "rehabilitation_route", "sfr_tsr_consulting"}

    clock.freeze(kaliningrad(2026, 1, 14, 10))
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"agency_id": None, "application_date": "2026-01-13"})
    assert r.status_code == 200, r.text
    assert r.json()["cancel_notices"] == 3
    paused = steps(db, route_id)
    assert {k for k, x in paused.items() if x.status is StepStatus.paused} == live
    assert all(pending(db, x.id) == [] for x in paused.values())
    again = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                     json={"application_date": "2026-01-14"})
    assert again.status_code == 422 and again.json()["detail"].startswith("route: no open")

    clock.freeze(kaliningrad(2026, 1, 21, 10))
    r = api.post(f"/api/routes/{route_id}/resume-participant", headers=coord.headers,
                 json={"application_date": "2026-01-21"})
    assert r.status_code == 200, r.text
    after = steps(db, route_id)
    assert {k for k, x in after.items() if x.status is StepStatus.planned} == planned
    assert after["sfr_tsr_consulting"].status is StepStatus.awaiting
    assert after["sfr_tsr_consulting"].answer_by_date == date(2026, 1, 26)
    # the send-by day (Tue 13.01) had passed at the refusal: due at the end of the resume day
    assert after["mse_informing"].status is StepStatus.sending
    assert after["mse_informing"].send_by_date == date(2026, 1, 21)
    assert len(r.json()["requests_resent"]) == 3


def test_refusal_outside_the_ipra_term_is_refused_and_changes_nothing(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)  # the ИПРА runs to 01.12.2027
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"application_date": "2026-02-01"})
    assert r.status_code == 422 and r.json()["detail"].startswith("application_date: ")
    assert "future" in r.json()["detail"]
    clock.freeze(kaliningrad(2027, 12, 3, 10))
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"application_date": "2027-12-03"})
    assert r.status_code == 422, r.text
    assert "outside the term of ИПРА" in r.json()["detail"]
    assert "004 п.11" in r.json()["detail"]
    with Session(db) as s:
        assert s.exec(select(ParticipantRefusal)).all() == []
    assert not any(x.status is StepStatus.paused for x in steps(db, route_id).values())
    assert route_audits(db, route_id, "participant_refused") == []
