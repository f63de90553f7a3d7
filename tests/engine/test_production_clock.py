"""Production time is real time: the business clock is the system clock, and the API, the
worker and the sweeper refuse to start while the database holds a shifted or frozen clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from typer.testing import CliRunner

import engine.infra.settings as settings_mod
from cli.main import app
from engine.infra.clock import (
    ClockNotRealError,
    DbClock,
    SystemClock,
    make_clock,
    require_real_clock,
)
from engine.infra.db import set_write_priority
from engine.infra.settings import Settings, get_settings
from tests.conftest import kaliningrad

runner = CliRunner()


def production() -> Settings:
    """Production settings (built without validation: the tests' database is SQLite)."""
    return Settings.model_construct(environment="production", allow_clock_control=False,
                                    admin_token=SecretStr("s3cret"), clock_cache_seconds=0.05)


def test_production_runs_on_the_system_clock(db: Engine) -> None:
    assert isinstance(make_clock(db, production()), SystemClock)
    assert isinstance(make_clock(db, Settings(environment="test")), DbClock)


@pytest.mark.parametrize("move", ["freeze", "shift"])
def test_a_moved_clock_is_refused_in_production(db: Engine, move: str) -> None:
    clock = DbClock(db, ttl=0)
    if move == "freeze":
        clock.freeze(kaliningrad(2025, 3, 3, 10, 0))
        expected = "clock_state: business time is frozen at 2025-03-03T08:00:00+00:00"
    else:
        clock.advance(timedelta(days=3))
        expected = "clock_state: business time is shifted by +259200 s"
    with pytest.raises(ClockNotRealError, match=re.escape(expected)):
        make_clock(db, production())
    assert isinstance(make_clock(db, Settings(environment="test")), DbClock)


@pytest.mark.parametrize("command", [["worker"], ["sweeper"], ["api"]])
def test_processes_refuse_to_start_on_a_moved_clock(
        db_url: str, db: Engine, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    get_settings.cache_clear()
    DbClock(db, ttl=0).advance(timedelta(hours=1))
    monkeypatch.setattr(settings_mod, "get_settings", production)
    monkeypatch.setattr("cli.main.get_settings", production)  # the command's own name
    try:
        result = runner.invoke(app, command)
    finally:
        get_settings.cache_clear()
        set_write_priority(False)  # `rehab api` makes its process the priority writer
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: clock_state: business time is shifted by +3600 s")
    with pytest.raises(ClockNotRealError):
        require_real_clock(db)
