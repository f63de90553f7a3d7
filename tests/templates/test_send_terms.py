"""Which send and answer term applies: the template's own (a number in its file) is kept in
every region; a term it leaves to the region ("region") is the act of the route's region —
its file, else the default region's (298-п Порядок п.10, п.11). Explicit, never inferred
from a value: before, a template term equal to Kaliningrad's 1 day was silently replaced in
a region with its own file (issue 11: "make it a template setting rather than a silent
assumption")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig, register_application
from models import regions
from models.routes import Step, StepStatus
from models.template_files import (
    ENV_DIR,
    TemplateFileError,
    describe,
    latest,
    parse_template,
    reload_templates,
)
from models.templates import _data_template
from sim.seed import make_persons, seed_agencies
from tests.conftest import kaliningrad
from tests.ipra_plan.conftest import answer
from tests.ladder.conftest import receive_request

# A test-only template: the first request and the answers by the region's act, a later
# step 1 working day (the template's own, equal to Kaliningrad's: kept in region 16 too),
# the third step 3 working days to send and 7 to answer (its own).
PROBE = """
code = "terms_probe"
version = 1
title = "Проба сроков"
basis = "001 Порядок п.10, п.11"

[terms]
first_send_days = "region"
later_send_days = 1
answer_days = "region"
basis = "001 Порядок п.10, п.11 (по акту региона) — следующие шаги: 1 рабочий день"

[[steps]]
kind = "first"
role = "social_policy"
requested = "Сведения первого шага"
basis = "001 Порядок п.9"

[[steps]]
kind = "second"
role = "social_policy"
requested = "Сведения второго шага"
basis = "001 Порядок п.9"
depends_on = ["first"]

[[steps]]
kind = "third"
role = "social_policy"
requested = "Сведения третьего шага"
basis = "001 Порядок п.9"
depends_on = ["second"]
send_days = 3
answer_days = 7
"""


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          second_region: Path) -> Iterator[None]:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "terms_probe-v1.toml").write_text(PROBE, encoding="utf-8")
    monkeypatch.setenv(ENV_DIR, str(templates))
    reload_templates()
    _data_template.cache_clear()
    yield
    monkeypatch.delenv(ENV_DIR)
    reload_templates()
    _data_template.cache_clear()


def test_the_precedence_is_explicit_not_by_value(probe: None) -> None:
    # a number is the template's own in every region, whatever its value
    assert regions.send_days("16", 1) == 1 and regions.send_days("39", 3) == 3
    assert regions.answer_days("16", 5) == 5
    # "region" (None) is the route's region's act, else the default region's
    assert (regions.send_days("16", None), regions.answer_days("16", None)) == (2, 10)
    assert (regions.send_days("39", None), regions.answer_days("39", None)) == (1, 5)
    assert (regions.send_days("02", None), regions.answer_days("02", None)) == (1, 5)
    t = latest("terms_probe")
    assert [(s.send_days, s.answer_days) for s in t.steps] == [(None, None), (1, None),
                                                                (3, 7)]
    shown = "\n".join(describe(t))
    assert "первый запрос по акту региона от регистрации, следующие 1 р.д." in shown
    assert "отправка 3 р.д., ответ 7 р.д." in shown


@pytest.mark.parametrize("value", ["regional", 0, True, 1.5])
def test_a_term_is_a_number_or_region(value: object) -> None:
    doc = {"code": "toy", "version": 1, "title": "Проба", "basis": "004 п.10",
           "terms": {"later_send_days": value, "basis": "001 Порядок п.10"},
           "steps": [{"kind": "a", "role": "mse", "requested": "Сведения", "basis": "004 п.6"}]}
    with pytest.raises(TemplateFileError, match=r"later_send_days: must be a whole number >= 1 "
                                                r"\(the template's own term\) or \"region\""):
        parse_template(doc, "toy-v1.toml")


def _step(db: Engine, route_id: str, kind: str) -> Step:
    with Session(db) as s:
        return s.exec(select(Step).where(Step.route_id == route_id, Step.kind == kind)
                      .order_by(col(Step.seq))).one()


def _run(db: Engine, clock: DbClock, cfg: EngineConfig, region: str, seed: int,
         ) -> list[tuple[date | None, date | None, object]]:
    """(send by, answer by, the body's answer term) of each step, each step answered on
    the day it was received."""
    clock.freeze(kaliningrad(2025, 3, 3, 10, 0))  # Monday
    with Session(db, expire_on_commit=False) as s:
        if region != "39":
            seed_agencies(s, region=region)
        person = make_persons(s, 1, region=region, seed=seed)[0]
        route = register_application(s, cfg, now=clock.now(), person_id=person.id,
                                     template_code="terms_probe", template_version=1,
                                     coordinator_id=None, region=region)
        s.commit()
    out = []
    for kind in ("first", "second", "third"):
        step = _step(db, route.id, kind)
        assert step.current_request_id is not None, (kind, step.status)
        body = receive_request(db, clock, cfg, step)
        received = _step(db, route.id, kind)
        assert received.status is StepStatus.awaiting, (kind, received.status)
        out.append((step.send_by_date, received.answer_by_date,
                    body["answer_within_working_days"]))
        answer(db, clock, cfg, received)
    return out


def test_a_later_step_keeps_the_templates_term_where_the_region_has_its_own(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: object, probe: None) -> None:
    """Mon 03.03.2025 10:00. Kaliningrad (298-п): the first request by Tue 04.03, answered
    by 10.03 (4, 5, 6, 7, 10). Region 16 by its file: the first by 05.03 (2 days), answered
    in 10 (4–7, 10–14, 17.03). The second step (later_send_days = 1, the template's) by
    04.03 in both — not the region's 2 days; its answer is the region's. The third: 3 days
    to send (06.03) and 7 to answer (12.03) in both."""
    assert _run(db, clock, cfg, "39", 3901) == [
        (date(2025, 3, 4), date(2025, 3, 10), 5),
        (date(2025, 3, 4), date(2025, 3, 10), 5),
        (date(2025, 3, 6), date(2025, 3, 12), 7)]
    assert _run(db, clock, cfg, "16", 1601) == [
        (date(2025, 3, 5), date(2025, 3, 17), 10),
        (date(2025, 3, 4), date(2025, 3, 17), 10),
        (date(2025, 3, 6), date(2025, 3, 12), 7)]
