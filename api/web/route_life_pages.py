"""The route page's forms for the route's life: the person's refusal of a participant's
accompaniment (or of all), its resumption, the application to stop (004 п.11–13), a
paper request's receipt (298-п Порядок п.11), and the branch decision of a supported-living
route (000 п.10, п.13–15: the person's choice with the need assessment's conclusion). A
coordinator of the route's region or an administrator; each form one transaction
(``engine.routes.refusal``, ``engine.routes.termination``, ``engine.routes.receipt``,
``engine.routes.branches``); a refusal comes back to the route's page with the reason,
nothing changed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote

import pendulum
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

import calendars
from api.web.core import DbDep, FormViewer, Viewer, allowed, refuse
from api.web.messages import refusal_ru
from api.web.routes_pages import BranchForm, route_page_view
from engine.errors import EngineError
from engine.routes.branches import record_branch_decision
from engine.routes.reads import get_route
from engine.routes.receipt import confirm_receipt, route_of_request
from engine.routes.refusal import refuse_participant, resume_participant
from engine.routes.termination import terminate_on_application
from models.routes import Route
from models.staff import StaffRole

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=40)]
Chosen = Annotated[list[str] | None, Form(max_length=10)]
Conclusion = Annotated[str, Form(max_length=4000)]

def _back(route_id: str, done: str) -> RedirectResponse:
    """Back to the route page, which says what was done (``LIFE_DONE_RU``)."""
    return RedirectResponse(f"/routes/{quote(route_id)}?notice={done}", status_code=303)


LIFE_FIELDS = {"application_date": "Дата заявления", "agency_id": "Участник",
               "act": "Действие", "received_at": "Когда вручён", "route_id": "Маршрут",
               "request_id": "Запрос"}


BRANCH_FIELDS = {"chosen": "Направления", "assessment": "Заключение оценки нуждаемости",
                 "route": "Маршрут"}


def _refused(request: Request, v: Viewer, s: Session, route_id: str, *, life: str = "",
             receipt: str = "", branches: BranchForm | None = None) -> HTMLResponse:
    """The route page again, 422, with the refusal in Russian beside the form."""
    return route_page_view(request, v, s, route_id, life_error=life, receipt_error=receipt,
                           branch_form=branches, code=422)


def _coordinated_route(s: Session, v: Viewer, route_id: str, *, now: datetime) -> Route:
    """The route a coordinator (or admin) of its region acts on; anyone else, or no such
    route: 404 and an ``access_refused`` audit record (``api.web.core.refuse``)."""
    route = get_route(s, route_id[:40])
    if route is None or not allowed(v, StaffRole.coordinator, StaffRole.admin,
                                    region=route.region):
        raise refuse(s, v, now=now, entity="route", entity_id=route_id,
                     why="unknown or role or region")
    return route


@router.post("/routes/{route_id}/life")
def route_life(request: Request, route_id: str, v: FormViewer, s: DbDep, act: Short = "",
               agency_id: Short = "", application_date: Short = "") -> Response:
    """Отказ от сопровождения, возобновление, прекращение по заявлению."""
    now: datetime = request.app.state.clock.now()
    route = _coordinated_route(s, v, route_id, now=now)
    cfg = request.app.state.cfg
    try:
        day = date.fromisoformat(application_date)
    except ValueError:
        return _refused(request, v, s, route.id,
                        life="«Дата заявления»: нужна дата в формате ГГГГ-ММ-ДД.")
    try:
        if act == "refuse":
            refuse_participant(s, cfg, route_id=route.id, agency_id=agency_id or None,
                               application_date=day, now=now, actor=v.actor)
        elif act == "resume":
            resume_participant(s, cfg, route_id=route.id, agency_id=agency_id or None,
                               application_date=day, now=now, actor=v.actor)
        elif act == "terminate":
            terminate_on_application(s, cfg, route_id=route.id, application_date=day,
                                     now=now, actor=v.actor)
        else:
            return _refused(request, v, s, route.id, life="«Действие»: выберите одно из трёх.")
    except EngineError as exc:
        s.rollback()
        return _refused(request, v, s, route.id, life=refusal_ru(exc, fields=LIFE_FIELDS))
    s.commit()
    return _back(route.id, act)


@router.post("/routes/{route_id}/receipt/{request_id}")
def route_receipt(request: Request, route_id: str, request_id: str, v: FormViewer, s: DbDep,
                  received_at: Short = "") -> Response:
    """Отметить вручение бумажного запроса ведомству."""
    now: datetime = request.app.state.clock.now()
    route = route_of_request(s, request_id[:40])
    if route is None or route.id != route_id or not allowed(
            v, StaffRole.coordinator, StaffRole.admin, region=route.region):
        raise refuse(s, v, now=now, entity="request", entity_id=request_id,
                     why="unknown or role or region")
    at: datetime | None = None
    if received_at:
        try:
            local = datetime.fromisoformat(received_at)
        except ValueError:
            return _refused(request, v, s, route.id,
                            receipt="«Когда вручён»: нужны дата и время вручения.")
        tz = calendars.get_calendar(route.region).timezone
        at = pendulum.instance(local, tz=tz) if local.tzinfo is None else local
    try:
        confirm_receipt(s, request.app.state.cfg, request_id=request_id[:40], now=now,
                        actor=v.actor, received_at=at)
    except EngineError as exc:
        s.rollback()
        return _refused(request, v, s, route.id, receipt=refusal_ru(exc, fields=LIFE_FIELDS))
    s.commit()
    return _back(route.id, "receipt")


@router.post("/routes/{route_id}/branches")
def route_branches(request: Request, route_id: str, v: FormViewer, s: DbDep,
                   chosen: Chosen = None, assessment: Conclusion = "") -> Response:
    """Решение о направлениях: the person's choice of the supported-living branches with the
    need assessment's conclusion (000 п.10, п.13–15), recorded once in one transaction
    (``engine.routes.branches.record_branch_decision``); a refusal — two alternatives
    (employment or social employment, 000 п.14, п.15), an empty conclusion, the assessment
    not answered yet — is shown beside the form in Russian, nothing stored."""
    now: datetime = request.app.state.clock.now()
    route = _coordinated_route(s, v, route_id, now=now)
    picked = list(chosen or [])
    try:
        record_branch_decision(s, request.app.state.cfg, route_id=route.id, chosen=picked,
                               assessment=assessment, now=now, actor=v.actor)
    except EngineError as exc:
        s.rollback()
        return _refused(request, v, s, route.id, branches=BranchForm(
            chosen=tuple(picked), assessment=assessment,
            error=refusal_ru(exc, fields=BRANCH_FIELDS)))
    s.commit()
    return _back(route.id, "branches")
