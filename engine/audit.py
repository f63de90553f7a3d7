"""Writing the audit log: one append-only record per state change (issue: Audit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.audit import AuditEvent


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    entity: str,
    entity_id: str,
    action: str,
    route_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Append one audit record in the caller's transaction (it commits with the change)."""
    session.add(
        AuditEvent(
            at=at,
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            route_id=route_id,
            action=action,
            before=_jsonable(before),
            after=_jsonable(after),
            reason=reason,
        )
    )


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    out: dict[str, Any] = {}
    for k, v in value.items():
        out[k] = v.isoformat() if hasattr(v, "isoformat") else v
    return out
