"""`rehab route drive ROUTE_ID`: do one route's due work now."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from engine.infra.clock import DbClock
from engine.infra.settings import get_settings
from engine.routes.transitions import AnswerIn, EngineConfig, record_answer, register_application
from models.agencies import Agency, AnswerOutcome
from models.persons import Person
from models.routes import Step, StepStatus


def test_drive_applies_the_routes_pending_answer(
    db_url: str, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "false")
    get_settings.cache_clear()
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        record_answer(s, agency=agency, webhook_id="d1", now=clock.now(),
                      answer=AnswerIn(step.current_request_id, AnswerOutcome.provided, {}, None))
        s.commit()
    result = CliRunner().invoke(app, ["route", "drive", route.id])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "active"
    with Session(db) as s:
        steps = {x.seq: x.status for x in s.exec(select(Step).where(Step.route_id == route.id))}
    # the next request lies in its (inbox) agency's inbox, awaiting receipt (298-п п.11)
    assert steps[0] is StepStatus.answered and steps[1] is StepStatus.sending
    missing = CliRunner().invoke(app, ["route", "drive", "rt_missing"])
    assert missing.exit_code == 2
