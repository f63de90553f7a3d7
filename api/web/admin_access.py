"""What the administrator's pages share: the role check (anyone else gets the same 404 as
an unknown page, and an audit record: 152-ФЗ ст.19) and the form field a refusal names."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from sqlmodel import Session

from api.web.core import Viewer, allowed, refuse
from api.web.messages import refusal_of
from models.staff import StaffRole


def admin_only(request: Request, v: Viewer, s: Session) -> datetime:
    """The business time of the request, once the viewer is an administrator; anyone else
    is refused (404 and an audit record of the page asked for)."""
    now: datetime = request.app.state.clock.now()
    if not allowed(v, StaffRole.admin):
        raise refuse(s, v, now=now, entity="page", entity_id=request.url.path, why="role")
    return now


def field_of(exc: Exception, default: str) -> str:
    """The form field a use case's refusal names, else ``default``."""
    return refusal_of(exc).field or default
