"""Database engine and sessions of the system of record (SQLite by default, PostgreSQL in
production). The schema is owned by Alembic migrations (``migrations/``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

import models  # noqa: F401  (registers the tables)
from engine.settings import PROJECT_ROOT, get_settings


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str | None = None, *, read_only: bool = False) -> Engine:
    """An engine for ``url`` (default: the settings' database).

    SQLite: every transaction of a writing engine takes the write lock at BEGIN (IMMEDIATE),
    so that concurrent writers queue on busy_timeout instead of failing on lock upgrade; a
    ``read_only`` engine begins deferred (WAL readers never wait for writers).
    """
    url = url or get_settings().effective_database_url
    if url.startswith("sqlite"):
        eng = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20
        )
        event.listen(eng, "connect", _sqlite_pragmas)
        begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
        event.listen(eng, "begin", lambda conn: conn.exec_driver_sql(begin))

        @event.listens_for(eng, "connect")
        def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return eng
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(engine: Engine) -> Path | None:
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(str(engine.url.database))
