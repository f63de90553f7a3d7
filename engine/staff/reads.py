"""Reading staff users for the administrator's pages (no hash of a token or password is
shown: the page gets what ``StaffRow`` holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.staff import StaffRole, StaffUser
from models.types import utcnow


@dataclass(frozen=True)
class StaffRow:
    """What the staff list shows of one user."""

    id: str
    display_name: str
    role: StaffRole
    region: str
    agency_id: str | None
    email: str | None
    can_sign_in: bool  # a password is set and access is not revoked
    revoked: bool
    token_expires_at: datetime | None
    token_expired: bool


def staff_rows(session: Session) -> list[StaffRow]:
    """Every staff user, by region, role and id."""
    now = utcnow()
    users = session.exec(select(StaffUser).order_by(col(StaffUser.region),
                                                    col(StaffUser.role), col(StaffUser.id)))
    return [StaffRow(id=u.id, display_name=u.display_name, role=u.role, region=u.region,
                     agency_id=u.agency_id, email=u.email,
                     can_sign_in=bool(u.password_hash) and u.active
                     and u.token_revoked_at is None,
                     revoked=u.token_revoked_at is not None,
                     token_expires_at=u.token_expires_at,
                     token_expired=u.token_expires_at is not None
                     and u.token_expires_at <= now)
            for u in users]


def staff_exists(session: Session, staff_id: str) -> bool:
    return session.get(StaffUser, staff_id) is not None
