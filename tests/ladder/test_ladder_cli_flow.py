"""The command line (``rehab staff add``, ``rehab route history``, ``calendar-recompute``)
and the Prefect sweeper flow, run against the test database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.routes import routes_app
from cli.staff import staff_app
from engine.infra.clock import DbClock
from engine.infra.settings import get_settings
from engine.routes.transitions import EngineConfig
from models.audit import AuditEvent
from models.persons import Person
from models.staff import StaffUser
from models.timers import Escalation
from tests.conftest import kaliningrad
from tests.ladder.conftest import new_route

runner = CliRunner()


@pytest.fixture
def settings_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_staff_add_prints_token_once_and_stores_its_hash(db: Engine, settings_db: None) -> None:
    r = runner.invoke(staff_app, ["add", "--id", "sup39-a", "--name", "Супервизор",
                                  "--role", "supervisor", "--region", "39"])
    assert r.exit_code == 0, r.output
    token = r.output.split("token (shown once): ")[1].strip()
    with Session(db) as s:
        user = s.get(StaffUser, "sup39-a")
    assert user is not None
    assert user.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in user.token_sha256
    r = runner.invoke(staff_app, ["add", "--id", "x", "--name", "n", "--role", "supervisor",
                                  "--region", "99"])
    assert r.exit_code != 0


def test_route_history_cli_logs_the_read(db: Engine, clock: DbClock, cfg: EngineConfig,
                                         seeded: list[Person], settings_db: None) -> None:
    route_id = new_route(db, clock, cfg, seeded[0], coordinator_id=None)
    r = runner.invoke(routes_app, ["history", route_id])
    assert r.exit_code == 0, r.output
    assert '"action": "registered"' in r.output.splitlines()[0]
    assert seeded[0].snils not in r.output and seeded[0].full_name not in r.output
    with Session(db) as s:
        read = s.exec(select(AuditEvent).where(AuditEvent.action == "read")).one()
    assert read.actor.startswith("cli:") and read.entity_id == route_id
    assert runner.invoke(routes_app, ["history", "rt_nope"]).exit_code == 2
    r = runner.invoke(routes_app, ["calendar-recompute"])
    assert r.exit_code == 0 and "deadlines moved: 0" in r.output


def test_sweeper_flow_fires_due_timers(db: Engine, clock: DbClock, cfg: EngineConfig,
                                       seeded: list[Person], settings_db: None) -> None:
    from flows.sweeper import timer_sweeper

    route_id = new_route(db, clock, cfg, seeded[0])
    clock.freeze(kaliningrad(2025, 3, 20, 10, 0))
    out = timer_sweeper.fn(batch_size=50)  # the flow's body: its final state carries counts
    counts = out if isinstance(out, dict) else out.result()
    assert counts["fired"] == 3 and counts["fired_answer_escalation"] == 1
    with Session(db) as s:
        assert len(list(s.exec(select(Escalation).where(Escalation.route_id == route_id)))) == 3
