"""The route page's forms for the route's life: the person's refusal of a participant's
accompaniment (or of all), its resumption, the application to stop (004 п.11–13), and a
paper request's receipt (298-п Порядок п.11). A coordinator of the route's region or an
administrator; each form one transaction (``engine.routes.refusal``,
``engine.routes.termination``, ``engine.routes.receipt``); a refusal comes back to the
route's page with the reason, nothing changed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote

import pendulum
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

import calendars
from api.web.core import DbDep, FormViewer, allowed, refuse
from engine.errors import EngineError
from engine.routes.reads import get_route
from engine.routes.receipt import confirm_receipt, route_of_request
from engine.routes.refusal import refuse_participant, resume_participant
from engine.routes.termination import terminate_on_application
from models.staff import StaffRole

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=40)]

DONE_RU = {"refuse": "Отказ от сопровождения записан: шаги приостановлены.",
           "resume": "Сопровождение возобновлено с оставшимися рабочими днями.",
           "terminate": "Сопровождение прекращено по заявлению.",
           "receipt": "Получение запроса отмечено: срок ответа считается с этого дня."}


def _back(route_id: str, text: str) -> RedirectResponse:
    return RedirectResponse(f"/routes/{quote(route_id)}?notice={quote(text[:200])}",
                            status_code=303)


@router.post("/routes/{route_id}/life")
def route_life(request: Request, route_id: str, v: FormViewer, s: DbDep, act: Short = "",
               agency_id: Short = "", application_date: Short = "") -> Response:
    """Отказ от сопровождения, возобновление, прекращение по заявлению."""
    now: datetime = request.app.state.clock.now()
    route = get_route(s, route_id[:40])
    if route is None or not allowed(v, StaffRole.coordinator, StaffRole.admin,
                                    region=route.region):
        raise refuse(s, v, now=now, entity="route", entity_id=route_id,
                     why="unknown or role or region")
    cfg = request.app.state.cfg
    try:
        day = date.fromisoformat(application_date)
    except ValueError:
        return _back(route.id, "Укажите дату заявления (application_date: must be a date)")
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
            return _back(route.id, "Выберите действие (act: refuse, resume or terminate)")
    except EngineError as exc:
        s.rollback()
        return _back(route.id, f"Не выполнено: {exc}")
    s.commit()
    return _back(route.id, DONE_RU[act])


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
            return _back(route.id, "Укажите дату и время вручения (received_at)")
        tz = calendars.get_calendar(route.region).timezone
        at = pendulum.instance(local, tz=tz) if local.tzinfo is None else local
    try:
        confirm_receipt(s, request.app.state.cfg, request_id=request_id[:40], now=now,
                        actor=v.actor, received_at=at)
    except EngineError as exc:
        s.rollback()
        return _back(route.id, f"Не выполнено: {exc}")
    s.commit()
    return _back(route.id, DONE_RU["receipt"])
