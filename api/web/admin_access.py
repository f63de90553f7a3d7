"""What the administrator's pages share: the role check (anyone else gets the same 404 as
an unknown page, and an audit record: 152-ФЗ ст.19), the field a refusal names, and the
Russian names of agency roles."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from sqlmodel import Session

from api.web.core import Viewer, allowed, refuse
from models.agencies import AgencyRole
from models.staff import StaffRole

AGENCY_ROLE_RU = {
    AgencyRole.mse: "бюро МСЭ", AgencyRole.sfr: "отделение Социального фонда",
    AgencyRole.social_policy: "социальная политика", AgencyRole.education: "образование",
    AgencyRole.health: "здравоохранение", AgencyRole.sport: "физическая культура и спорт",
    AgencyRole.culture: "культура",
    AgencyRole.provider: "поставщик социальных услуг / реабилитационная организация",
    AgencyRole.municipality: "муниципальное образование",
}


def admin_only(request: Request, v: Viewer, s: Session) -> datetime:
    """The business time of the request, once the viewer is an administrator; anyone else
    is refused (404 and an audit record of the page asked for)."""
    now: datetime = request.app.state.clock.now()
    if not allowed(v, StaffRole.admin):
        raise refuse(s, v, now=now, entity="page", entity_id=request.url.path, why="role")
    return now


def field_of(exc: Exception, default: str) -> str:
    """The field a use case's refusal names (``"field: rule"``), else ``default``."""
    text = str(exc)
    head = text.split(":", 1)[0]
    return head if ":" in text and head.replace("_", "").isalnum() else default
