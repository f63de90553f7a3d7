"""The schema the migrations build is the schema the models describe (on SQLite and, with
REHAB_TEST_DATABASE_URL, on PostgreSQL): a model change without its migration fails here."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from engine.infra.db import make_engine, migrate
from engine.infra.settings import PROJECT_ROOT


def test_migrations_match_the_models(db: Engine) -> None:
    with db.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_stored_request_bodies_lose_the_subject(tmp_path: Path) -> None:
    """Migration 0007: personal data stays in ``person`` (152-ФЗ); stored bodies keep
    identifiers only."""
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    eng = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    eng.dispose()
    body = {"task_id": "tk_1", "route_id": "rt_1",
            "subject": {"snils": "112-233-445 95", "full_name": "Синтетиков Иван",
                        "birth_date": "1990-05-01"}}
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO agency_request (id, step_id, agency_id, idempotency_key, "
                    "channel, state, body, attempts, created_at) VALUES ('tk_1', 'st', 'ag', "
                    "'tk_1', 'http', 'queued', ?, 0, '2025-03-03 08:00:00')",
                    (json.dumps(body, ensure_ascii=False),))
    eng = make_engine(url)
    migrate(eng)
    with eng.connect() as conn:
        stored = conn.exec_driver_sql("SELECT body FROM agency_request").scalar_one()
    eng.dispose()
    kept = json.loads(stored) if isinstance(stored, str) else stored
    assert kept == {"task_id": "tk_1", "route_id": "rt_1"}
