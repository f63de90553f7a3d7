"""A new calendar decree moves the open deadlines: recomputed from their anchors, audited
old → new, timers replaced (298-п Порядок п.11: 5 working days)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

import calendars
from engine.infra.clock import DbClock
from engine.routes.recompute import recompute_open_deadlines
from engine.routes.transitions import EngineConfig
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Step
from models.timers import CalendarStamp, EscalationStatus, Timer, TimerKind, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, audits, escalations, new_route, sweep

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


def _restore_shipped_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from calendars.data_files import DATA_DIR_ENV

    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    calendars.reload_data()


def test_decree_moving_a_passed_deadline_later_resolves_its_open_escalations(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, new_decree: None, staff: dict[str, Staff],
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])  # answer by Mon 10.03.2025
    clock.freeze(kaliningrad(2025, 3, 11, 0, 0, 30))
    assert sweep(db, clock, cfg).total_fired == 2  # reminder and overdue
    assert {int(e.level) for e in escalations(db, route_id)} == {0, 1}

    _apply_decree(tmp_path, monkeypatch)  # 06.03 off: the answer is due 11.03, not past
    assert sweep(db, clock, cfg).recomputed == 1
    rows = escalations(db, route_id)
    assert {e.status for e in rows} == {EscalationStatus.resolved}
    assert all(e.resolution and e.resolution.startswith("deadline moved to 11.03.2025")
               for e in rows)
    evs = [e for e in audits(db, route_id=route_id) if e.action == "resolved_by_recompute"]
    assert len(evs) == 2
    assert all(e.reason and e.reason.startswith("calendar data changed") for e in evs)

    clock.freeze(kaliningrad(2025, 3, 12, 0, 0, 30))  # the new deadline passes
    assert sweep(db, clock, cfg).fired == {"answer_overdue": 1}
    open_ = [e for e in escalations(db, route_id) if e.status is EscalationStatus.open]
    assert [(int(e.level), str(e.due_date)) for e in open_] == [(1, "2025-03-11")]


def test_timers_of_a_process_with_old_calendar_data_are_recomputed_by_the_sweeper(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, new_decree: None,
) -> None:
    from calendars.data_files import DATA_DIR_ENV

    old_version = calendars.data_version()
    _apply_decree(tmp_path, monkeypatch)
    new_version = calendars.data_version()
    assert sweep(db, clock, cfg).recomputed == 0  # the sweeper applied the decree: stamped
    decree_dir = tmp_path / "calendar-data"

    # a worker that has not re-read the files still counts with the old data
    _restore_shipped_data(monkeypatch)
    route_id = new_route(db, clock, cfg, seeded[0])
    step = _step0(db, route_id)
    assert str(step.answer_by_date) == "2025-03-10"
    with Session(db) as s:
        versions = {t.calendar_version for t in s.exec(select(Timer).where(
            Timer.step_id == step.id, Timer.status == TimerStatus.pending))}
        assert versions == {old_version}
    monkeypatch.setenv(DATA_DIR_ENV, str(decree_dir))  # the files on disk are the new ones

    result = sweep(db, clock, cfg)
    assert result.recomputed == 1
    assert calendars.data_version() == new_version  # the sweeper re-read the files
    step = _step0(db, route_id)
    assert str(step.answer_by_date) == "2025-03-11"
    with Session(db) as s:
        pending = list(s.exec(select(Timer).where(Timer.step_id == step.id,
                                                  Timer.status == TimerStatus.pending)))
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "deadline_recomputed")
                    .order_by(col(AuditEvent.id).desc())).first()
        stamp = s.get(CalendarStamp, 1)
    assert {t.calendar_version for t in pending} == {new_version}
    assert ev is not None and ev.reason is not None
    assert ev.reason.startswith("timers computed with other calendar data")
    assert stamp is not None and stamp.data_version == new_version
    assert sweep(db, clock, cfg).recomputed is None  # all current now


def test_unchanged_timers_of_other_data_are_only_restamped(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])
    step = _step0(db, route_id)
    assert sweep(db, clock, cfg).recomputed == 0
    with db.begin() as conn:  # as written by a process of another (equivalent) data version
        conn.execute(text("UPDATE timer SET calendar_version = 'other' WHERE step_id = :s"),
                     {"s": step.id})
    assert sweep(db, clock, cfg).recomputed == 0
    with Session(db) as s:
        pending = list(s.exec(select(Timer).where(Timer.step_id == step.id,
                                                  Timer.status == TimerStatus.pending)))
        assert {t.calendar_version for t in pending} == {calendars.data_version()}
        assert {t.deadline_version for t in pending} == {1}  # not replaced
        assert s.exec(select(AuditEvent).where(
            AuditEvent.action == "deadline_recomputed")).first() is None


def test_cli_recompute_with_a_reason_takes_the_stamp_and_records_the_reason(
    db_url: str, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from cli.routes import routes_app
    from engine.infra.settings import get_settings

    new_route(db, clock, cfg, seeded[0])
    with Session(db) as s:
        assert s.get(CalendarStamp, 1) is None
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(routes_app, ["calendar-recompute", "--reason",
                                            "Постановление № 1466 от 24.09.2025"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    assert "deadlines moved: 0" in r.output
    with Session(db) as s:
        stamp = s.get(CalendarStamp, 1)
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "deadlines_recomputed")).one()
    assert stamp is not None and stamp.data_version == calendars.data_version()
    assert stamp.computed_at == clock.now()
    assert ev.reason == "Постановление № 1466 от 24.09.2025"
