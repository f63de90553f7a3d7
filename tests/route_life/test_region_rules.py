"""A region's acts and terms are that region's configuration (models/regions.py): a route in
Kaliningrad counts by 298-п (1 working day to send, 5 to answer from receipt); a route in a
second region configured with other terms (a test file: 2 and 10 days, Tatarstan's
calendar) counts by its own. Bad files are refused naming the file, the field and the
rule."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from models import regions
from sim.seed import make_persons, seed_agencies
from tests.conftest import SECOND_REGION as SECOND
from tests.conftest import kaliningrad
from tests.ladder.conftest import new_route, receive_request, step_of


def _route_dates(db: Engine, clock: DbClock, cfg: EngineConfig, region: str,
                 seed: int) -> tuple[date | None, date | None, dict[str, object]]:
    with Session(db, expire_on_commit=False) as s:
        if region != "39":
            seed_agencies(s, region=region)
        person = make_persons(s, 1, region=region, seed=seed)[0]
        s.commit()
    route_id = new_route(db, clock, cfg, person, region=region, coordinator_id=None)
    step = step_of(db, route_id)
    body = receive_request(db, clock, cfg, step)
    got = step_of(db, route_id)
    return step.send_by_date, got.answer_by_date, body


def test_each_region_counts_by_its_own_terms(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: object,
        second_region: Path) -> None:
    at = kaliningrad(2025, 3, 3, 10, 0)  # Monday
    clock.freeze(at)
    # Kaliningrad (298-п): send by Tue 04.03; answer 4, 5, 6, 7, 10 -> 10.03
    send39, answer39, body39 = _route_dates(db, clock, cfg, "39", 3901)
    assert (send39, answer39) == (date(2025, 3, 4), date(2025, 3, 10))
    assert body39["answer_within_working_days"] == 5
    # region 16 by its file: send in 2 (04.03, 05.03); answer in 10 working days
    # (4–7, 10–14 — Sat 08.03 is a holiday on a day off — and 17.03)
    send16, answer16, body16 = _route_dates(db, clock, cfg, "16", 1601)
    assert (send16, answer16) == (date(2025, 3, 5), date(2025, 3, 17))
    assert body16["answer_within_working_days"] == 10
    assert regions.rules_for("16").acts == ("Тестовый акт региона 16",)
    assert regions.rules_for("02").send_days == 1  # no file: the default region's act


def test_a_bad_region_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    shutil.copy(regions.RULES_DIR / "39.toml", tmp_path / "39.toml")
    (tmp_path / "16.toml").write_text(SECOND.replace("answer_days = 10", "answer_days = 0"),
                                      encoding="utf-8")
    with pytest.raises(regions.RegionRulesError,
                       match=r"^16\.toml: answer_days: must be a whole number"):
        regions.load_rules(tmp_path)
    (tmp_path / "16.toml").write_text(SECOND.replace('code = "16"', 'code = "17"'),
                                      encoding="utf-8")
    with pytest.raises(regions.RegionRulesError, match=r"^16\.toml: code: must be"):
        regions.load_rules(tmp_path)
    (tmp_path / "39.toml").unlink()
    (tmp_path / "16.toml").write_text(SECOND, encoding="utf-8")
    with pytest.raises(regions.RegionRulesError, match="39.toml: the default region"):
        regions.load_rules(tmp_path)


def test_the_shipped_default_is_kaliningrads_298p() -> None:
    rules = regions.rules_for("39")
    assert (rules.send_days, rules.answer_days, rules.calendar) == (1, 5, "39")
    assert rules.send_basis == "298-п Порядок п.10"
    assert any("298-п" in act for act in rules.acts)
