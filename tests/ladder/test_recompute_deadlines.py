"""A new calendar decree moves the open deadlines: recomputed from their anchors, audited
old → new, timers replaced (298-п Порядок п.11: 5 working days)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

import calendars
from engine.clock import DbClock
from engine.recompute import recompute_open_deadlines
from engine.routes import EngineConfig
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Step
from models.timers import CalendarStamp, Timer, TimerKind, TimerStatus
from tests.ladder.conftest import new_route, sweep

EXTRA_DAY = """

[years.2025]
status = "approved"
source = "Тестовый региональный закон"
days = [{ date = 2025-03-06, name = "Тестовый нерабочий день" }]
"""


@pytest.fixture
def new_decree(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """After the test: the shipped data directory again, and the caches re-read."""
    yield
    monkeypatch.undo()
    calendars.reload_data()


def _apply_decree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from calendars.data_files import DATA_DIR_ENV, data_dir

    target = tmp_path / "calendar-data"
    shutil.copytree(data_dir(), target)
    region = target / "regions" / "39-kaliningrad.toml"
    region.write_text(region.read_text("utf-8") + EXTRA_DAY, "utf-8")
    monkeypatch.setenv(DATA_DIR_ENV, str(target))
    calendars.reload_data()


def _step0(db: Engine, route_id: str) -> Step:
    with Session(db) as s:
        return s.exec(select(Step).where(Step.route_id == route_id, Step.seq == 0)).one()


def test_sweeper_recomputes_when_calendar_data_changes(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, new_decree: None,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])  # received Mon 03.03.2025
    assert str(_step0(db, route_id).answer_by_date) == "2025-03-10"
    first = sweep(db, clock, cfg)
    assert first.recomputed == 0  # stamped; nothing moved
    assert sweep(db, clock, cfg).recomputed is None  # same data: nothing to do
    old_version = calendars.data_version()

    _apply_decree(tmp_path, monkeypatch)
    assert calendars.data_version() != old_version
    result = sweep(db, clock, cfg)
    assert result.recomputed == 1
    step = _step0(db, route_id)
    assert str(step.answer_by_date) == "2025-03-11"  # 06.03 is now a day off
    with Session(db) as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "deadline_recomputed")).one()
        stamp = s.get(CalendarStamp, 1)
        pending = list(s.exec(select(Timer).where(Timer.step_id == step.id,
                                                  Timer.status == TimerStatus.pending)
                              .order_by(col(Timer.due_at))))
    assert ev.before is not None and ev.after is not None
    assert ev.before["answer_by"] == "2025-03-10" and ev.after["answer_by"] == "2025-03-11"
    assert ev.reason is not None and "calendar data changed" in ev.reason
    assert stamp is not None and stamp.data_version == calendars.data_version()
    assert [(t.kind, str(t.due_date)) for t in pending] == [
        (TimerKind.answer_reminder, "2025-03-10"),
        (TimerKind.answer_overdue, "2025-03-11"),
        (TimerKind.answer_escalation, "2025-03-13"),
    ]
    assert len({t.deadline_version for t in pending}) == 1
    assert pending[0].deadline_version > 0


def test_recompute_without_change_moves_nothing(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
) -> None:
    new_route(db, clock, cfg, seeded[0])
    with Session(db) as s:
        assert recompute_open_deadlines(s, cfg, now=clock.now(), reason="проверка") == 0
        s.commit()
