"""Helpers of the API tests: a snapshot of every table, to prove a refused request changed
nothing (no row added, removed or altered)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

Snapshot = dict[str, tuple[int, str]]


def table_snapshot(db: Engine) -> Snapshot:
    """For every table of our schema: its row count and a digest of its rows."""
    out: Snapshot = {}
    with db.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
            out[table.name] = (len(rows), digest)
    return out


@pytest.fixture
def snapshot(db: Engine) -> Callable[[], Snapshot]:
    return lambda: table_snapshot(db)
