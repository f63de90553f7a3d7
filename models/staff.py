"""Staff users of the product: coordinators, supervisors, administrators."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class StaffRole(StrEnum):
    coordinator = "coordinator"  # monitors routes (363н п.10б)
    supervisor = "supervisor"  # reviews escalations (298-п Порядок п.13, Регламент п.17)
    admin = "admin"


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
