"""Shared fixtures.

The system of record is SQLite by default; set ``REHAB_TEST_DATABASE_URL`` (e.g.
``postgresql+psycopg://root@127.0.0.1:5432/test``) to run every test on PostgreSQL.
Business time is a movable clock: no test sleeps for time to pass.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from engine.infra.clock import DbClock  # noqa: E402
from engine.infra.db import make_engine, migrate  # noqa: E402
from engine.routes.transitions import EngineConfig  # noqa: E402
from models import regions  # noqa: E402
from models.persons import Person  # noqa: E402
from models.templates import Ladder  # noqa: E402
from sim.seed import make_persons, seed_agencies  # noqa: E402
from tasks.prefect_server import PrefectServer  # noqa: E402

PG_URL = os.environ.get("REHAB_TEST_DATABASE_URL", "")


def kaliningrad(*args: int) -> datetime:
    """An aware instant given in Kaliningrad local time (UTC+2)."""
    return pendulum.datetime(*args, tz="Europe/Kaliningrad")  # type: ignore[arg-type]


# A second region for the tests of regions' own acts (models/region_rules): its calendar,
# send and answer terms differ from Kaliningrad's (298-п).
SECOND_REGION = """code = "16"
name = "Республика Татарстан (тестовая настройка)"
calendar = "16"
acts = ["Тестовый акт региона 16"]
send_days = 2
send_basis = "тестовый акт п.1"
answer_days = 10
answer_basis = "тестовый акт п.2"
"""


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    eng = make_engine(f"sqlite:///{path}")
    migrate(eng)
    eng.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_migrated() -> str:
    eng = make_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(eng)
    eng.dispose()
    return PG_URL


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean, migrated database for one test."""
    if PG_URL:
        url: str = request.getfixturevalue("_pg_migrated")
        eng = make_engine(url)
        with eng.begin() as conn:
            names = [r[0] for r in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                "AND tablename <> 'alembic_version'"))]
            if names:
                # the audit log refuses TRUNCATE (migration 0003): only this test cleanup
                # lifts its triggers, inside the same transaction
                conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
                conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
                conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER USER"))
        eng.dispose()
        return url
    template: Path = request.getfixturevalue("_sqlite_template")
    path = tmp_path / "rehab.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock(db: Engine) -> DbClock:
    """Business time frozen at Monday 3 March 2025, 10:00 in Kaliningrad."""
    c = DbClock(db, ttl=0)
    c.freeze(kaliningrad(2025, 3, 3, 10, 0))
    return c


@pytest.fixture
def cfg() -> EngineConfig:
    return EngineConfig(sender_region="39", public_base_url="http://127.0.0.1:9",
                        default_ladder=Ladder(1, 2), mirror=False)


@pytest.fixture
def seeded(db: Engine) -> list[Person]:
    """Kaliningrad participants (all on the inbox channel) and three synthetic persons."""
    with Session(db, expire_on_commit=False) as s:
        seed_agencies(s)
        people = make_persons(s, 3)
        s.commit()
    return people


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect server per test session (SQLite, or REHAB_PREFECT_DATABASE_URL)."""
    home = tmp_path_factory.mktemp("prefect")
    server = PrefectServer(home=Path(home),
                           database_url=os.environ.get("REHAB_PREFECT_DATABASE_URL") or None)
    server.start()
    yield server.api_url
    server.stop()


@pytest.fixture
def second_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The regions' rules directory in force: Kaliningrad's and ``SECOND_REGION`` (16)."""
    rules = tmp_path / "regions"
    rules.mkdir()
    shutil.copy(regions.RULES_DIR / "39.toml", rules / "39.toml")
    (rules / "16.toml").write_text(SECOND_REGION, encoding="utf-8")
    monkeypatch.setenv(regions.ENV_DIR, str(rules))
    regions.reload_rules()
    yield rules
    monkeypatch.delenv(regions.ENV_DIR)
    regions.reload_rules()


def wait_for_lock_wait(db: Engine, timeout: float = 30.0) -> None:
    """Until some transaction of this database waits for a row lock."""
    deadline = time.monotonic() + timeout
    with db.connect() as conn:
        while time.monotonic() < deadline:
            n = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
            conn.commit()
            if n:
                return
            time.sleep(0.01)
    raise AssertionError("no transaction started waiting for a lock")
