"""Registration of a paper application by staff (298-п Регламент п.14; 363н п.12): the same
rules as the API's ``POST /api/applications`` (``models/basic_application.py``, the person
found or created by SNILS in ``engine/persons/applications.py``), every field's message
beside the field; the route starts at once (its first request due within 1 working day,
298-п Порядок п.10)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

import calendars
from api.web.core import DbDep, FormViewer, ViewerDep, allowed, page, refuse
from engine.persons.applications import PersonConflict, person_for_basic_application
from engine.routes.transitions import register_application
from models.basic_application import ApplicationIn, date_problems
from models.staff import StaffRole
from models.templates import TEMPLATES

router = APIRouter(include_in_schema=False)
REGISTRARS = (StaffRole.coordinator, StaffRole.admin)
FIELDS = ("full_name", "snils", "birth_date", "representative", "template")
FIELD_RU = {"full_name": "Укажите ФИО (от 3 до 300 знаков, с буквами).",
            "snils": "Укажите СНИЛС: 11 цифр с верным контрольным числом.",
            "birth_date": "Укажите дату рождения (не ранее 1900 года и до дня регистрации).",
            "representative": "Не более 300 знаков.",
            "template": "Выберите вид маршрута."}


@router.get("/applications/new", response_class=HTMLResponse)
def new_application(request: Request, v: ViewerDep, s: DbDep) -> HTMLResponse:
    """Регистрация бумажного заявления."""
    now: datetime = request.app.state.clock.now()
    if not allowed(v, *REGISTRARS):
        raise refuse(s, v, now=now, entity="page", entity_id="/applications/new", why="role")
    return page(request, v, "application.html", values={}, errors={}, templates=TEMPLATES)


Text = Annotated[str, Form(max_length=400)]


@router.post("/applications/new")
def register(request: Request, v: FormViewer, s: DbDep, full_name: Text = "",
             snils: Text = "", birth_date: Text = "", representative: Text = "",
             template: Text = "") -> Response:
    now: datetime = request.app.state.clock.now()
    if not allowed(v, *REGISTRARS):
        raise refuse(s, v, now=now, entity="page", entity_id="/applications/new", why="role")
    values = {"full_name": full_name, "snils": snils, "birth_date": birth_date,
              "representative": representative, "template": template}
    data: dict[str, Any] = {k: val for k, val in values.items() if val.strip()}
    data["region"] = v.user.region
    errors: dict[str, str] = {}
    app_in: ApplicationIn | None = None
    try:
        app_in = ApplicationIn.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            field = str(e["loc"][0]) if e["loc"] else "full_name"
            rule = "field required" if e["type"] == "missing" else e["msg"]
            errors.setdefault(field, f"{FIELD_RU.get(field, '')} ({field}: {rule})")
    if app_in is not None:
        cfg = request.app.state.cfg
        for field, rule in date_problems(app_in, now, cfg.sender_region):
            errors.setdefault(field, f"{FIELD_RU.get(field, '')} ({field}: {rule})")
    if errors or app_in is None:
        return page(request, v, "application.html", status_code=422, values=values,
                    errors=errors, templates=TEMPLATES)
    actor = v.actor
    try:
        person = person_for_basic_application(s, app_in, v.user, now=now, actor=actor)
        route = register_application(
            s, request.app.state.cfg, now=now, person_id=person.id,
            template_code=app_in.template, region=app_in.region,
            registered_at=app_in.registered_at,
            coordinator_id=v.user.id if v.role is StaffRole.coordinator else None,
            actor=actor, ipra_deadlines=app_in.ipra_deadlines)
    except PersonConflict as exc:
        # the use case committed its audit record of the refusal itself
        return page(request, v, "application.html", status_code=409, values=values,
                    errors={"snils": f"Данные не совпадают с картотекой ({exc})"},
                    templates=TEMPLATES)
    except calendars.CalendarError as exc:
        s.rollback()
        return page(request, v, "application.html", status_code=422, values=values,
                    errors={"birth_date": str(exc)}, templates=TEMPLATES)
    s.commit()
    return RedirectResponse(f"/routes/{route.id}?notice=registered", status_code=303)
