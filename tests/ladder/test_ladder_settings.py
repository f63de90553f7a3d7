"""Ladder timings: refused when invalid (a clear error naming the field, at start-up rather
than in every route), and configurable per route template and per step kind."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig
from models.agencies import AgencyRole
from models.persons import Person
from models.templates import TEMPLATES, Ladder, LadderError, RouteTemplate, StepTemplate
from models.timers import Timer, TimerKind, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, new_route, step_of


@pytest.mark.parametrize(("field", "value"), [
    ("escalate_after_days", 0), ("escalate_after_days", -1), ("reminder_days_before", -1),
])
def test_settings_refuse_invalid_ladder_timings(field: str, value: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(**{field: value})  # type: ignore[arg-type]
    assert field in str(err.value)
    monkeypatch.setenv(f"REHAB_{field.upper()}", str(value))
    with pytest.raises(ValidationError, match=field):
        Settings()


def test_settings_accept_the_edges() -> None:
    s = Settings(reminder_days_before=0, escalate_after_days=1)
    assert EngineConfig.from_settings(s).default_ladder == Ladder(0, 1)


@pytest.mark.parametrize(("args", "field"), [
    ((1, 0), "escalate_after_days"), ((1, -3), "escalate_after_days"),
    ((-1, 2), "reminder_days_before"), ((1, True), "escalate_after_days"),
    ((1.5, 2), "reminder_days_before"),
])
def test_ladder_refuses_invalid_timings_naming_the_field(args: tuple[object, object],
                                                         field: str) -> None:
    with pytest.raises(LadderError, match=rf"^ladder\.{field}: must be a whole number"):
        Ladder(*args)  # type: ignore[arg-type]


def test_step_template_refuses_a_bad_deadline() -> None:
    with pytest.raises(ValueError, match=r"^deadline_days: must be a whole number"):
        StepTemplate(kind="x", role=AgencyRole.health, requested="x", basis="x",
                     deadline_days=0)


def _pending(db: Engine, step_id: str) -> list[tuple[TimerKind, date]]:
    with Session(db) as s:
        return [(t.kind, t.due_date) for t in s.exec(
            select(Timer).where(Timer.step_id == step_id, Timer.status == TimerStatus.pending)
            .order_by(col(Timer.due_at)))]


def test_ladder_per_template_and_per_step_kind(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = RouteTemplate(
        code="ladder_test", title="Проверка", basis="298-п п.16", ladder=Ladder(2, 3),
        steps=(
            StepTemplate(kind="need_assessment", role=AgencyRole.social_policy,
                         requested="Оценка", basis="298-п п.9", ladder=Ladder(0, 1)),
            StepTemplate(kind="medical_check", role=AgencyRole.health, requested="Сведения",
                         basis="298-п п.6"),
        ))
    monkeypatch.setitem(TEMPLATES, template.code, template)
    default = next(t for t in TEMPLATES.values() if t.ladder is None)
    assert default.ladder_for(0, cfg.default_ladder) == cfg.default_ladder == Ladder(1, 2)

    # received Wed 30.04.2025, answer by 13.05 (the May holidays)
    route_id = new_route(db, clock, cfg, seeded[0], template=template.code,
                         at=kaliningrad(2025, 4, 30, 10, 0))
    s0 = step_of(db, route_id, 0)
    # the step's own ladder: no reminder, level 2 one working day after the deadline
    assert _pending(db, s0.id) == [(TimerKind.answer_overdue, date(2025, 5, 13)),
                                   (TimerKind.answer_escalation, date(2025, 5, 14))]
    # the next step (received 05.05, answer by 14.05) has the template's: 2 before, 3 after
    from tests.ladder.test_supervisor_api import _answer

    clock.freeze(kaliningrad(2025, 5, 5, 10, 0))
    _answer(db, clock, cfg, route_id, 0)
    s1 = step_of(db, route_id, 1)
    assert s1.answer_by_date == date(2025, 5, 14)
    assert _pending(db, s1.id) == [(TimerKind.answer_reminder, date(2025, 5, 12)),
                                   (TimerKind.answer_overdue, date(2025, 5, 14)),
                                   (TimerKind.answer_escalation, date(2025, 5, 19))]
