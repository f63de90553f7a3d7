"""The old agency is told when its request is withdrawn (a supervisor reassigns or closes the
step): a signed cancel notice POSTed to its endpoint with the request's idempotency key +
":cancel", retried like a request, recorded in the audit; an inbox agency sees the request
cancelled in its inbox at once."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from models.agencies import AgencyRequest, RequestChannel, RequestState
from models.jobs import Job, JobKind
from models.persons import Person
from models.routes import CancelNotice, CancelState, StepStatus
from tests.ladder.conftest import (
    AgencyEndpoint,
    Staff,
    audits,
    new_route,
    run_worker,
    step_of,
    worker_settings,
)


def _notice(db: Engine, request_id: str) -> CancelNotice:
    with Session(db) as s:
        return s.exec(select(CancelNotice).where(CancelNotice.request_id == request_id)).one()


def _delivered_http_route(db: Engine, clock: DbClock, cfg: EngineConfig, person: Person,
                          tmp_path: Path) -> tuple[str, str, str, str]:
    """A route whose first request was delivered over HTTP: (route, step, request, agency)."""
    route_id = new_route(db, clock, cfg, person)
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    step = step_of(db, route_id)
    assert step.status is StepStatus.awaiting
    assert step.current_request_id and step.agency_id
    return route_id, step.id, step.current_request_id, step.agency_id


def test_reassign_sends_a_signed_cancel_notice_retried_like_a_request(
    client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path,
) -> None:
    route_id, step_id, old_request, old_agency = _delivered_http_route(
        db, clock, cfg, seeded[0], tmp_path)
    other = "msp39b" if old_agency == "msp39" else "msp39"
    endpoint.statuses = {old_agency: [503]}  # the first cancel attempt meets a 503
    r = client.post(f"/api/supervisor/steps/{step_id}/reassign",
                    headers=staff["sup39"].headers,
                    json={"agency_id": other, "reason": "участник не отвечает"})
    assert r.status_code == 200, r.text
    notice = _notice(db, old_request)
    assert notice.id == f"{old_request}:cancel" and notice.state is CancelState.queued
    assert notice.channel is RequestChannel.http
    with Session(db) as s:
        assert s.exec(select(Job).where(Job.kind == JobKind.send_cancel)).one().ref == notice.id
    assert [e.action for e in audits(db, entity="request", route_id=route_id)
            if e.entity_id == old_request][-2:] == ["cancelled", "cancel_notice_queued"]

    run_worker(db, clock, cfg, worker_settings(tmp_path))
    cancels = [x for x in endpoint.to(old_agency) if x.body.get("cancelled")]
    assert len(cancels) == 2  # 503, then taken: the same notice both times
    for x in cancels:
        assert x.body == {"task_id": old_request, "cancelled": True,
                          "reason": "reassigned: участник не отвечает"}
        assert x.headers["Idempotency-Key"] == x.headers["webhook-id"] == notice.id
    new_requests = endpoint.to(other)
    assert len(new_requests) == 1 and not new_requests[0].body.get("cancelled")
    notice = _notice(db, old_request)
    assert notice.state is CancelState.delivered and notice.attempts == 2
    assert notice.delivered_at is not None
    [ev] = audits(db, action="cancel_notice_delivered")
    assert ev.entity_id == old_request and ev.after is not None
    assert ev.after["channel"] == "http" and ev.after["attempts"] == 2
    with Session(db) as s:
        assert s.exec(select(Job).where(Job.kind == JobKind.send_cancel)).first() is None
    assert step_of(db, route_id).agency_id == other


def test_a_refused_cancel_notice_is_recorded(
    client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path,
) -> None:
    route_id, step_id, old_request, old_agency = _delivered_http_route(
        db, clock, cfg, seeded[0], tmp_path)
    endpoint.statuses = {old_agency: [410]}
    r = client.post(f"/api/supervisor/steps/{step_id}/close", headers=staff["sup39"].headers,
                    json={"reason": "заявление отозвано", "cancel_route": True})
    assert r.status_code == 200, r.text
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    notice = _notice(db, old_request)
    assert notice.state is CancelState.failed and notice.attempts == 1
    assert notice.last_error is not None and notice.last_error.startswith("HTTP 410")
    [ev] = audits(db, action="cancel_notice_refused")
    assert ev.route_id == route_id and ev.after is not None and ev.after["attempts"] == 1
    assert [x.body for x in endpoint.to(old_agency) if x.body.get("cancelled")] == [
        {"task_id": old_request, "cancelled": True, "reason": "closed: заявление отозвано"}]


def test_inbox_agency_sees_the_cancellation_in_its_inbox(
    client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])  # inbox agencies: received at once (new_route)
    step = step_of(db, route_id, 2)
    first = step_of(db, route_id, 0)
    r = client.post(f"/api/supervisor/steps/{first.id}/close", headers=staff["sup39"].headers,
                    json={"reason": "заявление отозвано", "cancel_route": True})
    assert r.status_code == 200, r.text
    assert step.status is StepStatus.planned  # never started: nothing to withdraw
    assert first.current_request_id is not None
    with Session(db) as s:
        req = s.get(AgencyRequest, first.current_request_id)
        assert req is not None and req.state is RequestState.cancelled
        assert req.cancelled_at is not None
        assert s.exec(select(Job).where(Job.kind == JobKind.send_cancel)).first() is None
    notice = _notice(db, first.current_request_id)
    assert notice.channel is RequestChannel.inbox and notice.state is CancelState.delivered
    assert notice.reason == "closed: заявление отозвано"
    [ev] = audits(db, action="cancel_notice_delivered")
    assert ev.after is not None and ev.after["channel"] == "inbox"
