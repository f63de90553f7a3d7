"""The administrator's agency pages: the participants of interagency interaction (298-п
Порядок п.3, Регламент п.4; 363н п.3, п.4) — list, add, correct a card, choose the channel
(the agency's system at an endpoint, or its inbox for paper exchange, 298-п Регламент п.13),
rotate the webhook secret (shown once, the audit keeps a fingerprint). Every change is a use
case of ``engine/agencies/participants.py`` (the ones behind ``rehab agency``) with its
audit record, in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

import calendars
from api.web.admin_access import admin_only, field_of
from api.web.core import AGENCY_ROLE_RU, DbDep, FormViewer, Viewer, ViewerDep, page, refuse
from api.web.messages import refusal_ru
from engine.agencies import participants as ag
from engine.agencies.reads import agency_by_id, all_agencies
from engine.errors import EngineError
from models.agencies import Agency, AgencyRole

router = APIRouter(include_in_schema=False)
DONE_RU = {"updated": "Карточка ведомства сохранена.",
           "retired": "Предыдущий секрет отозван: действует только текущий."}
Text = Annotated[str, Form(max_length=1000)]
FIELDS = ("id", "name", "short_name", "role", "region", "email", "channel", "endpoint_url")
#: The form's labels where they differ from the common Russian names (``messages.FIELD_RU``).
LABELS = {"role": "Вид участника", "email": "Эл. почта для напоминаний"}


def _choices() -> dict[str, Any]:
    return {"roles": [(r.value, AGENCY_ROLE_RU[r]) for r in AgencyRole],
            "regions": [(r.code, r.name) for r in calendars.known_regions()]}


def _values(agency: Agency) -> dict[str, str]:
    return {"id": agency.id, "name": agency.name, "short_name": agency.short_name,
            "role": agency.role.value, "region": agency.region, "email": agency.email or "",
            "channel": "http" if agency.endpoint_url else "inbox",
            "endpoint_url": agency.endpoint_url or ""}


def _agency(s: Session, v: Viewer, agency_id: str, now: datetime) -> Agency:
    agency = agency_by_id(s, agency_id)
    if agency is None:
        raise refuse(s, v, now=now, entity="agency", entity_id=agency_id, why="unknown")
    return agency


def _endpoint(channel: str, endpoint_url: str) -> str | None:
    """The endpoint the form asks for: None for the inbox (paper exchange)."""
    if channel not in ("http", "inbox"):
        raise EngineError("channel: must be http (the agency's system) or inbox (paper)",
                          rule="choice")
    if channel == "inbox":
        return None
    if not endpoint_url.strip():
        raise EngineError("endpoint_url: required when requests go to the agency's system",
                          rule="required_for_http")
    return endpoint_url.strip()


def _once(request: Request, v: Viewer, *, heading: str, agency: Agency, secret: str,
          note: str) -> HTMLResponse:
    resp = page(request, v, "admin_once.html", heading=heading, note=note,
                items=[("Ведомство", f"{agency.id} — {agency.short_name}"),
                       ("Секрет подписи (показывается один раз)", secret),
                       ("Отпечаток (для сверки по телефону)", ag.fingerprint(secret))],
                back=f"/admin/agencies/{agency.id}")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/admin/agencies", response_class=HTMLResponse)
def agencies(request: Request, v: ViewerDep, s: DbDep) -> HTMLResponse:
    """Ведомства: список с каналом и отпечатком секрета."""
    admin_only(request, v, s)
    rows = [ag.describe(a) | {"name": a.name} for a in all_agencies(s)]
    return page(request, v, "admin_agencies.html", rows=rows, role_ru=AGENCY_ROLE_RU)


@router.get("/admin/agencies/new", response_class=HTMLResponse)
def new_agency(request: Request, v: ViewerDep, s: DbDep) -> HTMLResponse:
    admin_only(request, v, s)
    return page(request, v, "admin_agency_form.html", agency=None, errors={},
                values={"region": v.user.region, "channel": "inbox"}, **_choices())


@router.post("/admin/agencies", response_class=HTMLResponse)
def add_agency(request: Request, v: FormViewer, s: DbDep, id: Text = "", name: Text = "",
               short_name: Text = "", role: Text = "", region: Text = "", email: Text = "",
               channel: Text = "inbox", endpoint_url: Text = "") -> Response:
    """Register an agency; its secret is shown once (only a fingerprint is kept in the
    audit)."""
    now = admin_only(request, v, s)
    values = dict(zip(FIELDS, (id, name, short_name, role, region, email, channel,
                               endpoint_url), strict=True))
    try:
        agency, secret = ag.add_agency(
            s, id=id.strip(), name=name, short_name=short_name, role=role, region=region,
            endpoint_url=_endpoint(channel, endpoint_url), email=email.strip() or None,
            now=now, actor=v.actor)
    except (EngineError, calendars.CalendarError) as exc:
        s.rollback()
        return page(request, v, "admin_agency_form.html", status_code=422, agency=None,
                    errors={field_of(exc, "id"): refusal_ru(exc, fields=LABELS)},
                    values=values, **_choices())
    s.commit()
    return _once(request, v, heading=f"Ведомство {agency.id} добавлено", agency=agency,
                 secret=secret, note="Передайте секрет ведомству защищённым каналом: им "
                 "подписываются запросы и ответы. После ухода с этой страницы его не "
                 "увидит никто.")


@router.get("/admin/agencies/{agency_id}", response_class=HTMLResponse)
def agency_page(request: Request, agency_id: str, v: ViewerDep, s: DbDep,
                done: str = "") -> HTMLResponse:
    """Карточка ведомства: правка, канал, секрет."""
    now = admin_only(request, v, s)
    agency = _agency(s, v, agency_id, now)
    return page(request, v, "admin_agency_form.html", agency=ag.describe(agency),
                errors={}, values=_values(agency), done=DONE_RU.get(done, ""), **_choices())


@router.post("/admin/agencies/{agency_id}", response_class=HTMLResponse)
def update_agency(request: Request, agency_id: str, v: FormViewer, s: DbDep,
                  name: Text = "", short_name: Text = "", role: Text = "", region: Text = "",
                  email: Text = "", channel: Text = "inbox", endpoint_url: Text = ""
                  ) -> Response:
    """Correct the card and the channel in one transaction (each change audited)."""
    now = admin_only(request, v, s)
    agency = _agency(s, v, agency_id, now)
    values = dict(zip(FIELDS, (agency_id, name, short_name, role, region, email, channel,
                               endpoint_url), strict=True))
    try:
        url = _endpoint(channel, endpoint_url)
        ag.update_agency(s, agency_id, name=name, short_name=short_name, role=role,
                         region=region, email=email, now=now, actor=v.actor)
        if url != agency.endpoint_url:
            ag.set_endpoint(s, agency_id, url, now=now, actor=v.actor)
    except (EngineError, calendars.CalendarError) as exc:
        s.rollback()
        agency = _agency(s, v, agency_id, now)
        return page(request, v, "admin_agency_form.html", status_code=422,
                    agency=ag.describe(agency),
                    errors={field_of(exc, "name"): refusal_ru(exc, fields=LABELS)},
                    values=values, **_choices())
    s.commit()
    return RedirectResponse(f"/admin/agencies/{agency_id}?done=updated", status_code=303)


@router.post("/admin/agencies/{agency_id}/rotate-secret", response_class=HTMLResponse)
def rotate_secret(request: Request, agency_id: str, v: FormViewer, s: DbDep) -> Response:
    """Issue a new secret, shown once; the old one stays valid until retired (a public demo
    secret is not kept)."""
    now = admin_only(request, v, s)
    agency = _agency(s, v, agency_id, now)
    try:
        secret = ag.rotate_secret(s, agency_id, now=now, actor=v.actor)
    except EngineError as exc:
        return _secret_refused(request, v, s, agency_id, now, exc)
    s.commit()
    kept = agency.secret_previous is not None
    note = ("Прежний секрет действует, пока вы его не отзовёте на карточке ведомства: "
            "ведомство успеет перейти на новый." if kept else
            "Прежний секрет был публичным демонстрационным: он больше не действует.")
    return _once(request, v, heading=f"Новый секрет ведомства {agency.id}", agency=agency,
                 secret=secret, note=note)


def _secret_refused(request: Request, v: Viewer, s: Session, agency_id: str, now: datetime,
                    exc: EngineError) -> Response:
    """The agency's form again with the refusal of a secret's change, in Russian (409);
    nothing of the refused change is kept."""
    s.rollback()
    agency = _agency(s, v, agency_id, now)
    return page(request, v, "admin_agency_form.html", status_code=409,
                agency=ag.describe(agency), errors={"secret": refusal_ru(exc)},
                values=_values(agency), **_choices())


@router.post("/admin/agencies/{agency_id}/retire-previous")
def retire_previous(request: Request, agency_id: str, v: FormViewer, s: DbDep) -> Response:
    now = admin_only(request, v, s)
    _agency(s, v, agency_id, now)
    try:
        ag.retire_previous(s, agency_id, now=now, actor=v.actor)
    except EngineError as exc:
        return _secret_refused(request, v, s, agency_id, now, exc)
    s.commit()
    return RedirectResponse(f"/admin/agencies/{agency_id}?done=retired", status_code=303)
