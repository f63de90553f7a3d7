"""The audit log is append-only: updates and deletes fail through the ORM and through raw
SQL (database triggers of migration 0002), on SQLite and PostgreSQL; TRUNCATE fails on
PostgreSQL (a statement trigger of migration 0003)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from engine.infra import audit
from models.audit import AuditEvent, AuditImmutableError
from tests.conftest import PG_URL, kaliningrad


@pytest.fixture
def event_id(db: Engine) -> int:
    with Session(db) as s:
        audit.record(s, at=kaliningrad(2025, 3, 3, 10, 0), actor="staff:x", entity="route",
                     entity_id="rt_1", action="read")
        s.commit()
        row = s.exec(select(AuditEvent)).one()
        assert row.id is not None
        return row.id


def test_orm_update_and_delete_are_refused(db: Engine, event_id: int) -> None:
    with Session(db) as s:
        row = s.get(AuditEvent, event_id)
        assert row is not None
        row.action = "forged"
        s.add(row)
        with pytest.raises(AuditImmutableError):
            s.commit()
    with Session(db) as s:
        row = s.get(AuditEvent, event_id)
        s.delete(row)
        with pytest.raises(AuditImmutableError):
            s.commit()


@pytest.mark.parametrize("sql", [
    "UPDATE audit_event SET action = 'forged' WHERE id = :id",
    "DELETE FROM audit_event WHERE id = :id",
])
def test_raw_sql_update_and_delete_are_refused(db: Engine, event_id: int, sql: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as conn:
        conn.execute(text(sql), {"id": event_id})
    with Session(db) as s:
        row = s.get(AuditEvent, event_id)
        assert row is not None and row.action == "read"


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TRUNCATE is PostgreSQL's (SQLite has none; its "
                    "DELETE without WHERE is covered below)")
def test_truncate_is_refused_on_postgres(db: Engine, event_id: int) -> None:
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"), db.begin() as conn:
        conn.execute(text("TRUNCATE audit_event"))
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as conn:
        conn.execute(text("TRUNCATE audit_event, job RESTART IDENTITY CASCADE"))
    with Session(db) as s:
        assert s.get(AuditEvent, event_id) is not None


def test_deleting_every_row_is_refused(db: Engine, event_id: int) -> None:
    with pytest.raises(DBAPIError, match="append-only"), db.begin() as conn:
        conn.execute(text("DELETE FROM audit_event"))
    with Session(db) as s:
        assert s.get(AuditEvent, event_id) is not None
