"""A fresh, migrated database of ours for a benchmark run: PostgreSQL's schema ``public`` is
dropped and made anew (the benchmark owns that database); SQLite is a new file."""

from __future__ import annotations

import tempfile

from sqlalchemy import Engine, text

from engine.infra.db import make_engine, migrate


def reset_schema(engine: Engine) -> None:
    """Drop everything of ours (PostgreSQL) and migrate to the newest schema."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate(engine)


def fresh_database(url: str, *, prefix: str) -> Engine:
    """``url`` emptied and migrated, or (``url`` empty) a new SQLite file in a temp dir."""
    engine = make_engine(url or f"sqlite:///{tempfile.mkdtemp(prefix=prefix)}/rehab.db")
    reset_schema(engine)
    return engine
