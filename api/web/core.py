"""What every page needs: the Jinja2 templates (Russian), the signed-in person (a
server-side session, ``engine/staff/sessions.py``), the CSRF check of every form, and the
object access rule — role, region and agency; a miss is 404 and an audit record (152-ФЗ
ст.19: access to personal data only for those who need it)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import pendulum
from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlmodel import Session

import calendars
from engine.infra import audit
from engine.staff.sessions import session_user
from models import labels
from models.agencies import AgencyRole
from models.staff import StaffRole, StaffSession, StaffUser

COOKIE = "rehab_session"
LOGIN_CSRF_COOKIE = "rehab_login_csrf"
HERE = Path(__file__).parent

ROLE_RU = {StaffRole.coordinator: "координатор", StaffRole.supervisor: "куратор (Минсоцполитики)",
           StaffRole.agency: "сотрудник ведомства", StaffRole.admin: "администратор"}
ROUTE_STATUS_RU = {"active": "в работе", "completed": "завершён", "cancelled": "отменён",
                   "suspended": "приостановлен", "terminated": "сопровождение прекращено"}
STEP_STATUS_RU = {"planned": "запланирован", "sending": "отправляется",
                  "awaiting": "ожидает ответа", "needs_clarification": "нужно уточнение",
                  "answered": "получен ответ", "absent": "сведения отсутствуют",
                  "cancelled": "закрыт", "paused": "приостановлен (отказ от сопровождения)",
                  "awaiting_receipt": "ожидает получения"}
AGENCY_ROLE_RU = {
    AgencyRole.mse: "бюро МСЭ", AgencyRole.sfr: "отделение Социального фонда",
    AgencyRole.social_policy: "социальная политика", AgencyRole.education: "образование",
    AgencyRole.health: "здравоохранение", AgencyRole.sport: "физическая культура и спорт",
    AgencyRole.culture: "культура",
    AgencyRole.provider: "поставщик социальных услуг / реабилитационная организация",
    AgencyRole.municipality: "муниципальное образование",
}
LEVEL_RU = {0: "напоминание", 1: "просрочка", 2: "эскалация"}
ESC_STATUS_RU = {"open": "открыта", "acknowledged": "принята в работу",
                 "resolved": "урегулирована", "closed": "закрыта"}
OUTCOME_RU = {"provided": "сведения предоставлены", "absent": "сведения отсутствуют",
              "rejected": "запрос отклонён (нужно уточнение)"}


def region_tz(region: str) -> str:
    try:
        return calendars.get_calendar(region).timezone
    except calendars.CalendarError:
        return calendars.get_calendar(calendars.DEFAULT_REGION).timezone


def local_dt(value: datetime | None, region: str = calendars.DEFAULT_REGION) -> str:
    """``dd.mm.yyyy HH:MM`` in the region's time zone (Kaliningrad by default)."""
    if value is None:
        return "—"
    return pendulum.instance(value).in_timezone(region_tz(region)).format("DD.MM.YYYY HH:mm")


def ru_date(value: date | None) -> str:
    return "—" if value is None else value.strftime("%d.%m.%Y")


env = Environment(loader=FileSystemLoader(HERE / "templates"),
                  autoescape=select_autoescape(["html", "svg"]), trim_blocks=True,
                  lstrip_blocks=True)
env.filters["local_dt"] = local_dt
env.filters["ru_date"] = ru_date
env.filters["step_kind"] = labels.step_kind_ru
env.filters["action_ru"] = labels.action_ru
env.filters["entity_ru"] = labels.entity_ru
env.filters["actor_ru"] = labels.actor_ru
env.filters["cause_ru"] = labels.cause_ru
env.filters["reason_ru"] = labels.reason_ru
env.filters["region_name"] = labels.region_name
env.filters["region_tz"] = labels.region_timezone_ru
env.filters["tz_ru"] = labels.timezone_ru
env.globals.update(ROLE_RU=ROLE_RU, ROUTE_STATUS_RU=ROUTE_STATUS_RU,
                   STEP_STATUS_RU=STEP_STATUS_RU, LEVEL_RU=LEVEL_RU,
                   ESC_STATUS_RU=ESC_STATUS_RU, OUTCOME_RU=OUTCOME_RU,
                   DEADLINE_KIND_RU=labels.DEADLINE_KIND_RU)


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(env.get_template(name).render(**context), status_code=status_code)


class SignInRequired(Exception):
    """No live session: the page sends the person to the sign-in form."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageNotFound(Exception):
    """The object does not exist or the person may not see it (the same answer)."""


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


@dataclass
class Viewer:
    """The signed-in person of a request and their session."""

    user: StaffUser
    session: StaffSession

    @property
    def actor(self) -> str:
        return f"staff:{self.user.id}"

    @property
    def role(self) -> StaffRole:
        return self.user.role


def db(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as s:
        try:
            yield s
        finally:
            s.rollback()


DbDep = Annotated[Session, Depends(db)]


def viewer(request: Request, s: DbDep) -> Viewer:
    token = request.cookies.get(COOKIE)
    found = session_user(s, token) if token else None
    if found is None:
        # back to the page after sign-in; a form's address is no page to come back to
        # (a GET of it is refused), nor is the sign-out's
        back = request.url.path if request.method in ("GET", "HEAD") else ""
        raise SignInRequired(back)
    s.commit()  # last_seen_at
    return Viewer(user=found[0], session=found[1])


ViewerDep = Annotated[Viewer, Depends(viewer)]


def csrf_checked(v: ViewerDep, csrf_token: Annotated[str, Form()] = "") -> Viewer:
    """The person, after the form's ``csrf_token`` matched their session's."""
    if not hmac.compare_digest(csrf_token.encode(), v.session.csrf_token.encode()):
        raise CsrfRefused()
    return v


FormViewer = Annotated[Viewer, Depends(csrf_checked)]


def refuse(s: Session, v: Viewer, *, now: datetime, entity: str, entity_id: str,
           why: str) -> PageNotFound:
    """Record the refused read (committed at once) and return the 404 to raise."""
    s.rollback()
    audit.record(s, at=now, actor=v.actor, entity=entity, entity_id=entity_id[:80],
                 action="access_refused", after={"why": why, "role": v.role.value})
    s.commit()
    return PageNotFound()


def allowed(v: Viewer, *roles: StaffRole, region: str | None = None) -> bool:
    """Role and region rule: administrators see every region."""
    if v.role not in roles:
        return False
    return region is None or v.role is StaffRole.admin or v.user.region == region


def page(request: Request, v: Viewer | None, name: str, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    """A page with the signed-in person's menu and the CSRF token of their forms."""
    now = request.app.state.clock.now()
    return render(name, status_code=status_code, viewer=v,
                  csrf=v.session.csrf_token if v else "", now=now, path=request.url.path,
                  **context)
