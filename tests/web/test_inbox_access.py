"""The agency inbox for either channel (298-п Порядок п.11: a paper/inbox request is
received when opened, a webhook agency's with its delivery), and the access rule of the
pages: an object of another agency or region is 404 with an ``access_refused`` audit
record, and a refused POST changes nothing (152-ФЗ ст.19)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from engine.infra.settings import Settings
from engine.routes.transitions import register_application
from engine.runtime.worker import Worker
from engine.staff.accounts import create_staff
from models.agencies import Agency, AgencyAnswer, AgencyRequest, RequestChannel
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Route, Step, StepStatus
from models.staff import StaffRole
from models.timers import Escalation
from sim.seed import make_persons
from tests.web.conftest import PASSWORD, World, audit_of, csrf_of, sign_in_client


def _first_request(world: World, route_id: str) -> AgencyRequest:
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == route_id, Step.seq == 0)).one()
        assert step.current_request_id is not None
        req = s.get(AgencyRequest, step.current_request_id)
        assert req is not None
        return req


def _run_worker(world: World) -> int:
    """One worker pass; an agency's system acknowledges every request with a 200."""
    async def one_pass() -> int:
        async with Worker(world.db, world.clock, world.cfg, Settings(prefect_mirror=False),
                          worker_id="t") as w:
            w._http = httpx.AsyncClient(transport=httpx.MockTransport(
                lambda _r: httpx.Response(200, json={"status": "accepted"})))
            return await w.run_once()

    return asyncio.run(one_pass())


def _webhook_route(world: World) -> tuple[str, Person]:
    """The inbox agency of ``world.fresh_agency`` gets its own system; a new route's first
    request goes there and is delivered (the 2xx is its receipt)."""
    with Session(world.db, expire_on_commit=False) as s:
        agency = s.get(Agency, world.fresh_agency)
        assert agency is not None
        agency.endpoint_url = "https://agency.example/requests"
        s.add(agency)
        person = make_persons(s, 1, seed=41)[0]
        s.commit()
        route = register_application(s, world.cfg, now=world.clock.now(),
                                     person_id=person.id, template_code="supported_living",
                                     region="39", coordinator_id=None)
        s.commit()
    req = _first_request(world, route.id)
    assert (req.agency_id, req.channel) == (world.fresh_agency, RequestChannel.http)
    assert _run_worker(world) >= 1
    assert _first_request(world, route.id).delivered_at is not None
    return route.id, person


def _answer(c: TestClient, request_id: str, **form: str) -> httpx.Response:
    page = c.get(f"/inbox/{request_id}")
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_of(page.text), "nonce": secrets.token_urlsafe(12), **form}
    return c.post(f"/inbox/{request_id}/answer", data=data)


def test_a_webhook_request_opens_without_a_receipt_and_is_answered_by_hand(
        world: World) -> None:
    route_id, person = _webhook_route(world)
    req = _first_request(world, route_id)
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == route_id, Step.seq == 0)).one()
        assert step.status is StepStatus.awaiting and step.answer_by_date is not None
        due = step.answer_by_date.strftime("%d.%m.%Y")
    agency = sign_in_client(world.app, "agency39")
    listing = agency.get("/inbox")
    assert listing.status_code == 200
    row = listing.text[listing.text.index(f'href="/inbox/{req.id}"'):]
    assert due in row[:row.index("</tr>")]  # its deadline, in the agency's calendar

    opened = agency.get(f"/inbox/{req.id}")
    assert opened.status_code == 200, opened.text
    assert opened.headers["content-type"].startswith("text/html")
    assert person.full_name in opened.text
    assert "доставлен в систему ведомства" in opened.text
    assert not audit_of(world, entity="request", entity_id=req.id,
                      action="received_by_agency")  # the delivery was its receipt
    reads = audit_of(world, actor="staff:agency39", action="read")
    assert [(r.entity, r.entity_id, r.route_id, r.after) for r in reads] == [
        ("request", req.id, route_id, {"person_id": person.id, "what": "agency_request"})]

    r = _answer(agency, req.id, outcome="provided", information="Справка № 7")
    assert r.status_code == 303 and r.headers["location"] == "/inbox?done=accepted"
    with Session(world.db) as s:
        answer = s.exec(select(AgencyAnswer).where(AgencyAnswer.request_id == req.id)).one()
        assert answer.payload["information"] == "Справка № 7"
    assert _run_worker(world) >= 1
    with Session(world.db) as s:
        steps = list(s.exec(select(Step).where(Step.route_id == route_id)
                            .order_by(col(Step.seq))))
    assert steps[0].status is StepStatus.answered
    assert req.id not in agency.get("/inbox").text


def test_an_inbox_request_is_received_when_opened_and_its_read_is_audited(
        world: World) -> None:
    req = _first_request(world, world.fresh_route)
    with Session(world.db) as s:
        step = s.get(Step, req.step_id)
        assert step is not None and step.status is StepStatus.sending
        person = s.exec(select(Person).join(Route, col(Route.person_id) == col(Person.id))
                        .where(Route.id == world.fresh_route)).one()
    agency = sign_in_client(world.app, "agency39")
    assert f'href="/inbox/{req.id}"' in agency.get("/inbox").text
    opened = agency.get(f"/inbox/{req.id}")
    assert opened.status_code == 200
    assert "Получение запроса отмечено в журнале" in opened.text
    assert len(audit_of(world, entity="request", entity_id=req.id,
                      action="received_by_agency")) == 1
    reads = audit_of(world, actor="staff:agency39", action="read")
    assert [(r.entity, r.entity_id, r.route_id, r.after) for r in reads] == [
        ("request", req.id, world.fresh_route,
         {"person_id": person.id, "what": "agency_request"})]
    with Session(world.db) as s:
        step = s.get(Step, req.step_id)
        assert step is not None and step.status is StepStatus.awaiting
    r = _answer(agency, req.id, outcome="absent")
    assert r.status_code == 303 and r.headers["location"] == "/inbox?done=accepted"
    with Session(world.db) as s:
        answer = s.exec(select(AgencyAnswer).where(AgencyAnswer.request_id == req.id)).one()
        assert answer.outcome.value == "absent"


def _other_agency_user(world: World) -> str:
    """A user of another Kaliningrad agency."""
    with Session(world.db) as s:
        other = s.exec(select(Agency).where(Agency.region == "39",
                                            Agency.id != world.fresh_agency)).first()
        assert other is not None
        create_staff(s, id="agency-other", display_name="Сотрудник другого",
                               role=StaffRole.agency, region="39", agency_id=other.id,
                               password=PASSWORD)
        s.commit()
    return "agency-other"


def test_another_agencys_request_is_404_audited_and_cannot_be_answered(
        world: World) -> None:
    req = _first_request(world, world.fresh_route)
    c = sign_in_client(world.app, _other_agency_user(world))
    assert f"/inbox/{req.id}" not in c.get("/inbox").text
    r = c.get(f"/inbox/{req.id}")
    assert r.status_code == 404 and "Не найдено" in r.text
    refused = audit_of(world, actor="staff:agency-other", action="access_refused")
    assert [(a.entity, a.entity_id, a.after["why"]) for a in refused] == [
        ("request", req.id, "another agency")]
    assert not audit_of(world, entity="request", entity_id=req.id,
                      action="received_by_agency")  # opening it received nothing
    assert not audit_of(world, actor="staff:agency-other", action="read")
    token = csrf_of(c.get("/inbox").text)
    r = c.post(f"/inbox/{req.id}/answer",
               data={"csrf_token": token, "outcome": "provided", "information": "x",
                     "nonce": secrets.token_urlsafe(12)})
    assert r.status_code == 404
    with Session(world.db) as s:
        assert not list(s.exec(select(AgencyAnswer)))
    assert len(audit_of(world, actor="staff:agency-other", action="access_refused")) == 2


def _snapshot(world: World) -> tuple[Any, ...]:
    """What any of the refused forms could change: routes, steps, requests, answers,
    escalations and the audit records other than refusals."""
    with Session(world.db) as s:
        def rows(model: Any) -> list[Any]:
            return sorted(repr(sorted(r.model_dump().items())) for r in s.exec(select(model)))
        audit = [a.id for a in s.exec(select(AuditEvent)
                                      .where(AuditEvent.action != "access_refused"))]
        return (rows(Route), rows(Step), rows(AgencyRequest), rows(AgencyAnswer),
                rows(Escalation), audit)


def _supervisor16(world: World) -> TestClient:
    with Session(world.db) as s:
        create_staff(s, id="sup16", display_name="Куратор 16", role=StaffRole.supervisor,
                     region="16", password=PASSWORD)
        s.commit()
    return sign_in_client(world.app, "sup16")


def test_a_supervisor_of_another_region_gets_404_on_an_escalation_and_its_actions(
        world: World) -> None:
    with Session(world.db) as s:
        esc = s.exec(select(Escalation).where(Escalation.route_id == world.escalated_route)
                     ).first()
        assert esc is not None
    c = _supervisor16(world)
    assert f"/escalations/{esc.id}" not in c.get("/escalations").text
    r = c.get(f"/escalations/{esc.id}")
    assert r.status_code == 404
    token = csrf_of(c.get("/escalations").text)
    before = _snapshot(world)
    forms = {"acknowledge": {"reason": "Принято в работу"},
             "extend": {"days": "3", "reason": "Архив закрыт"},
             "reassign": {"agency_id": world.fresh_agency, "reason": "Другое ведомство"},
             "close": {"reason": "Сведения получены иначе"}}
    for action, form in forms.items():
        r = c.post(f"/escalations/{esc.id}/{action}", data={"csrf_token": token, **form})
        assert r.status_code == 404, action
    assert _snapshot(world) == before
    refused = audit_of(world, actor="staff:sup16", action="access_refused")
    assert len(refused) == 1 + len(forms)
    assert {a.entity_id for a in refused} == {str(esc.id)}


def test_a_coordinator_of_another_region_changes_nothing_on_a_route(world: World) -> None:
    """coord16 POSTs each of a region-39 route's forms with its own valid CSRF token: the
    paper answer, the receipt and each act of the route's life are 404, audited, and
    nothing changes."""
    req = _first_request(world, world.fresh_route)  # an inbox request awaiting its receipt
    c = sign_in_client(world.app, "coord16")
    token = csrf_of(c.get("/routes").text)
    assert c.get(f"/routes/{world.fresh_route}").status_code == 404
    before = _snapshot(world)
    route = world.fresh_route
    posts = [
        (f"/routes/{route}/paper-answer/{req.id}",
         {"outcome": "provided", "information": "Справка", "nonce": secrets.token_urlsafe(12)}),
        (f"/routes/{route}/receipt/{req.id}", {"received_at": ""}),
        *[(f"/routes/{route}/life", {"act": act, "agency_id": world.fresh_agency,
                                     "application_date": "2025-03-13"})
          for act in ("refuse", "resume", "terminate")],
    ]
    for url, form in posts:
        r = c.post(url, data={"csrf_token": token, **form})
        assert r.status_code == 404, url
        assert "Не найдено" in r.text
    assert _snapshot(world) == before
    refused = audit_of(world, actor="staff:coord16", action="access_refused")
    assert [(a.entity, a.entity_id) for a in refused] == [
        ("route", route), ("request", req.id), ("request", req.id),
        ("route", route), ("route", route), ("route", route)]
