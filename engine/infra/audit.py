"""Writing the audit log: one append-only record per state change (issue: Audit).

Records are written in the caller's transaction and commit (or roll back) with the change
they describe. A route transition writes a dozen of them, so they are plain INSERTs on the
session's connection, not ORM objects: a record is never read back or changed by the
transaction that writes it, and the ORM's unit of work cost more than the rest of the
transition.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from engine.infra.request_ids import current_request_id
from engine.infra.write_buffer import collected
from models.audit import AuditEvent
from models.types import UTCDateTime, utcnow

_INSERT = insert(AuditEvent.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Entry:
    """One record for ``record_many``."""

    entity: str
    entity_id: str
    action: str
    route_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str | None = None


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
    record_many(session, at=at, actor=actor, entries=[Entry(
        entity=entity, entity_id=entity_id, action=action, route_id=route_id, before=before,
        after=after, reason=reason)])


def record_many(session: Session, *, at: datetime, actor: str,
                entries: Sequence[Entry]) -> None:
    """Append several records of one actor at one instant, in order, with one statement
    (inside ``buffered``: kept for its one statement at the end)."""
    if not entries:
        return
    real_at = utcnow()
    request_id = current_request_id.get() or None
    rows = [{
        "at": at, "real_at": real_at, "actor": actor, "entity": e.entity,
        "entity_id": e.entity_id, "route_id": e.route_id, "action": e.action,
        "before": jsonable(e.before), "after": jsonable(e.after), "reason": e.reason,
        "request_id": request_id,
    } for e in entries]
    pending: list[dict[str, Any]] | None = session.info.get(_BUFFER)
    if pending is not None:
        pending += rows
    else:
        _insert_rows(session.connection(), rows)


_BUFFER = "rehab.audit.buffer"
_COLUMNS = ("at", "real_at", "actor", "entity", "entity_id", "route_id", "action", "before",
            "after", "reason", "request_id")
_COPY = f"COPY audit_event ({', '.join(_COLUMNS)}) FROM STDIN"
_INSTANT = UTCDateTime()


def _insert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """The records, in order, in the connection's transaction: on PostgreSQL one ``COPY``
    (a third of an INSERT's CPU per row on both sides), elsewhere one executemany."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        conn.execute(_INSERT, rows)
        return
    dialect = conn.dialect
    dump = dialect._json_serializer or json.dumps  # type: ignore[attr-defined]  # as JSON binds
    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    with raw.cursor() as cur, cur.copy(_COPY) as copy:
        for r in rows:
            copy.write_row((
                _INSTANT.process_bind_param(r["at"], dialect),
                _INSTANT.process_bind_param(r["real_at"], dialect),
                r["actor"], r["entity"], r["entity_id"], r["route_id"], r["action"],
                dump(r["before"]), dump(r["after"]),  # None as JSON null, as the binds do
                r["reason"], r["request_id"]))


def buffered(session: Session) -> AbstractContextManager[None]:
    """Collect the records of one use case and write them with one multi-row INSERT when
    it ends, in the same transaction, before its commit (``engine.infra.write_buffer``)."""
    return collected(session, _BUFFER, [], _insert_rows)


def jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """``before`` / ``after`` as stored: dates and instants as ISO strings."""
    if value is None:
        return None
    out: dict[str, Any] = {}
    for k, v in value.items():
        out[k] = v.isoformat() if hasattr(v, "isoformat") else v
    return out
