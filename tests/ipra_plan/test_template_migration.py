"""Migrating running routes to a new template version: a mapping of old steps to new, a dry
run listing route by route what would change, then the migration — one transaction per
route, audited (``migrated``, from/to version), idempotent. Tested with an early_help v2 in
a temporary templates directory: a step renamed, one dropped, one added."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

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
from models.agencies import AgencyRequest, RequestState
from models.persons import Person
from models.routes import CancelNotice, Route, Step, StepStatus
from models.template_files import TEMPLATE_DIR, TemplateSpec, load_templates
from models.template_migration import MappingError, parse_mapping
from models.templates import _data_template
from tests.conftest import kaliningrad
from tests.ipra_plan.conftest import answer
from tests.ladder.conftest import audits, new_route, receive_inbox

V2 = '''
code = "early_help"
version = 2
title = "Ранняя помощь детям и их семьям"
basis = "003 п.1, п.6, п.9, п.10"

[[steps]]
kind = "child_identified"
role = "health"
requested = "Выявление ребенка целевой группы"
basis = "003 п.1"

[[steps]]
kind = "need_registered"
role = "social_policy"
requested = "Учет ребенка как нуждающегося в ранней помощи"
basis = "003 п.9"
depends_on = ["child_identified"]

[[steps]]
kind = "provider_referral"
role = "provider"
requested = "Направление к поставщику ранней помощи"
basis = "003 п.6"
depends_on = ["need_registered"]

[[steps]]
kind = "services_recorded"
role = "social_policy"
requested = "Учет получивших услуги ранней помощи"
basis = "003 п.9"
depends_on = ["provider_referral"]

[[steps]]
kind = "family_informed"
role = "provider"
requested = "Информирование семьи о результатах ранней помощи"
basis = "003 п.9"
depends_on = ["services_recorded"]
'''
MAPPING = '''
[steps]
need_recorded = "need_registered"
individual_programme = ""
'''
NOW = kaliningrad(2026, 1, 12, 10, 0)
runner = CliRunner()


@pytest.fixture
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[dict[int, TemplateSpec]]:
    for f in TEMPLATE_DIR.glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "early_help-v2.toml").write_text(V2, encoding="utf-8")
    loaded = load_templates(tmp_path)
    monkeypatch.setattr(template_files, "templates", lambda: loaded)
    _data_template.cache_clear()
    yield loaded["early_help"]
    _data_template.cache_clear()


def _steps(db: Engine, route_id: str) -> list[Step]:
    with Session(db) as s:
        return list(s.exec(select(Step).where(Step.route_id == route_id)
                           .order_by(col(Step.seq))))


def _three_routes(db: Engine, clock: DbClock, cfg: EngineConfig,
                  people: list[Person]) -> list[str]:
    """A fresh route; one whose dropped step is open; one whose dropped step is done."""
    ids = [new_route(db, clock, cfg, p, template="early_help", template_version=1, at=NOW)
           for p in people]
    for route_id, done in zip(ids[1:], (3, 4), strict=True):
        for i in range(done):
            answer(db, clock, cfg, _steps(db, route_id)[i])
    return ids


def test_dry_run_lists_exactly_what_the_migration_does_audited_and_idempotent(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        versions: dict[int, TemplateSpec]) -> None:
    fresh, dropped_open, dropped_done = _three_routes(db, clock, cfg, seeded)
    open_request = _steps(db, dropped_open)[3].current_request_id
    mapping = parse_mapping(MAPPING)
    with Session(db) as s:
        dry = plan_migration(s, code="early_help", versions=versions, to_version=2,
                             mapping=mapping)
    assert [m.route_id for m in dry] == sorted([fresh, dropped_open, dropped_done])
    by = {m.route_id: m for m in dry}
    assert by[fresh].kept == (("child_identified", "child_identified"),
                              ("need_recorded", "need_registered"),
                              ("provider_referral", "provider_referral"),
                              ("services_recorded", "services_recorded"))
    assert by[fresh].added == ("family_informed",)
    # a dropped step not yet done is closed, never sent (a planned one too)
    assert (by[fresh].cancelled, by[fresh].retired) == (("individual_programme",), ())
    assert by[dropped_open].cancelled == ("individual_programme",)
    assert by[dropped_done].retired == ("individual_programme",)
    # nothing changed yet
    with Session(db) as s:
        assert {r.template_version for r in s.exec(select(Route))} == {1}
    done = []
    for m in dry:
        with Session(db) as s:
            got = migrate_route(s, cfg, route_id=m.route_id, code="early_help",
                                versions=versions, to_version=2, mapping=mapping,
                                now=clock.now(), actor="cli:test")
            s.commit()
        assert got == m  # the migration does what the dry run said
        done.append(got)
    for m in dry:
        [rec] = audits(db, entity="route", action="migrated", route_id=m.route_id)
        assert rec.before == {"template_version": 1}
        assert rec.after == {"template_version": 2, **m.as_dict()}
    # the steps in v2's order, then the retired one
    assert [(x.kind, x.status) for x in _steps(db, fresh)] == [
        ("child_identified", StepStatus.awaiting), ("need_registered", StepStatus.planned),
        ("provider_referral", StepStatus.planned), ("services_recorded", StepStatus.planned),
        ("family_informed", StepStatus.planned),
        ("individual_programme", StepStatus.cancelled)]
    after_open = {x.kind: x for x in _steps(db, dropped_open)}
    assert after_open["individual_programme"].status is StepStatus.cancelled
    # goes on at once: its request prepared, in the agency's inbox until received
    assert after_open["services_recorded"].status is StepStatus.sending
    assert after_open["services_recorded"].current_request_id is not None
    with Session(db) as s:
        req = s.get(AgencyRequest, open_request)
        assert req is not None and req.state is RequestState.cancelled
        assert s.exec(select(CancelNotice).where(CancelNotice.request_id == open_request)
                      ).one().agency_id == req.agency_id
    after_done = {x.kind: x for x in _steps(db, dropped_done)}
    assert after_done["individual_programme"].status is StepStatus.answered
    assert after_done["individual_programme"].seq == 5
    # idempotent: nothing left to migrate, a second migration of a route does nothing
    with Session(db) as s:
        assert plan_migration(s, code="early_help", versions=versions, to_version=2,
                              mapping=mapping) == []
        assert migrate_route(s, cfg, route_id=fresh, code="early_help", versions=versions,
                             to_version=2, mapping=mapping, now=clock.now()) is None
        s.commit()
    assert len(audits(db, entity="route", action="migrated")) == 3


def test_a_migrated_route_runs_to_completion_on_the_new_version(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        versions: dict[int, TemplateSpec]) -> None:
    """After the migration the route goes on by v2's steps (the renamed one, the added one)
    and completes; the dropped step is never sent."""
    route_id = new_route(db, clock, cfg, seeded[0], template="early_help",
                         template_version=1, at=NOW)
    with Session(db) as s:
        migrate_route(s, cfg, route_id=route_id, code="early_help", versions=versions,
                      to_version=2, mapping=parse_mapping(MAPPING), now=clock.now())
        s.commit()
    answered = []
    for _ in range(6):
        receive_inbox(db, clock, cfg, route_id)  # the agency opens its inbox
        open_ = [x for x in _steps(db, route_id) if x.status is StepStatus.awaiting]
        if not open_:
            break
        answered.append(open_[0].kind)
        answer(db, clock, cfg, open_[0])
    assert answered == ["child_identified", "need_registered", "provider_referral",
                        "services_recorded", "family_informed"]
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status.value == "completed"
        steps = list(s.exec(select(Step).where(Step.kind == "individual_programme",
                                               Step.route_id == route_id)))
        assert [(x.status, x.current_request_id) for x in steps] == [
            (StepStatus.cancelled, None)]


@pytest.mark.parametrize(("text", "rule"), [
    ('[steps]\nno_such = "need_registered"', "steps.no_such: not a step of early_help"),
    ('[steps]\nneed_recorded = "no_such"', "steps.need_recorded: 'no_such' is not a step"),
    ('[steps]\nneed_recorded = "provider_referral"',
     "steps.need_recorded: 'provider_referral' is addressed to provider"),
    ('[steps]\nchild_identified = "need_registered"\nneed_recorded = "need_registered"',
     "steps.child_identified: 'need_registered' is addressed to social_policy"),
])
def test_a_bad_mapping_is_refused_naming_the_step(
        db: Engine, seeded: list[Person], versions: dict[int, TemplateSpec], text: str,
        rule: str) -> None:
    with Session(db) as s, pytest.raises(MappingError) as err:
        plan_migration(s, code="early_help", versions=versions, to_version=2,
                       mapping=parse_mapping(text))
    assert str(err.value).startswith(rule)


def test_cli_dry_run_then_apply(db: Engine, db_url: str, clock: DbClock, cfg: EngineConfig,
                                seeded: list[Person], versions: dict[int, TemplateSpec],
                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "false")
    monkeypatch.setattr(cli_templates, "templates", template_files.templates)
    get_settings.cache_clear()
    route_id = new_route(db, clock, cfg, seeded[0], template="early_help",
                         template_version=1, at=NOW)
    mapping = tmp_path / "early_help-v1-v2.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    try:
        dry = runner.invoke(template_app, ["migrate", "early_help", "--to", "2",
                                           "--mapping", str(mapping), "--dry-run"])
        assert dry.exit_code == 0, dry.output
        [line] = [json.loads(x) for x in dry.stdout.splitlines()]
        assert (line["applied"], line["route_id"], line["added"]) == (
            False, route_id, ["family_informed"])
        applied = runner.invoke(template_app, ["migrate", "early_help", "--to", "2",
                                               "--mapping", str(mapping), "--apply"])
        assert applied.exit_code == 0, applied.output
        [done] = [json.loads(x) for x in applied.stdout.splitlines()]
        assert {**done, "applied": False} == line
        again = runner.invoke(template_app, ["migrate", "early_help", "--to", "2",
                                             "--mapping", str(mapping), "--apply"])
        assert again.exit_code == 0 and again.stdout == ""
        neither = runner.invoke(template_app, ["migrate", "early_help", "--to", "2"])
        assert neither.exit_code == 2 and "--dry-run or --apply" in neither.output
    finally:
        get_settings.cache_clear()
