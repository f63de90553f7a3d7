"""Operations: production settings, the clock control (admin only, never backwards, never in
production), the route overview page (identifiers only; provisional and overdue marks) and
the start-up check of the schema."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

import calendars
from api.app import create_app
from cli.main import app as cli_app
from engine.infra.clock import DbClock
from engine.infra.db import SchemaNotAtHeadError, make_engine, migrate, require_schema_at_head
from engine.infra.settings import PROJECT_ROOT, Settings, get_settings
from engine.routes.transitions import EngineConfig, register_application
from engine.staff.accounts import create_staff
from models.agencies import Agency
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Step
from tests.api.conftest import Snapshot
from tests.conftest import PG_URL, kaliningrad

PROD: dict[str, Any] = {
    "environment": "production", "allow_clock_control": False,
    "admin_token": "a-real-admin-token", "public_base_url": "https://rehab.example",
    "database_url": "postgresql+psycopg://rehab@db/rehab",
}
ADMIN = "adm-7c1f0e9b2a"


# ------------------------------------------------------------------ settings
def test_production_settings_accept_a_complete_configuration() -> None:
    Settings(**PROD)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"public_base_url": ""}, "public_base_url"),
        ({"public_base_url": "   "}, "public_base_url"),
        ({"database_url": ""}, "database_url"),
        ({"database_url": "sqlite:////var/lib/rehab.db"}, "database_url"),
        ({"admin_token": "change-me"}, "admin_token"),
        ({"allow_clock_control": True}, "allow_clock_control"),
    ],
)
def test_production_refuses_incomplete_settings(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field}:"):
        Settings(**{**PROD, **change})
    Settings(**{**PROD, **change, "environment": "development"})  # fine elsewhere


@pytest.mark.parametrize("field", [
    "webhook_tolerance_seconds", "webhook_max_body_bytes", "send_timeout_seconds",
    "send_backoff_base_seconds", "send_backoff_max_seconds", "job_lease_seconds",
    "worker_batch_size", "worker_txn_answers", "worker_concurrency", "worker_idle_poll_seconds",
    "notify_max_attempts", "notify_backoff_base_seconds", "notify_backoff_max_seconds",
    "api_port", "smtp_port",
])
def test_counts_and_intervals_must_be_positive(field: str) -> None:
    for bad in (0, -1):
        values: dict[str, Any] = {field: bad}
        with pytest.raises(ValidationError, match=field):
            Settings(**values)


def test_every_setting_is_documented() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert missing == []


# ------------------------------------------------------------------ the clock control
@pytest.fixture
def ops(db: Engine, clock: DbClock) -> tuple[TestClient, dict[str, str]]:
    with Session(db) as s:
        _, coord = create_staff(s, id="coord39", display_name="К", role="coordinator",
                                region="39")
        _, admin = create_staff(s, id="admin39", display_name="А", role="admin", region="39")
        s.commit()
    settings = Settings(environment="test", prefect_mirror=False, admin_token=ADMIN)
    return (TestClient(create_app(db, settings=settings, clock=clock)),
            {"coord": coord, "admin": admin, "builtin": ADMIN})


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_clock_moves_forward_for_an_administrator(ops: tuple[TestClient, dict[str, str]],
                                                  clock: DbClock, db: Engine) -> None:
    client, t = ops
    start = clock.now()
    r = client.post("/api/clock/advance", json={"working_days": 1}, headers=h(t["builtin"]))
    assert r.status_code == 200, r.text
    clock.refresh()
    assert clock.now() == kaliningrad(2025, 3, 4, 10, 0)
    r = client.post("/api/clock/advance", json={"seconds": 60}, headers=h(t["admin"]))
    assert r.status_code == 200, r.text
    clock.refresh()
    assert (clock.now() - start).total_seconds() == 86400 + 60
    with Session(db) as s:
        moves = list(s.exec(select(AuditEvent).where(AuditEvent.entity == "clock")
                            .order_by(col(AuditEvent.id))))
    assert [m.actor for m in moves] == ["admin:builtin", "staff:admin39"]
    r = client.post("/api/clock/advance", json={"working_days": 0}, headers=h(t["admin"]))
    assert r.status_code == 200  # zero moves nothing


@pytest.mark.parametrize(
    ("token", "body", "status", "field"),
    [
        (None, {"working_days": 1}, 401, "authorization"),
        ("nope", {"working_days": 1}, 401, "authorization"),
        ("change-me", {"working_days": 1}, 401, "authorization"),  # the placeholder
        ("coord", {"working_days": 1}, 403, "role"),
        ("builtin", {"working_days": -1}, 422, "working_days"),
        ("builtin", {"seconds": -5}, 422, "seconds"),
        ("builtin", {"seconds": "nan"}, 422, "seconds"),
        ("builtin", {}, 422, "working_days"),
        ("builtin", {"working_days": 1, "seconds": 5}, 422, "working_days"),
        ("builtin", {"working_days": 1, "hours": 5}, 422, "hours"),
        ("builtin", {"working_days": 1, "region": "99"}, 422, "region"),
        ("builtin", {"working_days": 100000}, 422, "working_days"),
        # issue 8: bounded like working_days, and never past the production calendars
        ("builtin", {"seconds": 1e18}, 422, "seconds"),
        ("builtin", {"seconds": 1e10}, 422, "seconds"),
        ("builtin", {"seconds": 10**400}, 422, "seconds"),
        ("builtin", '{"seconds": ' + "9" * 5000 + "}", 400, "body"),
        ("builtin", {"working_days": 2**70}, 422, "working_days"),
    ],
)
def test_clock_control_refusals_change_nothing(
        ops: tuple[TestClient, dict[str, str]], clock: DbClock,
        snapshot: Callable[[], Snapshot], token: str | None, body: dict[str, Any] | str,
        status: int,
        field: str) -> None:
    client, t = ops
    before, at = snapshot(), clock.now()
    headers = h(t.get(token, token)) if token else {}
    raw = body if isinstance(body, str) else json.dumps(body)
    r = client.post("/api/clock/advance", content=raw,
                    headers={**headers, "content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith(f"{field}:"), r.json()
    clock.refresh()
    assert clock.now() == at and snapshot() == before


@pytest.mark.parametrize("body", [{"seconds": 200 * 86400}, {"working_days": 150}])
def test_business_time_never_moves_past_the_calendars(
        ops: tuple[TestClient, dict[str, str]], clock: DbClock,
        snapshot: Callable[[], Snapshot], body: dict[str, Any]) -> None:
    """A move that would leave the production calendars (after which every deadline, and so
    every application, would be refused) is refused itself, naming the last allowed day."""
    client, t = ops
    clock.freeze(kaliningrad(calendars.MAX_YEAR, 6, 1, 10, 0))
    before, at = snapshot(), clock.now()
    r = client.post("/api/clock/advance", json=body, headers=h(t["builtin"]))
    assert r.status_code == 422, r.text
    field = next(iter(body))
    assert r.json()["detail"].startswith(f"{field}: business time must stay within"), r.text
    clock.refresh()
    assert clock.now() == at and snapshot() == before
    r = client.post("/api/clock/advance", json={"working_days": 5}, headers=h(t["builtin"]))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("settings", [
    Settings(environment="test", admin_token=ADMIN, allow_clock_control=False),
    Settings(**PROD),
])
def test_no_clock_control_where_it_is_off(db: Engine, clock: DbClock,
                                          settings: Settings) -> None:
    client = TestClient(create_app(db, settings=settings, clock=clock))
    at = clock.now()
    r = client.post("/api/clock/advance", json={"working_days": 1}, headers=h(ADMIN))
    assert r.status_code in (404, 405)
    assert "/api/clock/advance" not in client.get("/openapi.json").json()["paths"]
    clock.refresh()
    assert clock.now() == at


# ------------------------------------------------------------------ the overview page
@pytest.fixture
def page_route(db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> str:
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
    return route.id


def page(db: Engine, clock: DbClock, query: str = "") -> Any:
    settings = Settings(environment="test", prefect_mirror=False, admin_token=ADMIN)
    return TestClient(create_app(db, settings=settings, clock=clock)).get(f"/{query}")


def test_overview_shows_aggregate_counts_only(db: Engine, clock: DbClock, page_route: str,
                                             seeded: list[Person]) -> None:
    """The page needs no sign-in: no route id, region, agency or person on it (issue 8)."""
    r = page(db, clock)
    assert r.status_code == 200
    assert "в работе: 1" in r.text and "Шагов с истёкшим сроком: 0" in r.text
    with Session(db) as s:
        step = s.exec(select(Step).where(Step.route_id == page_route, Step.seq == 0)).one()
        agency = s.get(Agency, step.agency_id)
        assert agency is not None
    for secret in (page_route, step.id, step.current_request_id or "-", agency.id,
                   agency.short_name, "10.03.2025", "39"):
        assert secret not in r.text
    for p in seeded:
        for secret in (p.full_name, p.full_name.split()[0], p.snils, p.snils[:7], p.id,
                       p.birth_date.isoformat(), f"{p.birth_date:%d.%m.%Y}"):
            assert secret not in r.text


def test_overview_counts_overdue_steps(db: Engine, clock: DbClock, page_route: str) -> None:
    assert "Шагов с истёкшим сроком: 0" in page(db, clock).text
    clock.freeze(kaliningrad(2025, 3, 13, 12, 0))  # the answer was due on 10.03.2025
    assert "Шагов с истёкшим сроком: 1" in page(db, clock).text


# ------------------------------------------------------------------ start-up check
def _alembic(url: str, target: str) -> None:
    eng = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
    eng.dispose()


def test_schema_check(db: Engine, tmp_path: Path) -> None:
    assert require_schema_at_head(db)  # the test database is migrated
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaNotAtHeadError, match=r"has no schema: run `rehab migrate`"):
        require_schema_at_head(empty)
    empty.dispose()
    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    _alembic(old_url, "0002")
    old = make_engine(old_url)
    from alembic.script import ScriptDirectory

    (head,) = ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads()
    with pytest.raises(SchemaNotAtHeadError, match=f"schema is at 0002, needs {head}"):
        require_schema_at_head(old)
    migrate(old)
    require_schema_at_head(old)
    old.dispose()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    monkeypatch.setattr("engine.infra.db._priority_writer", False)  # `rehab api` sets it
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize("command_name", ["api", "worker"])
def test_api_and_worker_refuse_an_unmigrated_schema(
        cli_env: pytest.MonkeyPatch, tmp_path: Path, command_name: str) -> None:
    started: list[str] = []
    cli_env.setattr("uvicorn.run", lambda *a, **k: started.append("api"))
    cli_env.setattr("cli.main.run_worker_forever", lambda *a, **k: started.append("w"))
    url = f"sqlite:///{tmp_path / 'rehab.db'}"
    cli_env.setenv("REHAB_DATABASE_URL", url)
    result = CliRunner().invoke(cli_app, [command_name])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: database: the database has no schema: run `rehab migrate`")
    assert "rehab migrate" in lines[0] and started == []
    assert CliRunner().invoke(cli_app, ["migrate"]).exit_code == 0
    get_settings.cache_clear()
    result = CliRunner().invoke(cli_app, [command_name])
    assert result.exit_code == 0, result.output
    assert started == ["api" if command_name == "api" else "w"]


@pytest.mark.skipif(not PG_URL, reason="production needs PostgreSQL (REHAB_TEST_DATABASE_URL)")
def test_production_worker_refuses_demo_secrets_at_start(
        cli_env: pytest.MonkeyPatch, db: Engine, seeded: list[Person]) -> None:
    for k, v in {"REHAB_ENVIRONMENT": "production", "REHAB_ALLOW_CLOCK_CONTROL": "false",
                 "REHAB_ADMIN_TOKEN": "a-real-admin-token",
                 "REHAB_PUBLIC_BASE_URL": "https://rehab.example",
                 "REHAB_DATABASE_URL": PG_URL}.items():
        cli_env.setenv(k, v)
    get_settings.cache_clear()
    started: list[str] = []
    cli_env.setattr("cli.main.run_worker_forever", lambda *a, **k: started.append("w"))
    result = CliRunner().invoke(cli_app, ["worker"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: agency secrets: mkt39") and started == []


def test_snils_migration_refuses_existing_duplicates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dup.db'}"
    _alembic(url, "0003")
    eng = make_engine(url)
    with eng.begin() as conn:
        for pid in ("pn_1", "pn_2"):
            conn.exec_driver_sql(
                "INSERT INTO person (id, full_name, snils, birth_date, region, synthetic, "
                "created_at) VALUES (?, 'Дубль', '112-233-445 95', '1990-05-01', '39', 1, "
                "'2025-03-03 08:00:00')", (pid,))
    with pytest.raises(RuntimeError, match=r"^person\.snils: 1 SNILS .* merge them"):
        migrate(eng)
    with pytest.raises(SchemaNotAtHeadError, match="schema is at 0003"):
        require_schema_at_head(eng)
    eng.dispose()
