"""Staff users: coordinators (363н п.10б), supervisors (298-п Порядок п.13, Регламент п.17)
and administrators. A token is shown once at creation and stored as its SHA-256 hash."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlmodel import Session, select

import calendars
from engine import audit
from engine.routes import EngineError
from models.staff import StaffRole, StaffUser
from models.types import utcnow

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_staff(
    session: Session, *, id: str, display_name: str, role: StaffRole | str, region: str,
    email: str | None = None, now: datetime | None = None, actor: str = "system:staff",
) -> tuple[StaffUser, str]:
    """Add a staff user; returns (user, token). The token is not stored, only its hash."""
    if not ID_RE.match(id):
        raise EngineError("id: 2-40 characters of a-z, 0-9, '_', '.', '-', starting with a "
                          "letter or digit")
    if not display_name.strip():
        raise EngineError("display_name: must not be empty")
    try:
        role = StaffRole(role)
    except ValueError:
        raise EngineError(
            f"role: must be one of {', '.join(r.value for r in StaffRole)}") from None
    calendars.get_calendar(region)  # unknown region -> CalendarError naming it
    if email is not None and "@" not in email:
        raise EngineError("email: must be an e-mail address")
    if session.get(StaffUser, id) is not None:
        raise EngineError(f"id: staff user {id!r} exists already")
    token = secrets.token_urlsafe(32)
    user = StaffUser(id=id, display_name=display_name.strip(), role=role, region=region,
                     email=email, token_sha256=token_hash(token))
    session.add(user)
    audit.record(session, at=now or utcnow(), actor=actor, entity="staff", entity_id=id,
                 action="created", after={"role": role.value, "region": region})
    return user, token


def staff_by_token(session: Session, token: str) -> StaffUser | None:
    """The active staff user holding ``token``, or None."""
    user = session.exec(
        select(StaffUser).where(StaffUser.token_sha256 == token_hash(token))
    ).first()
    return user if user is not None and user.active else None
