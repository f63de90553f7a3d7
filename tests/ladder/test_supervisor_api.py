"""The supervisor's actions over HTTP: each action, its refusals (4xx, nothing changed) and
the audit record it leaves (298-п Порядок п.13, Регламент п.17)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from models.agencies import Agency, AgencyRequest, AgencyRole, AnswerOutcome, RequestState
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.timers import EscalationStatus, Timer, TimerStatus
from sim.seed import make_secret, seed_agencies
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, escalations, new_route, receive_inbox, sweep


@pytest.fixture
def escalated(db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
              staff: dict[str, Staff]) -> str:
    """A route (received Mon 03.03.2025, answer by 10.03) whose agency is silent until
    Thu 13.03.2025 10:00: reminder, overdue and escalation are open."""
    route_id = new_route(db, clock, cfg, seeded[0])
    with Session(db) as s:  # a second provider of the same service, added afterwards
        s.add(Agency(id="msp39b", name="Второй участник", short_name="Минсоц-2",
                     role=AgencyRole.social_policy, region="39",
                     secret_current=make_secret("msp39b")))
        seed_agencies(s, region="16")
        s.commit()
    clock.freeze(kaliningrad(2025, 3, 13, 10, 0))
    sweep(db, clock, cfg)
    assert sorted(int(e.level) for e in escalations(db, route_id)) == [0, 1, 2]
    return route_id


def _audit_count(db: Engine) -> int:
    with Session(db) as s:
        return int(s.exec(select(func.count()).select_from(AuditEvent)).one())


def _refused(client: TestClient, db: Engine, method: str, url: str, who: Staff,
             status: int, field: str, json: dict[str, Any] | None = None) -> None:
    before = _audit_count(db)
    r = client.request(method, url, headers=who.headers, json=json)
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith(f"{field}:"), r.json()
    assert _audit_count(db) == before  # nothing changed, nothing recorded


def _step(db: Engine, route_id: str, seq: int = 0) -> Step:
    with Session(db) as s:
        return s.exec(select(Step).where(Step.route_id == route_id, Step.seq == seq)).one()


def _last_audit(db: Engine, action: str) -> AuditEvent:
    with Session(db) as s:
        return s.exec(select(AuditEvent).where(AuditEvent.action == action)
                      .order_by(col(AuditEvent.id).desc())).first()  # type: ignore[return-value]


# ------------------------------------------------------------------------------- auth, list
def test_auth_and_roles(client: TestClient, escalated: str, staff: dict[str, Staff]) -> None:
    assert client.get("/api/supervisor/escalations").status_code == 401
    r = client.get("/api/supervisor/escalations", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = client.get("/api/supervisor/escalations", headers=staff["coord39"].headers)
    assert r.status_code == 403 and r.json()["detail"].startswith("role:")


def test_list_filters_and_sorts(client: TestClient, escalated: str,
                                staff: dict[str, Staff]) -> None:
    h = staff["sup39"].headers
    rows = client.get("/api/supervisor/escalations", headers=h).json()
    assert [r["level"] for r in rows] == [2, 1, 0]  # same age: newest first
    assert {r["age_working_days"] for r in rows} == {3}  # 11, 12, 13 March after 10 March
    assert all(r["route_id"] == escalated and r["agency_id"] == "msp39" for r in rows)
    lvl2 = client.get("/api/supervisor/escalations?level=2", headers=h).json()
    assert [(r["level_name"], r["deadline"]) for r in lvl2] == [("escalated", "2025-03-10")]
    by_level = client.get("/api/supervisor/escalations?sort=-level", headers=h).json()
    assert [r["level"] for r in by_level] == [2, 1, 0]
    assert client.get("/api/supervisor/escalations?min_age_days=4", headers=h).json() == []
    assert client.get("/api/supervisor/escalations?agency_id=mz39", headers=h).json() == []
    # another region's supervisor sees nothing of region 39 and may not ask for it
    assert client.get("/api/supervisor/escalations", headers=staff["sup16"].headers).json() == []
    r = client.get("/api/supervisor/escalations?region=39", headers=staff["sup16"].headers)
    assert r.status_code == 403 and r.json()["detail"].startswith("region:")
    r = client.get("/api/supervisor/escalations?sort=name", headers=h)
    assert r.status_code == 422 and r.json()["detail"].startswith("sort:")
    # the administrator sees every region
    assert len(client.get("/api/supervisor/escalations",
                          headers=staff["admin"].headers).json()) == 3


# ------------------------------------------------------------------------------- acknowledge
def test_acknowledge(client: TestClient, db: Engine, escalated: str,
                     staff: dict[str, Staff]) -> None:
    esc = escalations(db, escalated)[-1]
    url = f"/api/supervisor/escalations/{esc.id}/acknowledge"
    _refused(client, db, "POST", url, staff["sup16"], 403, "region",
             json={"reason": "звоню"})
    # the reason is mandatory, as for every supervisor's action (issue 12)
    _refused(client, db, "POST", url, staff["sup39"], 422, "reason", json={})
    _refused(client, db, "POST", url, staff["sup39"], 422, "reason", json={"reason": " \u200b"})
    _refused(client, db, "POST", url, staff["sup39"], 422, "reason",
             json={"note": "звоню"})  # the former optional note is no reason
    r = client.post(url, headers=staff["sup39"].headers, json={"reason": "звоню в министерство"})
    assert r.status_code == 200 and r.json()["detail"]["status"] == "acknowledged"
    ev = _last_audit(db, "acknowledged")
    assert (ev.actor, ev.entity_id, ev.reason) == ("staff:sup39", str(esc.id),
                                                   "звоню в министерство")
    assert ev.before == {"status": "open"} and ev.after == {"status": "acknowledged"}
    _refused(client, db, "POST", url, staff["sup39"], 409, "escalation",
             json={"reason": "ещё раз"})
    _refused(client, db, "POST", "/api/supervisor/escalations/999/acknowledge",
             staff["sup39"], 404, "escalation_id", json={"reason": "звоню"})


# ------------------------------------------------------------------------------- extend
def test_extend_deadline(client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
                         escalated: str, staff: dict[str, Staff]) -> None:
    step = _step(db, escalated)
    url = f"/api/supervisor/steps/{step.id}/extend"
    sup = staff["sup39"]
    _refused(client, db, "POST", url, sup, 422, "days", json={"days": 0, "reason": "x"})
    _refused(client, db, "POST", url, sup, 422, "days", json={"days": -2, "reason": "x"})
    _refused(client, db, "POST", url, sup, 422, "reason", json={"days": 3, "reason": "  "})
    _refused(client, db, "POST", url, sup, 422, "days", json={"days": 1, "reason": "x"})  # past
    _refused(client, db, "POST", url, staff["sup16"], 403, "region",
             json={"days": 3, "reason": "x"})
    r = client.post(url, headers=sup.headers,
                    json={"days": 3, "reason": "ведомство запросило архив"})
    assert r.status_code == 200, r.text
    assert r.json()["detail"]["due_date"] == "2025-03-13"  # 10.03 + 11, 12, 13 March
    after = _step(db, escalated)
    assert str(after.answer_by_date) == "2025-03-13"
    ev = _last_audit(db, "deadline_extended")
    assert ev.actor == "staff:sup39" and ev.reason == "ведомство запросило архив"
    assert ev.before is not None and ev.after is not None
    assert ev.before["answer_by"] == "2025-03-10" and ev.after["answer_by"] == "2025-03-13"
    assert ev.after["deadline_version"] > ev.before["deadline_version"]
    assert {e.status for e in escalations(db, escalated)} == {EscalationStatus.resolved}
    with Session(db) as s:
        pending = list(s.exec(select(Timer).where(Timer.step_id == step.id,
                                                  Timer.status == TimerStatus.pending)))
    assert {t.deadline_version for t in pending} == {ev.after["deadline_version"]}
    # the ladder starts again on the new deadline: overdue on 14.03
    clock.freeze(kaliningrad(2025, 3, 14, 0, 0, 30))
    sweep(db, clock, cfg)
    new = [e for e in escalations(db, escalated) if e.status is EscalationStatus.open]
    assert [(int(e.level), str(e.due_date)) for e in new] == [(1, "2025-03-13")]


# ------------------------------------------------------------------------------- reassign
def test_reassign(client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
                  escalated: str, staff: dict[str, Staff]) -> None:
    step = _step(db, escalated)
    old_request = step.current_request_id
    url = f"/api/supervisor/steps/{step.id}/reassign"
    sup = staff["sup39"]
    _refused(client, db, "POST", url, sup, 422, "agency_id",
             json={"agency_id": "psu39a", "reason": "x"})  # another service
    _refused(client, db, "POST", url, sup, 422, "agency_id",
             json={"agency_id": "msp16", "reason": "x"})  # another region
    _refused(client, db, "POST", url, sup, 422, "agency_id",
             json={"agency_id": "msp39", "reason": "x"})  # the same agency
    _refused(client, db, "POST", url, sup, 404, "agency_id",
             json={"agency_id": "nope", "reason": "x"})
    _refused(client, db, "POST", url, sup, 422, "reason", json={"agency_id": "msp39b"})
    _refused(client, db, "POST", url, staff["sup16"], 403, "region",
             json={"agency_id": "msp39b", "reason": "x"})
    r = client.post(url, headers=sup.headers,
                    json={"agency_id": "msp39b", "reason": "участник не отвечает"})
    assert r.status_code == 200, r.text
    new_request = r.json()["detail"]["request_id"]
    after = _step(db, escalated)
    assert after.agency_id == "msp39b" and after.current_request_id == new_request
    assert after.status is StepStatus.sending  # in its inbox, awaiting receipt (298-п п.11)
    assert receive_inbox(db, clock, cfg, escalated) == 1  # the agency opens it
    after = _step(db, escalated)
    assert after.status is StepStatus.awaiting
    with Session(db) as s:
        old = s.get(AgencyRequest, old_request)
        assert old is not None and old.state is RequestState.cancelled
        reqs = list(s.exec(select(AgencyRequest).where(AgencyRequest.step_id == step.id)))
    assert len(reqs) == 2  # the history is kept
    ev = _last_audit(db, "reassigned")
    assert ev.before == {"agency_id": "msp39", "status": "awaiting"}
    assert ev.after is not None and ev.after["agency_id"] == "msp39b"
    assert ev.reason == "участник не отвечает"
    assert {e.status for e in escalations(db, escalated)} == {EscalationStatus.resolved}


# ------------------------------------------------------------------------------- close
def test_close_optional_and_mandatory_steps(client: TestClient, db: Engine, escalated: str,
                                            staff: dict[str, Staff]) -> None:
    sup = staff["sup39"]
    s0, s2 = _step(db, escalated, 0), _step(db, escalated, 2)
    _refused(client, db, "POST", f"/api/supervisor/steps/{s0.id}/close", sup, 422, "reason",
             json={"reason": ""})
    _refused(client, db, "POST", f"/api/supervisor/steps/{s0.id}/close", sup, 409, "step",
             json={"reason": "не нужен"})  # mandatory without cancel_route
    _refused(client, db, "POST", f"/api/supervisor/steps/{s0.id}/close", staff["sup16"], 403,
             "region", json={"reason": "x", "cancel_route": True})
    # an optional later step may be closed in advance; the route stays on its current step
    r = client.post(f"/api/supervisor/steps/{s2.id}/close", headers=sup.headers,
                    json={"reason": "обучение не требуется"})
    assert r.status_code == 200 and r.json()["detail"]["status"] == "cancelled"
    assert _step(db, escalated, 2).status is StepStatus.cancelled
    assert _step(db, escalated, 0).status is StepStatus.awaiting
    _refused(client, db, "POST", f"/api/supervisor/steps/{s2.id}/close", sup, 409, "step",
             json={"reason": "ещё раз"})  # closing a closed step
    # a mandatory step closes only with the route
    r = client.post(f"/api/supervisor/steps/{s0.id}/close", headers=sup.headers,
                    json={"reason": "заявление отозвано", "cancel_route": True})
    assert r.status_code == 200, r.text
    with Session(db) as s:
        route = s.get(Route, escalated)
        assert route is not None and route.status is RouteStatus.cancelled
        steps = list(s.exec(select(Step).where(Step.route_id == escalated)))
        assert {st.status for st in steps} == {StepStatus.cancelled}
        assert s.exec(select(func.count()).select_from(Timer)
                      .where(Timer.status == TimerStatus.pending)).one() == 0
    ev = _last_audit(db, "cancelled")
    assert ev.entity == "route" and ev.reason == "заявление отозвано"


def test_close_completed_step_refused_and_optional_current_step_completes_route(
    client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig, escalated: str,
    staff: dict[str, Staff],
) -> None:
    sup = staff["sup39"]
    for seq in (0, 1):
        _answer(db, clock, cfg, escalated, seq)
    s0, s2 = _step(db, escalated, 0), _step(db, escalated, 2)
    assert s0.status is StepStatus.answered and s2.status is StepStatus.awaiting
    _refused(client, db, "POST", f"/api/supervisor/steps/{s0.id}/close", sup, 409, "step",
             json={"reason": "x"})
    r = client.post(f"/api/supervisor/steps/{s2.id}/close", headers=sup.headers,
                    json={"reason": "место не предоставлено"})
    assert r.status_code == 200
    with Session(db) as s:
        route = s.get(Route, escalated)
        assert route is not None and route.status is RouteStatus.completed


def _answer(db: Engine, clock: DbClock, cfg: EngineConfig, route_id: str, seq: int) -> int:
    step = _step(db, route_id, seq)
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id is not None
        ans, _ = record_answer(s, agency=agency, webhook_id=f"wh-{step.id}",
                               answer=AnswerIn(step.current_request_id, AnswerOutcome.provided,
                                               {"ok": True}, None), now=clock.now())
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
    receive_inbox(db, clock, cfg, route_id)  # the next agency opens its inbox at once
    return ans.id


# ------------------------------------------------------------------------------- answer
def test_late_answer_resolves_the_ladder_with_lateness(
    db: Engine, clock: DbClock, cfg: EngineConfig, escalated: str,
) -> None:
    _answer(db, clock, cfg, escalated, 0)
    rows = escalations(db, escalated)
    assert {e.status for e in rows} == {EscalationStatus.resolved}
    assert {e.resolution for e in rows} == {"answer received 3 working day(s) late"}
    step = _step(db, escalated)
    assert step.late_working_days == 3
    with Session(db) as s:
        evs = list(s.exec(select(AuditEvent).where(AuditEvent.action == "resolved_by_answer")))
    assert len(evs) == 3 and all(e.after and e.after["late_working_days"] == 3 for e in evs)


# ------------------------------------------------------------------------------- history
def test_route_history_is_ordered_and_the_read_is_logged(
    client: TestClient, db: Engine, escalated: str, staff: dict[str, Staff],
) -> None:
    url = f"/api/routes/{escalated}/history"
    assert client.get(url).status_code == 401
    r = client.get(url, headers=staff["coord16"].headers)
    assert r.status_code == 403 and r.json()["detail"].startswith("region:")
    r = client.get(url, headers=staff["coord39"].headers)
    assert r.status_code == 200
    rows = r.json()
    assert rows[0]["action"] == "registered"
    assert [x["id"] for x in rows] == sorted(x["id"] for x in rows)
    assert {"fired", "opened"} <= {x["action"] for x in rows}
    ev = _last_audit(db, "read")
    assert ev.actor == "staff:coord39" and ev.entity_id == escalated
    assert client.get("/api/routes/rt_nope/history",
                      headers=staff["sup39"].headers).status_code == 404
