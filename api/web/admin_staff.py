"""The administrator's staff pages: coordinators (363н п.10б), supervisors (298-п Порядок
п.13, Регламент п.17), agency users (001 п.13: paper exchange) and administrators — list,
add with role, region and agency, reset a password, revoke access and give it back. The
same use cases as ``rehab staff add|passwd|revoke|rotate`` (``engine/staff``), each with its
audit record; a password or token is shown once and stored only as a hash (152-ФЗ ст.19:
access to personal data only for those who need it, withdrawn at once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import calendars
from api.web.admin_access import admin_only, field_of
from api.web.core import ROLE_RU, DbDep, FormViewer, Viewer, ViewerDep, page, refuse
from api.web.messages import refusal_ru
from engine.agencies.reads import all_agencies
from engine.errors import EngineError
from engine.staff.accounts import create_staff, revoke_token, rotate_token, set_password
from engine.staff.passwords import generate_password
from engine.staff.reads import staff_exists, staff_rows
from models.staff import StaffRole

router = APIRouter(include_in_schema=False)
DONE_RU = {"revoked": "Доступ отозван: вход и токен больше не действуют, сеансы завершены."}
Text = Annotated[str, Form(max_length=1000)]
FIELDS = ("id", "display_name", "role", "region", "agency_id", "email")
#: The form's labels where they differ from the common Russian names (``messages.FIELD_RU``).
LABELS = {"id": "Учётная запись"}


def _form(request: Request, v: Viewer, s: DbDep, *, values: dict[str, str],
          errors: dict[str, str], code: int = 200) -> HTMLResponse:
    return page(request, v, "admin_staff_form.html", status_code=code, values=values,
                errors=errors, roles=[(r.value, ROLE_RU[r]) for r in StaffRole],
                regions=[(r.code, r.name) for r in calendars.known_regions()],
                agencies=[(a.id, f"{a.short_name} — {a.name} (регион {a.region})")
                          for a in all_agencies(s)])


def _once(request: Request, v: Viewer, *, heading: str, note: str,
          items: list[tuple[str, str]]) -> HTMLResponse:
    resp = page(request, v, "admin_once.html", heading=heading, note=note, items=items,
                back="/admin/staff")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.get("/admin/staff", response_class=HTMLResponse)
def staff(request: Request, v: ViewerDep, s: DbDep, done: str = "") -> HTMLResponse:
    """Сотрудники: роль, регион, ведомство, доступ."""
    admin_only(request, v, s)
    return page(request, v, "admin_staff.html", rows=staff_rows(s), done=DONE_RU.get(done, ""))


@router.get("/admin/staff/new", response_class=HTMLResponse)
def new_staff(request: Request, v: ViewerDep, s: DbDep, agency: str = "") -> HTMLResponse:
    admin_only(request, v, s)
    values = {"region": v.user.region, "role": "agency" if agency else "",
              "agency_id": agency[:40]}
    return _form(request, v, s, values=values, errors={})


@router.post("/admin/staff", response_class=HTMLResponse)
def add_staff(request: Request, v: FormViewer, s: DbDep, id: Text = "",
              display_name: Text = "", role: Text = "", region: Text = "",
              agency_id: Text = "", email: Text = "") -> Response:
    """Add a staff user (``rehab staff add``) with a one-time sign-in password; the password
    and the API token are shown once."""
    now = admin_only(request, v, s)
    values = dict(zip(FIELDS, (id, display_name, role, region, agency_id, email),
                      strict=True))
    password = generate_password()
    try:
        if not role:
            raise EngineError("role: choose one", rule="choose")
        user, token = create_staff(
            s, id=id.strip().lower(), display_name=display_name, role=role, region=region,
            email=email.strip() or None, now=now, actor=v.actor,
            token_ttl_days=request.app.state.settings.staff_token_ttl_days,
            agency_id=(agency_id or None) if role == StaffRole.agency.value else None,
            password=password)
    except (EngineError, calendars.CalendarError) as exc:
        s.rollback()
        return _form(request, v, s, values=values,
                     errors={field_of(exc, "id"): refusal_ru(exc, fields=LABELS)}, code=422)
    s.commit()
    return _once(request, v, heading=f"Сотрудник {user.id} добавлен",
                 note="Передайте пароль сотруднику лично; после ухода с этой страницы его не "
                      "увидит никто. Токен нужен только для доступа программ к API.",
                 items=[("Учётная запись", user.id), ("Роль", ROLE_RU[user.role]),
                        ("Пароль для входа (показывается один раз)", password),
                        ("Токен API (показывается один раз)", token)])


def _known(request: Request, v: Viewer, s: DbDep, staff_id: str) -> None:
    now = admin_only(request, v, s)
    if not staff_exists(s, staff_id):
        raise refuse(s, v, now=now, entity="staff", entity_id=staff_id, why="unknown")


@router.post("/admin/staff/{staff_id}/password", response_class=HTMLResponse)
def reset_password(request: Request, staff_id: str, v: FormViewer, s: DbDep) -> Response:
    """A new one-time password (``rehab staff passwd``): shown once; the user's sessions
    end."""
    _known(request, v, s, staff_id)
    password = generate_password()
    set_password(s, id=staff_id, password=password, actor=v.actor,
                 now=request.app.state.clock.now())
    s.commit()
    return _once(request, v, heading=f"Новый пароль сотрудника {staff_id}",
                 note="Прежний пароль больше не действует, открытые сеансы сотрудника "
                      "завершены. Передайте новый пароль лично.",
                 items=[("Учётная запись", staff_id),
                        ("Пароль для входа (показывается один раз)", password)])


@router.post("/admin/staff/{staff_id}/revoke")
def revoke(request: Request, staff_id: str, v: FormViewer, s: DbDep) -> Response:
    """Revoke access (``rehab staff revoke``): sign-in and token refused, sessions ended."""
    _known(request, v, s, staff_id)
    try:
        if staff_id == v.user.id:
            raise EngineError("id: you cannot revoke your own access (ask another "
                              "administrator)", rule="self_revoke")
        revoke_token(s, id=staff_id, actor=v.actor, now=request.app.state.clock.now())
    except EngineError as exc:
        s.rollback()
        return page(request, v, "admin_staff.html", status_code=409, rows=staff_rows(s),
                    done="", error=refusal_ru(exc, fields=LABELS))
    s.commit()
    return RedirectResponse("/admin/staff?done=revoked", status_code=303)


@router.post("/admin/staff/{staff_id}/restore", response_class=HTMLResponse)
def restore(request: Request, staff_id: str, v: FormViewer, s: DbDep) -> Response:
    """Give access back with a new token (``rehab staff rotate``), shown once."""
    _known(request, v, s, staff_id)
    user, token = rotate_token(s, id=staff_id, actor=v.actor,
                               now=request.app.state.clock.now(),
                               token_ttl_days=request.app.state.settings.staff_token_ttl_days)
    s.commit()
    return _once(request, v, heading=f"Доступ сотрудника {staff_id} восстановлен",
                 note="Вход по паролю снова действует; выдан новый токен API.",
                 items=[("Учётная запись", user.id),
                        ("Токен API (показывается один раз)", token)])
