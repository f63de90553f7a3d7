"""The append-only audit log: every state change and every supervisor action.

There is no update or delete path in the code; the ORM refuses both, and database triggers
(see the migrations) refuse them too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class AuditImmutableError(RuntimeError):
    """Raised on any attempt to change or remove an audit record."""


# One audit record: who did what to which entity, when, before/after, and why.
class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    real_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=80, description="user id, agency id or 'system:<part>'")
    entity: str = Field(max_length=30, index=True)
    entity_id: str = Field(max_length=80, index=True)
    route_id: str | None = Field(default=None, max_length=40, index=True)
    action: str = Field(max_length=60)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    reason: str | None = None
    #: the HTTP request that wrote it (the access log's ``request_id``); None outside one
    request_id: str | None = Field(default=None, max_length=64)


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper: Mapper[Any], connection: Connection, target: AuditEvent) -> None:
    raise AuditImmutableError("audit_event is append-only: update refused")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper: Mapper[Any], connection: Connection, target: AuditEvent) -> None:
    raise AuditImmutableError("audit_event is append-only: delete refused")
