"""The schema the migrations build is the schema the models describe (on SQLite and, with
REHAB_TEST_DATABASE_URL, on PostgreSQL): a model change without its migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)


def test_migrations_match_the_models(db: Engine) -> None:
    with db.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []
