"""CSRF on every form of the pages (issue 12): each POST route of the pages, read from the
app's router — so a new form is caught until it is listed here — is refused without the
session's token and with a wrong one (403, the Russian «Форма отклонена» page), and nothing
changes. The sign-in form has no session yet: its double-submit cookie refuses it with the
sign-in form again (400, no session)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from api.web.core import csrf_checked
from api.web.errors import is_page_path
from models.agencies import Agency, AgencyAnswer, AgencyRequest
from models.audit import AuditEvent
from models.person_file import ApplicationRecord
from models.persons import Person
from models.routes import Route, Step
from models.staff import StaffSession, StaffUser
from models.timers import Escalation
from tests.web.conftest import World, sign_in_client


def _api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every APIRoute of the app, through its included routers."""
    stack: list[Any] = list(app.routes)
    while stack:
        r = stack.pop()
        if isinstance(r, APIRoute):
            yield r
        inner = getattr(r, "original_router", None)
        if inner is not None:
            stack.extend(inner.routes)


def page_posts(app: FastAPI) -> set[str]:
    """The pages' form addresses (POST routes outside the machines' paths)."""
    return {r.path for r in _api_routes(app) if "POST" in r.methods and is_page_path(r.path)}


def _depends_on(dependant: Any, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


Ids = dict[str, str]


def _ids(world: World) -> Ids:
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == world.fresh_route,
                                         Step.seq == 0)).one()
        esc = s.exec(select(Escalation).where(Escalation.route_id == world.escalated_route)
                     .order_by(col(Escalation.level).desc())).first()
        assert esc is not None and step.current_request_id is not None
        return {"route": world.fresh_route, "escalated": world.escalated_route,
                "request": step.current_request_id, "esc": str(esc.id),
                "agency": world.fresh_agency}


# each form: who posts it, its address and a form that would change something
FORMS: dict[str, tuple[str | None, Callable[[Ids], str], dict[str, str]]] = {
    "/login": (None, lambda i: "/login", {"account": "coord39",
                                          "password": "correct horse battery"}),
    "/logout": ("coord39", lambda i: "/logout", {}),
    "/routes/{route_id}/life": ("coord39", lambda i: f"/routes/{i['escalated']}/life",
                                {"act": "terminate", "application_date": "2025-03-13"}),
    "/routes/{route_id}/branches": ("coord39", lambda i: f"/routes/{i['route']}/branches",
                                    {"chosen": "education",
                                     "assessment": "Нуждается в сопровождении"}),
    "/routes/{route_id}/paper-answer/{request_id}": (
        "coord39", lambda i: f"/routes/{i['route']}/paper-answer/{i['request']}",
        {"outcome": "provided", "information": "Справка", "nonce": "nonce-0123456789"}),
    "/routes/{route_id}/receipt/{request_id}": (
        "coord39", lambda i: f"/routes/{i['route']}/receipt/{i['request']}", {}),
    "/inbox/{request_id}/answer": (
        "agency39", lambda i: f"/inbox/{i['request']}/answer",
        {"outcome": "absent", "nonce": "nonce-0123456789"}),
    "/escalations/{escalation_id}/acknowledge": (
        "sup39", lambda i: f"/escalations/{i['esc']}/acknowledge", {"reason": "Беру"}),
    "/escalations/{escalation_id}/extend": (
        "sup39", lambda i: f"/escalations/{i['esc']}/extend",
        {"days": "3", "reason": "Архив закрыт"}),
    "/escalations/{escalation_id}/reassign": (
        "sup39", lambda i: f"/escalations/{i['esc']}/reassign",
        {"agency_id": "mz39", "reason": "Другое ведомство"}),
    "/escalations/{escalation_id}/close": (
        "sup39", lambda i: f"/escalations/{i['esc']}/close",
        {"reason": "Не нужен", "cancel_route": "1"}),
    "/applications/new": ("coord39", lambda i: "/applications/new",
                          {"request.kind": "accompaniment",
                           "person.full_name.last_name": "Петрова"}),
    "/admin/agencies": ("admin", lambda i: "/admin/agencies",
                        {"id": "new39", "name": "Новое ведомство", "short_name": "Новое",
                         "role": "health", "region": "39", "channel": "inbox"}),
    "/admin/agencies/{agency_id}": ("admin", lambda i: f"/admin/agencies/{i['agency']}",
                                    {"name": "Переименовано", "short_name": "Иное",
                                     "role": "social_policy", "region": "39",
                                     "channel": "inbox"}),
    "/admin/agencies/{agency_id}/rotate-secret": (
        "admin", lambda i: f"/admin/agencies/{i['agency']}/rotate-secret", {}),
    "/admin/agencies/{agency_id}/retire-previous": (
        "admin", lambda i: f"/admin/agencies/{i['agency']}/retire-previous", {}),
    "/admin/staff": ("admin", lambda i: "/admin/staff",
                     {"id": "new-coord", "display_name": "Новый", "role": "coordinator",
                      "region": "39"}),
    "/admin/staff/{staff_id}/password": ("admin", lambda i: "/admin/staff/coord39/password",
                                         {}),
    "/admin/staff/{staff_id}/revoke": ("admin", lambda i: "/admin/staff/coord39/revoke", {}),
    "/admin/staff/{staff_id}/restore": ("admin", lambda i: "/admin/staff/coord39/restore",
                                        {}),
}


def test_every_form_of_the_pages_is_listed_and_checks_the_csrf_token(world: World) -> None:
    """A new form fails here until it is listed in FORMS (and so tested below), and every
    form but the sign-in's depends on the session's CSRF check."""
    assert page_posts(world.app) == set(FORMS)
    for route in _api_routes(world.app):
        if route.path in FORMS and "POST" in route.methods and route.path != "/login":
            assert _depends_on(route.dependant, csrf_checked), route.path


def _snapshot(world: World) -> tuple[Any, ...]:
    with Session(world.db) as s:
        def rows(model: Any) -> list[str]:
            return sorted(repr(sorted(r.model_dump().items())) for r in s.exec(select(model)))
        sessions = sorted((x.id_sha256, x.staff_id, x.ended_at)
                          for x in s.exec(select(StaffSession)))
        audit = [a.id for a in s.exec(select(AuditEvent))]
        return (rows(Route), rows(Step), rows(AgencyRequest), rows(AgencyAnswer),
                rows(Escalation), rows(Agency), rows(StaffUser), rows(Person),
                rows(ApplicationRecord), sessions, audit)


@pytest.mark.parametrize("token", ["", "wrong-token-0123456789"], ids=["none", "wrong"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_form_without_the_right_csrf_token_is_refused_and_changes_nothing(
        world: World, form: str, token: str) -> None:
    account, url, data = FORMS[form]
    c = TestClient(world.app, follow_redirects=False)
    if account is None:
        c.get("/login")  # the double-submit cookie is set; the form does not carry it
    else:
        c = sign_in_client(world.app, account)
    before = _snapshot(world)
    body = dict(data) | ({"csrf_token": token} if token else {})
    r = c.post(url(_ids(world)), data=body)
    if account is None:
        assert r.status_code == 400, r.text
        assert "Форма устарела" in r.text and "rehab_session" not in c.cookies
    else:
        assert r.status_code == 403, (form, r.status_code, r.text[:300])
        assert "Форма отклонена" in r.text
    assert _snapshot(world) == before, form
    if account is not None:  # the session is untouched: signed in still
        assert c.get("/").status_code == 200
        home = {"coord39": "/routes", "sup39": "/escalations", "agency39": "/inbox",
                "admin": "/routes"}[account]
        assert c.get(home).status_code == 200
