"""A route registered before the data templates (version 0, the built-in three-step template)
migrates to a data version like any other: the dry run lists it, the migration moves it —
its open step carried on by the mapped step —, audited (``migrated``, from version 0)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli import templates as cli_templates
from cli.templates import template_app
from engine.infra.clock import DbClock
from engine.infra.settings import get_settings
from engine.routes.template_migration import migrate_route, plan_migration
from engine.routes.transitions import EngineConfig
from models import template_files
from models.persons import Person
from models.routes import Route, Step, StepStatus
from models.template_migration import MappingError, builtin_spec
from tests.conftest import kaliningrad
from tests.ipra_plan.conftest import answer
from tests.ladder.conftest import audits, new_route

NOW = kaliningrad(2026, 1, 12, 10, 0)
# 001 Регламент п.16: the v0 steps carried on by the six actions' first two and the monitoring
MAPPING: dict[str, str | None] = {"need_assessment": "need_determined",
                                  "employment_conditions": "conditions_created"}


def _steps(db: Engine, route_id: str) -> list[Step]:
    with Session(db) as s:
        return list(s.exec(select(Step).where(Step.route_id == route_id)
                           .order_by(col(Step.seq))))


def test_a_running_v0_route_is_listed_by_the_dry_run_then_migrated_with_its_open_step(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    route_id = new_route(db, clock, cfg, seeded[0], template="social_employment", at=NOW)
    answer(db, clock, cfg, _steps(db, route_id)[0])  # need assessed: health monitoring open
    # (its request waits in the agency's inbox)
    v0 = _steps(db, route_id)
    assert [(x.kind, x.status) for x in v0] == [
        ("need_assessment", StepStatus.answered), ("health_monitoring", StepStatus.sending),
        ("employment_conditions", StepStatus.planned)]
    open_request = v0[1].current_request_id
    versions = template_files.templates()["social_employment"]
    with Session(db) as s:
        [dry] = plan_migration(s, code="social_employment", versions=versions, to_version=1,
                               mapping=MAPPING)
    assert (dry.route_id, dry.from_version, dry.to_version) == (route_id, 0, 1)
    assert dry.kept == (("need_assessment", "need_determined"),
                        ("health_monitoring", "health_monitoring"),
                        ("employment_conditions", "conditions_created"))
    assert dry.added == ("services_provided", "sport", "culture", "person_recorded",
                         "services_recorded", "satisfaction_monitored")
    assert (dry.cancelled, dry.retired) == ((), ())
    with Session(db) as s:  # the dry run wrote nothing
        route = s.get(Route, route_id)
        assert route is not None and route.template_version == 0
    with Session(db) as s:
        got = migrate_route(s, cfg, route_id=route_id, code="social_employment",
                            versions=versions, to_version=1, mapping=MAPPING,
                            now=clock.now(), actor="cli:test")
        s.commit()
    assert got == dry
    [rec] = audits(db, entity="route", action="migrated", route_id=route_id)
    assert rec.before == {"template_version": 0}
    assert rec.after == {"template_version": 1, **dry.as_dict()}
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.template_version == 1
    after = {x.kind: x for x in _steps(db, route_id)}
    assert [x.kind for x in _steps(db, route_id)] == [
        "need_determined", "conditions_created", "health_monitoring", "services_provided",
        "sport", "culture", "person_recorded", "services_recorded", "satisfaction_monitored"]
    assert after["need_determined"].status is StepStatus.answered
    # the open step goes on as the mapped one: the same request, still in the inbox
    assert after["health_monitoring"].status is StepStatus.sending
    assert after["health_monitoring"].current_request_id == open_request
    # what waited for the need now starts, in v1's order (001 Регламент п.16)
    assert after["conditions_created"].status is StepStatus.sending
    assert after["services_provided"].status is StepStatus.planned
    with Session(db) as s:  # nothing left to migrate
        assert plan_migration(s, code="social_employment", versions=versions,
                              to_version=1, mapping=MAPPING) == []


def test_a_v0_step_mapped_to_a_step_of_another_role_is_refused(
        db: Engine, seeded: list[Person]) -> None:
    with Session(db) as s, pytest.raises(MappingError, match="keeps its participant role"):
        plan_migration(s, code="social_employment",
                       versions=template_files.templates()["social_employment"],
                       to_version=1, mapping={"health_monitoring": "need_determined"})
    spec = builtin_spec("social_employment")
    assert spec is not None and spec.version == 0
    assert builtin_spec("early_help") is None  # early help never had a built-in template


def test_cli_dry_run_lists_a_v0_route(db: Engine, db_url: str, clock: DbClock,
                                      cfg: EngineConfig, seeded: list[Person],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "false")
    monkeypatch.setattr(cli_templates, "templates", template_files.templates)
    get_settings.cache_clear()
    route_id = new_route(db, clock, cfg, seeded[0], template="supported_living", at=NOW)
    try:
        dry = CliRunner().invoke(template_app, ["migrate", "supported_living", "--to", "1",
                                                "--map", "medical_check=",
                                                "--map", "training_placement=", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        [line] = [json.loads(x) for x in dry.stdout.splitlines()]
        assert (line["applied"], line["route_id"], line["from_version"]) == (
            False, route_id, 0)
        assert line["kept"] == [["need_assessment", "need_assessment"]]
        assert line["cancelled"] == ["medical_check", "training_placement"]
    finally:
        get_settings.cache_clear()
