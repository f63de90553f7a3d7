"""After a withdrawal: a new consent makes resuming possible, a coordinator resumes the route
and its open step goes on with the working days it had left, its request sent again with the
same idempotency key (004 п.11, п.12; 152-ФЗ art. 9). Contacts and the ИПРА copy are
destroyed on their ``destroy_by`` day unless a new consent came first (art. 21 ч.5)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from engine.infra.clock import DbClock
from engine.infra.settings import get_settings
from engine.persons.data_purge import purge_due
from engine.routes.resume import days_left
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from models.agencies import Agency, AgencyRequest, AnswerOutcome, RequestState
from models.person_file import ApplicationRecord, IpraRecord, PersonDetail
from models.routes import CancelNotice, Route, RouteStatus, Step, StepStatus
from models.suspension import StepSuspension
from models.timers import Timer, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import AgencyEndpoint, Staff, run_worker, worker_settings
from tests.person_file.conftest import audits, consent, extract, form

NEW_CONSENT = {"consent_id": "cn_2", "given_at": "2026-02-02T09:00:00+02:00",
               "expires_at": "2027-02-02T09:00:00+02:00"}


def _awaiting_route(api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
                    coord: Staff, tmp_path: Path) -> tuple[str, str, Step]:
    assert api.post("/api/ipra", json=extract(), headers=coord.headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form("supported_living"), "consent": consent()})
    assert r.status_code == 201, r.text
    body = r.json()
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    with Session(db) as s:
        step = s.exec(select(Step).where(Step.route_id == body["route_id"],
                                         Step.seq == 0)).one()
    # delivered Mon 12.01.2026: 5 working days to answer -> Mon 19.01.2026 (298-п п.11)
    assert step.status is StepStatus.awaiting and step.answer_by_date == date(2026, 1, 19)
    return body["person_id"], body["route_id"], step


def _pending(db: Engine, route_id: str) -> list[Timer]:
    with Session(db) as s:
        return list(s.exec(select(Timer).where(Timer.route_id == route_id,
                                               Timer.status == TimerStatus.pending)))


def test_days_left_counts_working_days_after_today() -> None:
    wed = kaliningrad(2026, 1, 14, 10)
    assert days_left(date(2026, 1, 19), "39", wed) == 3  # Thu, Fri, Mon
    assert days_left(date(2026, 1, 14), "39", wed) == 0  # due today
    assert days_left(date(2026, 1, 9), "39", wed) == 0  # overdue
    assert days_left(None, "39", wed) is None


def test_a_new_consent_makes_resuming_possible_and_the_step_keeps_its_days(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path) -> None:
    coord = staff["coord39"]
    person_id, route_id, step = _awaiting_route(api, db, clock, cfg, coord, tmp_path)
    assert step.agency_id is not None and step.current_request_id is not None
    with Session(db) as s:
        key = s.get(AgencyRequest, step.current_request_id).idempotency_key  # type: ignore
    first = endpoint.to(step.agency_id)
    assert len(first) == 1 and first[0].body["idempotency_key"] == key

    clock.freeze(kaliningrad(2026, 1, 14, 10))  # Wed: 3 working days of the answer left
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=coord.headers).status_code == 200
    with Session(db) as s:
        [sus] = s.exec(select(StepSuspension)).all()
        assert (sus.step_id, sus.status, sus.answer_days_left, sus.request_id) == (
            step.id, "awaiting", 3, step.current_request_id)
    run_worker(db, clock, cfg, worker_settings(tmp_path))  # the cancel notice goes out

    clock.freeze(kaliningrad(2026, 2, 2, 10))  # Mon, three weeks later
    # no consent in effect: nothing to resume
    r = api.post(f"/api/routes/{route_id}/resume", headers=coord.headers)
    assert r.status_code == 409 and r.json()["detail"].startswith("consent:")
    # a bad consent: every bad field, nothing stored
    bad = api.post(f"/api/persons/{person_id}/consent", headers=coord.headers,
                   json={"consent": consent(**NEW_CONSENT, version=0, purposes=[])})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"consent.version", "consent.purposes"}
    # a withdrawn consent has no next version: a new consent_id is needed
    again = api.post(f"/api/persons/{person_id}/consent", headers=coord.headers,
                     json={"consent": consent(version=3, given_at=NEW_CONSENT["given_at"])})
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "consent.version"
    # another region's coordinator does not learn the person exists
    assert api.post(f"/api/persons/{person_id}/consent", headers=staff["coord16"].headers,
                    json={"consent": consent(**NEW_CONSENT)}).status_code == 404
    given = api.post(f"/api/persons/{person_id}/consent", headers=coord.headers,
                     json={"consent": consent(**NEW_CONSENT)})
    assert given.status_code == 201, given.text
    assert given.json() == {"person_id": person_id, "consent": "cn_2/v1",
                            "resumable_routes": [route_id], "applications_unblocked": 1,
                            "processing_stopped": False}
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status is RouteStatus.suspended  # not by itself
        detail = s.get(PersonDetail, person_id)
        assert detail is not None and detail.destroy_by is None
    assert not _pending(db, route_id)

    r = api.post(f"/api/routes/{route_id}/resume", headers=coord.headers)
    assert r.status_code == 200, r.text
    assert r.json()["requests_resent"] == [step.current_request_id]
    assert api.post(f"/api/routes/{route_id}/resume", headers=coord.headers).status_code == 409
    with Session(db) as s:
        route = s.get(Route, route_id)
        fresh = s.get(Step, step.id)
        req = s.get(AgencyRequest, step.current_request_id)
        assert route is not None and route.status is RouteStatus.active
        assert fresh is not None and req is not None
        # 3 working days from Mon 02.02.2026: Tue, Wed, Thu -> Thu 05.02.2026
        assert fresh.status is StepStatus.awaiting and fresh.answer_by_date == date(2026, 2, 5)
        assert req.state is RequestState.queued and req.idempotency_key == key
        assert s.exec(select(StepSuspension)).one().resumed_at is not None
    kinds = sorted(t.kind.value for t in _pending(db, route_id))
    assert "answer_overdue" in kinds and "answer_escalation" in kinds
    assert [e.action for e in audits(db, entity="route", route_id=route_id)
            if e.action in ("suspended", "resumed")] == ["suspended", "resumed"]
    [ev] = [e for e in audits(db, entity="request", route_id=route_id)
            if e.action == "resent_on_resume"]
    assert ev.actor == "staff:coord39"

    # the same request, the same key, goes out again
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    sent = endpoint.to(step.agency_id)
    assert [x.body["idempotency_key"] for x in sent if "cancelled" not in x.body] == [key, key]
    assert sent[-1].body["task_id"] == step.current_request_id
    with Session(db) as s:
        fresh = s.get(Step, step.id)
        assert fresh is not None and fresh.answer_by_date == date(2026, 2, 5)  # not reset

    # the agency answers on time: the route goes on to its next step
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None
        ans, _ = record_answer(s, agency=agency, webhook_id="wh-resumed-1", now=clock.now(),
                               answer=AnswerIn(task_id=step.current_request_id,
                                               outcome=AnswerOutcome.provided, payload={},
                                               comment=None))
        assert ans.id is not None and ans.late_working_days == 0
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
    with Session(db) as s:
        steps = s.exec(select(Step).where(Step.route_id == route_id).order_by(Step.seq)).all()
        assert steps[0].status is StepStatus.answered
        # the steps that wait only for the assessment open together (000 п.10: the need
        # monitoring; п.11: the training apartment)
        opened = [x.kind for x in steps if x.status in (StepStatus.sending,
                                                        StepStatus.awaiting)]
        assert steps[0].kind == "need_assessment"
        assert opened == ["need_monitoring", "training_apartment"]

    # withdrawn again: each open step's request is withdrawn with its own notice
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=coord.headers).status_code == 200
    with Session(db) as s:
        assert len(s.exec(select(CancelNotice)).all()) == 1 + len(opened)


def test_resuming_twice_reuses_the_cancel_notice_of_the_same_request(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path) -> None:
    coord = staff["coord39"]
    person_id, route_id, step = _awaiting_route(api, db, clock, cfg, coord, tmp_path)
    for n, day in ((2, 2), (3, 9)):
        assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                        headers=coord.headers).status_code == 200
        clock.freeze(kaliningrad(2026, 2, day, 10))
        c = consent(consent_id=f"cn_{n}", given_at=f"2026-02-0{day}T09:00:00+02:00")
        assert api.post(f"/api/persons/{person_id}/consent", headers=coord.headers,
                        json={"consent": c}).status_code == 201
        assert api.post(f"/api/routes/{route_id}/resume", headers=coord.headers
                        ).status_code == 200
    with Session(db) as s:
        [notice] = s.exec(select(CancelNotice)).all()
        assert notice.request_id == step.current_request_id
        assert len(s.exec(select(StepSuspension)).all()) == 2
        # withdrawn on Mon 12.01 with all 5 days left, resumed Mon 02.02 (-> Mon 09.02),
        # withdrawn again at once (5 left), resumed Mon 09.02: due Mon 16.02.2026
        fresh = s.get(Step, step.id)
        assert fresh is not None and fresh.answer_by_date == date(2026, 2, 16)


def test_contacts_and_the_ipra_copy_are_destroyed_on_their_day(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    assert api.post("/api/ipra", json=extract(), headers=coord.headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form(), "consent": consent()})
    person_id = r.json()["person_id"]
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=coord.headers).status_code == 200
    with Session(db) as s:
        detail = s.get(PersonDetail, person_id)
        assert detail is not None and detail.destroy_by == date(2026, 2, 11)
    # the day before: nothing is due
    assert purge_due(db, now=kaliningrad(2026, 2, 10, 23, 59), actor="t").persons == []
    out = purge_due(db, now=kaliningrad(2026, 2, 11, 0, 1), actor="t")
    assert out.persons == [person_id] and out.ipra_copies == 1 and out.applications == 1
    with Session(db) as s:
        detail = s.get(PersonDetail, person_id)
        assert detail is not None and detail.destroyed_at is not None
        assert (detail.identity_document, detail.registration_address, detail.phones,
                detail.email) == ({}, {}, [], None)
        ipra = s.exec(select(IpraRecord)).one()
        assert set(ipra.document) == {"destroyed_at", "basis"} and ipra.number
        app = s.exec(select(ApplicationRecord)).one()
        assert app.form["person"]["phones"] == [] and app.form["person"]["email"] is None
        assert app.form["person"]["registration_address"] is None
        assert app.form["person"]["snils"] == "112-233-445 95"  # the record stays, blocked
        assert app.blocked_at is not None
    [ev] = audits(db, action="personal_data_destroyed")
    assert ev.entity_id == person_id and "112-233-445" not in str(ev.after)
    # done once
    assert purge_due(db, now=kaliningrad(2026, 3, 1), actor="t").persons == []
    # the file still reads (the destroyed ИПРА is no longer current)
    p = api.get(f"/api/persons/{person_id}", headers=coord.headers)
    assert p.status_code == 200 and p.json()["current_ipra_id"] is None


def test_a_new_consent_before_the_day_keeps_the_contacts(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form(), "consent": consent()})
    person_id = r.json()["person_id"]
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=coord.headers).status_code == 200
    clock.freeze(kaliningrad(2026, 2, 2, 10))
    assert api.post(f"/api/persons/{person_id}/consent", headers=coord.headers,
                    json={"consent": consent(**NEW_CONSENT)}).status_code == 201
    assert purge_due(db, now=kaliningrad(2026, 3, 1), actor="t").persons == []
    with Session(db) as s:
        detail = s.get(PersonDetail, person_id)
        assert detail is not None and detail.destroyed_at is None and detail.phones


def test_rehab_persons_purge_due_prints_the_counts(
        api: TestClient, db: Engine, db_url: str, clock: DbClock, staff: dict[str, Staff],
        monkeypatch: pytest.MonkeyPatch) -> None:
    coord = staff["coord39"]
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form(), "consent": consent()})
    person_id = r.json()["person_id"]
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=coord.headers).status_code == 200
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    get_settings.cache_clear()
    runner = CliRunner()
    early = runner.invoke(app, ["persons", "purge-due"])
    assert early.exit_code == 0, early.output
    assert json.loads(early.output)["persons"] == []
    clock.freeze(kaliningrad(2026, 2, 11, 9))  # destroy_by: 12.01 + 30 days
    done = runner.invoke(app, ["persons", "purge-due"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["persons"] == [person_id]
    get_settings.cache_clear()
