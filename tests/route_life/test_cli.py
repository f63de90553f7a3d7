"""``rehab route refuse|resume-participant|terminate|receipt`` (004 п.11–13; 298-п Порядок
п.11): the same use cases from the command line, JSON out, ``error: <field>: <rule>`` and
exit 2 on a refusal."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from engine.infra.clock import DbClock
from engine.infra.settings import get_settings
from models.routes import RouteStatus, StepStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff
from tests.route_life.conftest import register, request_of, route, steps


def test_the_route_life_commands(api: TestClient, db_url: str, db: Engine, clock: DbClock,
                                 staff: dict[str, Staff],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "false")
    get_settings.cache_clear()
    try:
        route_id = register(api, staff["coord39"])
        sfr = steps(db, route_id)["sfr_tsr_consulting"]
        cli = CliRunner()
        r = cli.invoke(app, ["route", "receipt", request_of(db, sfr).id])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["answer_by_date"] == "2026-01-19"

        clock.freeze(kaliningrad(2026, 1, 14, 10))
        bad = cli.invoke(app, ["route", "refuse", route_id, "--application-date", "14.01.2026"])
        assert bad.exit_code == 2 and "application_date: must be a date" in bad.output
        r = cli.invoke(app, ["route", "refuse", route_id, "--application-date", "2026-01-14",
                             "--agency", sfr.agency_id or ""])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["steps_paused"] == [sfr.id]
        assert steps(db, route_id)["sfr_tsr_consulting"].status is StepStatus.paused
        r = cli.invoke(app, ["route", "resume-participant", route_id,
                             "--application-date", "2026-01-14"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["steps"] == [sfr.id]
        r = cli.invoke(app, ["route", "terminate", route_id, "--application-date", "2026-01-14"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["reason"] == "person_request"
        assert route(db, route_id).status is RouteStatus.terminated
        again = cli.invoke(app, ["route", "terminate", route_id,
                                 "--application-date", "2026-01-14"])
        assert again.exit_code == 2 and "error: route:" in again.output
    finally:
        get_settings.cache_clear()
