"""Staff users: coordinators (363н п.10б), supervisors (298-п Порядок п.13, Регламент п.17),
agency users (001 п.13: paper exchange) and administrators. A token is shown once at
creation (or rotation) and stored as its SHA-256 hash; it expires after
``staff_token_ttl_days`` of real time and can be revoked at once (152-ФЗ ст.19: access to
personal data is limited to those who need it, and withdrawn)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, select

import calendars
from engine.errors import EngineError
from engine.infra import audit
from engine.staff.passwords import hash_password
from engine.staff.sessions import end_sessions_of
from models.agencies import Agency
from models.staff import StaffRole, StaffUser
from models.types import utcnow

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_staff(
    session: Session, *, id: str, display_name: str, role: StaffRole | str, region: str,
    email: str | None = None, now: datetime | None = None, actor: str = "system:staff",
    token_ttl_days: int = 90, agency_id: str | None = None, password: str | None = None,
) -> tuple[StaffUser, str]:
    """Add a staff user; returns (user, token). The token is not stored, only its hash; it
    expires ``token_ttl_days`` days of real time from now."""
    if not ID_RE.match(id):
        raise EngineError("id: 2-40 characters of a-z, 0-9, '_', '.', '-', starting with a "
                          "letter or digit", rule="staff_id_pattern")
    if not display_name.strip():
        raise EngineError("display_name: must not be empty", rule="required")
    try:
        role = StaffRole(role)
    except ValueError:
        raise EngineError(
            f"role: must be one of {', '.join(r.value for r in StaffRole)}",
            rule="choice") from None
    calendars.get_calendar(region)  # unknown region -> CalendarError naming it
    if email is not None and "@" not in email:
        raise EngineError("email: must be an e-mail address", rule="email")
    if (role is StaffRole.agency) != (agency_id is not None):
        raise EngineError("agency_id: required for an agency user, and for no other role",
                          rule="agency_for_agency_role")
    if agency_id is not None and session.get(Agency, agency_id) is None:
        raise EngineError(f"agency_id: no agency {agency_id!r}", rule="unknown")
    if session.get(StaffUser, id) is not None:
        raise EngineError(f"id: staff user {id!r} exists already", rule="exists")
    token = secrets.token_urlsafe(32)
    user = StaffUser(id=id, display_name=display_name.strip(), role=role, region=region,
                     email=email, token_sha256=token_hash(token),
                     token_expires_at=_expiry(token_ttl_days), agency_id=agency_id,
                     password_hash=None if password is None else hash_password(password))
    session.add(user)
    audit.record(session, at=now or utcnow(), actor=actor, entity="staff", entity_id=id,
                 action="created", after={"role": role.value, "region": region,
                                          "agency_id": agency_id,
                                          "password": password is not None})
    return user, token


def _expiry(ttl_days: int) -> datetime:
    if ttl_days < 1:
        raise EngineError("token_ttl_days: must be at least 1")
    return utcnow() + timedelta(days=ttl_days)


def staff_by_token(session: Session, token: str) -> StaffUser | None:
    """The active staff user holding ``token`` while it is neither expired nor revoked (real
    time), or None."""
    user = session.exec(
        select(StaffUser).where(StaffUser.token_sha256 == token_hash(token))
    ).first()
    if user is None or not user.active or user.token_revoked_at is not None:
        return None
    if user.token_expires_at is not None and user.token_expires_at <= utcnow():
        return None
    return user


def _user(session: Session, id: str) -> StaffUser:
    user = session.get(StaffUser, id)
    if user is None:
        raise EngineError(f"id: no staff user {id!r}", rule="unknown")
    return user


def revoke_token(session: Session, *, id: str, now: datetime | None = None,
                 actor: str = "system:staff") -> StaffUser:
    """Refuse the user's token and sign-in from now on and end their open sessions (``rehab
    staff revoke``; ``rehab staff rotate`` gives access back); audited."""
    user = _user(session, id)
    if user.token_revoked_at is not None:
        raise EngineError(f"id: the token of {id!r} is revoked already", rule="already_revoked")
    user.token_revoked_at = utcnow()
    session.add(user)
    ended = end_sessions_of(session, id)
    audit.record(session, at=now or utcnow(), actor=actor, entity="staff", entity_id=id,
                 action="token_revoked", after={"sessions_ended": ended})
    return user


def rotate_token(session: Session, *, id: str, token_ttl_days: int = 90,
                 now: datetime | None = None, actor: str = "system:staff",
                 ) -> tuple[StaffUser, str]:
    """Issue the user a new token (the old one is refused at once) valid for
    ``token_ttl_days``; returns (user, token). Audited; the token is not stored."""
    user = _user(session, id)
    token = secrets.token_urlsafe(32)
    user.token_sha256 = token_hash(token)
    user.token_expires_at = _expiry(token_ttl_days)
    user.token_revoked_at = None
    session.add(user)
    audit.record(session, at=now or utcnow(), actor=actor, entity="staff", entity_id=id,
                 action="token_rotated",
                 after={"expires_at": user.token_expires_at.isoformat()})
    return user, token


def set_password(session: Session, *, id: str, password: str, actor: str,
                 now: datetime | None = None) -> StaffUser:
    """Set the staff user's sign-in password (``rehab staff passwd``); their open sessions
    end (a password changed because it leaked must not leave a session behind). Audited
    without the password."""
    user = session.get(StaffUser, id)
    if user is None:
        raise EngineError(f"id: no staff user {id!r}")
    user.password_hash = hash_password(password)
    session.add(user)
    ended = end_sessions_of(session, id)
    audit.record(session, at=now or utcnow(), actor=actor, entity="staff", entity_id=id,
                 action="password_set", after={"sessions_ended": ended})
    return user
