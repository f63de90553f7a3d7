"""The supervisor's pages: the region's escalation queue by level and age in working days,
and each escalation with its step's history and the four actions — acknowledge, extend,
reassign, close — as forms with their mandatory reason. They call the same use cases as the
API (``engine/supervisor/actions.py``) and refuse what it refuses, by the same rule, in
Russian (``api/web/messages.py``).
The Ministry of Social Policy controls interagency interaction (298-п Порядок п.13,
Регламент п.17)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.web.core import DbDep, FormViewer, Viewer, ViewerDep, allowed, page, refuse
from api.web.messages import refusal_of, refusal_ru
from engine.agencies.reads import active_agencies_of_region, short_names
from engine.errors import EngineError
from engine.escalations.reads import escalation_by_id
from engine.routes.reads import step_by_id
from engine.supervisor import actions as sv
from engine.supervisor.reads import step_history
from models.staff import StaffRole
from models.timers import Escalation

router = APIRouter(include_in_schema=False)
SUPERVISING = (StaffRole.supervisor, StaffRole.admin)
DONE_RU = {"acknowledge": "Эскалация принята в работу.", "extend": "Срок продлён.",
           "reassign": "Шаг передан другому ведомству.", "close": "Шаг закрыт."}


@router.get("/escalations", response_class=HTMLResponse)
def queue(request: Request, v: ViewerDep, s: DbDep) -> HTMLResponse:
    """Очередь эскалаций: по уровню, затем по возрасту в рабочих днях."""
    now: datetime = request.app.state.clock.now()
    if not allowed(v, *SUPERVISING):
        raise refuse(s, v, now=now, entity="page", entity_id="/escalations", why="role")
    rows = sv.list_escalations(s, staff=v.user, now=now, sort="-age")
    rows.sort(key=lambda e: (-e.level, -e.age_working_days, e.id))
    names = short_names(s)
    return page(request, v, "escalations.html", rows=rows, names=names)


def _escalation(s: Session, v: Viewer, escalation_id: str, now: datetime) -> Escalation:
    esc = escalation_by_id(s, int(escalation_id)) if escalation_id.isdigit() \
        and len(escalation_id) < 10 else None
    if esc is None or not allowed(v, *SUPERVISING, region=esc.region):
        raise refuse(s, v, now=now, entity="escalation", entity_id=escalation_id,
                     why="unknown" if esc is None else "role or region")
    return esc


def _page(request: Request, v: Viewer, s: Session, escalation_id: str, *, done: str = "",
          errors: dict[str, str] | None = None, code: int = 200) -> HTMLResponse:
    now: datetime = request.app.state.clock.now()
    esc = _escalation(s, v, escalation_id, now)
    step = step_by_id(s, esc.step_id)
    assert step is not None
    history = step_history(s, route_id=esc.route_id, entity_ids=[step.id, str(esc.id)])
    agencies = active_agencies_of_region(s, esc.region)
    names = short_names(s)
    return page(request, v, "escalation.html", status_code=code, esc=esc, step=step,
                names=names, agency_name=names.get(step.agency_id or "", step.agency_id or "—"),
                history=history, agencies=agencies, done=DONE_RU.get(done, ""),
                errors=errors or {})


@router.get("/escalations/{escalation_id}", response_class=HTMLResponse)
def escalation(request: Request, escalation_id: str, v: ViewerDep, s: DbDep,
               done: str = "") -> HTMLResponse:
    """Эскалация: история шага и четыре действия."""
    return _page(request, v, s, escalation_id, done=done)


Reason = Annotated[str, Form(max_length=4000)]


def _act(request: Request, v: Viewer, s: Session, escalation_id: str, action: str,
         reason: str, **extra: str) -> Response:
    """Run one action through the use case of the API; its refusal (the same rule, in
    Russian) is shown beside the form's field it names, nothing changed."""
    now: datetime = request.app.state.clock.now()
    esc = _escalation(s, v, escalation_id, now)
    cfg = request.app.state.cfg
    try:
        if action == "acknowledge":
            assert esc.id is not None
            sv.acknowledge(s, staff=v.user, escalation_id=esc.id, now=now, reason=reason)
        elif action == "extend":
            days = extra["days"]
            if not days.isdigit() or not 1 <= int(days) <= 250:
                raise EngineError("days: working days to add, a whole number from 1 to 250",
                                  rule="range", params={"min": 1, "max": 250})
            sv.extend_deadline(s, cfg, staff=v.user, step_id=esc.step_id, days=int(days),
                               reason=reason, now=now)
        elif action == "reassign":
            sv.reassign_step(s, cfg, staff=v.user, step_id=esc.step_id,
                             agency_id=extra["agency_id"], reason=reason, now=now)
        else:
            sv.close_step(s, cfg, staff=v.user, step_id=esc.step_id, reason=reason, now=now,
                          cancel_route=extra.get("cancel_route") == "1")
    except (EngineError, ValueError) as exc:
        s.rollback()
        field = refusal_of(exc).field or "reason"
        text = refusal_ru(exc)
        return _page(request, v, s, escalation_id, code=409 if isinstance(
            exc, sv.ConflictError) else 403 if isinstance(exc, sv.ForbiddenError) else 422,
            errors={f"{action}.{field}": text, action: text})
    s.commit()
    return RedirectResponse(f"/escalations/{esc.id}?done={action}", status_code=303)


@router.post("/escalations/{escalation_id}/acknowledge")
def acknowledge(request: Request, escalation_id: str, v: FormViewer, s: DbDep,
                reason: Reason = "") -> Response:
    return _act(request, v, s, escalation_id, "acknowledge", reason)


@router.post("/escalations/{escalation_id}/extend")
def extend(request: Request, escalation_id: str, v: FormViewer, s: DbDep,
           reason: Reason = "", days: Annotated[str, Form(max_length=10)] = "") -> Response:
    return _act(request, v, s, escalation_id, "extend", reason, days=days)


@router.post("/escalations/{escalation_id}/reassign")
def reassign(request: Request, escalation_id: str, v: FormViewer, s: DbDep,
             reason: Reason = "", agency_id: Annotated[str, Form(max_length=40)] = ""
             ) -> Response:
    return _act(request, v, s, escalation_id, "reassign", reason, agency_id=agency_id)


@router.post("/escalations/{escalation_id}/close")
def close(request: Request, escalation_id: str, v: FormViewer, s: DbDep,
          reason: Reason = "", cancel_route: Annotated[str, Form(max_length=1)] = ""
          ) -> Response:
    return _act(request, v, s, escalation_id, "close", reason, cancel_route=cancel_route)
