"""Registration of a paper application by staff (004 appendix form; 001 Регламент п.14,
п.15): the person's-file validation (``engine/persons/applications.py:
register_full_application`` — the same as ``POST /api/person-file/applications``) with
every field's message beside the field; the paper consent is recorded with it (152-ФЗ
art. 9). Eligible: the route starts at once (its first request due within 1 working day,
001 Порядок п.10); otherwise the decision's explanation is shown (004 п.7)."""

from __future__ import annotations

from datetime import datetime

import pendulum
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.web.application_form import SECTIONS, build, defaults, field_of
from api.web.core import DbDep, FormViewer, Viewer, ViewerDep, allowed, page, refuse, region_tz
from api.web.messages import refusal_ru
from engine.persons.applications import (
    ApplicationInvalid,
    ConsentRefused,
    PersonConflict,
    register_full_application,
)
from models.staff import StaffRole

router = APIRouter(include_in_schema=False)
REGISTRARS = (StaffRole.coordinator, StaffRole.admin)


def _form(request: Request, v: Viewer, values: dict[str, str], errors: dict[str, str],
          code: int = 200, decision: str | None = None) -> HTMLResponse:
    return page(request, v, "application.html", status_code=code, values=values,
                errors=errors, sections=SECTIONS, decision=decision)


@router.get("/applications/new", response_class=HTMLResponse)
def new_application(request: Request, v: ViewerDep, s: DbDep) -> HTMLResponse:
    """Регистрация бумажного заявления."""
    now: datetime = request.app.state.clock.now()
    if not allowed(v, *REGISTRARS):
        raise refuse(s, v, now=now, entity="page", entity_id="/applications/new", why="role")
    today = pendulum.instance(now).in_timezone(region_tz(v.user.region)).date()
    return _form(request, v, defaults(v.user.region, today), {})


@router.post("/applications/new")
async def register(request: Request, v: FormViewer, s: DbDep) -> Response:
    """The form's fields are named by their paths in the model (``application_form.py``)."""
    form = await request.form()  # parsed once already for the CSRF check
    values = {k: str(val)[:400] for k, val in form.items() if isinstance(val, str)}
    return await run_in_threadpool(_store, request, v, s, values)


def _store(request: Request, v: Viewer, s: Session, values: dict[str, str]) -> Response:
    now: datetime = request.app.state.clock.now()
    if not allowed(v, *REGISTRARS):
        raise refuse(s, v, now=now, entity="page", entity_id="/applications/new", why="role")
    doc, consent = build(values, staff_id=v.user.id, now=now, tz=region_tz(v.user.region))
    errors: dict[str, str] = {}
    try:
        reg = register_full_application(
            s, request.app.state.cfg, raw=doc, consent=consent, now=now, actor=v.actor,
            coordinator_id=v.user.id if v.role is StaffRole.coordinator else None)
    except ApplicationInvalid as exc:
        s.rollback()
        for e in exc.errors:
            errors.setdefault(field_of(e.field), e.message_ru)
        return _form(request, v, values, errors, 422)
    except ConsentRefused as exc:
        s.rollback()
        return _form(request, v, values, {"consent.given_at": exc.error.message_ru}, 422)
    except PersonConflict as exc:  # the use case committed its audit record itself
        return _form(request, v, values, {"person.birth_date": refusal_ru(exc)}, 409)
    if not allowed(v, *REGISTRARS, region=reg.application.region):
        s.rollback()
        return _form(request, v, values, {
            "person.registration_address.region_code":
                f"Регион заявления {reg.application.region} — не ваш ({v.user.region})"}, 403)
    s.commit()
    if reg.application.route_id:
        return RedirectResponse(f"/routes/{reg.application.route_id}?notice=registered",
                                status_code=303)
    today = pendulum.instance(now).in_timezone(region_tz(v.user.region)).date()
    return _form(request, v, defaults(v.user.region, today), {}, 200,
                 decision=reg.decision.explanation_ru
                 or "Заявление зарегистрировано; маршрут не сформирован.")

