"""Staff users of the product: coordinators, supervisors, agency users, administrators;
their sign-in sessions and sign-in attempts (issue 12)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class StaffRole(StrEnum):
    coordinator = "coordinator"  # monitors routes (363н п.10б)
    supervisor = "supervisor"  # reviews escalations (298-п Порядок п.13, Регламент п.17)
    admin = "admin"
    #: a person of a participant agency without its own system (001 п.13: paper exchange):
    #: sees only the requests addressed to their agency (``StaffUser.agency_id``)
    agency = "agency"


# A person working in the system; the token is stored as a SHA-256 hash.
class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: str = Field(primary_key=True, max_length=40)
    display_name: str = Field(max_length=200)
    role: StaffRole
    region: str = Field(max_length=8, index=True)
    email: str | None = Field(default=None, max_length=200)
    token_sha256: str = Field(unique=True, max_length=64)
    active: bool = True
    #: real time after which the token is refused (``rehab staff rotate`` issues a new one)
    token_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: set by ``rehab staff revoke``: the token is refused from then on
    token_revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: argon2id hash of the sign-in password (``rehab staff passwd``); None: no sign-in
    password_hash: str | None = Field(default=None, max_length=200)
    #: the agency an agency user acts for (role ``agency`` only)
    agency_id: str | None = Field(default=None, foreign_key="agency.id", max_length=40)


# A signed-in person's session on the pages (server-side; the cookie carries its token, the
# table its SHA-256). It ends at ``expires_at`` (real time), on sign-out or on revocation.
class StaffSession(SQLModel, table=True):
    __tablename__ = "staff_session"

    id_sha256: str = Field(primary_key=True, max_length=64)
    staff_id: str = Field(foreign_key="staff_user.id", index=True, max_length=40)
    csrf_token: str = Field(max_length=64, description="checked on every POST of a form")
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, description="absolute end (real time)")
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# One sign-in attempt (real time), counted per account and per client address across all
# API processes to refuse guessing.
class SigninAttempt(SQLModel, table=True):
    __tablename__ = "signin_attempt"

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=80, index=True)
    client: str = Field(max_length=64, index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    ok: bool = False
