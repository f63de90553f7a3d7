"""A recurring check (001 Регламент п.6 пп.8: health monitoring every 60 working days) through
the route's life, on the moved clock: a refusal holds the next occurrence — nothing goes out
to the refused participant (004 п.11) — and its resume opens it; a consent withdrawal and
resume keeps it recurring; a termination or the supervisor's cancel of the route leaves no
next check; a step that can no longer open does not stall the sweeper; a calendar data
change recomputes the next check's timer once."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

import calendars
from engine.infra.clock import DbClock
from engine.routes.ipra_term import local_day
from engine.routes.template_migration import migrate_route
from engine.routes.transitions import EngineConfig
from models import template_files
from models.audit import AuditEvent
from models.route_life import ParticipantRefusal
from models.routes import Route, RouteStatus, StepStatus
from models.suspension import StepSuspension
from models.template_files import TEMPLATE_DIR, TemplateSpec, load_templates
from models.template_migration import RouteMigration, parse_mapping
from models.templates import _data_template
from models.timers import Timer, TimerKind, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, sweep
from tests.person_file.conftest import apply_with_ipra, consent
from tests.person_file.test_recurring_steps import (
    OPEN,
    PERIOD,
    _answer,
    _health_open,
    _next_check,
    _requests,
    _steps,
)
from tests.person_file.test_resume_and_purge import NEW_CONSENT


def _between_checks(api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
                    staff: dict[str, Staff]) -> tuple[str, str, Timer]:
    """A social-employment route whose health check was answered: its next one pending."""
    route_id = _health_open(api, db, clock, cfg, staff)
    step = _steps(db, route_id)["health_monitoring"]
    _answer(db, clock, cfg, step)
    timer = _next_check(db, step.id)
    assert timer is not None
    return route_id, step.id, timer


def _second_check_opens(db: Engine, clock: DbClock, cfg: EngineConfig, route_id: str,
                        kind: str, timer: Timer) -> None:
    """At ``timer``'s due time the sweeper opens the step's second check: a new request."""
    clock.freeze(timer.due_at)
    assert sweep(db, clock, cfg).fired.get("recur_next") == 1
    step = _steps(db, route_id)[kind]
    assert step.status in OPEN and step.id == timer.step_id
    assert len(_requests(db, step.id)) == 2


def _today(clock: DbClock) -> str:
    return local_day(clock.now(), "39").isoformat()


def _route_status(db: Engine, route_id: str) -> RouteStatus:
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None
        return route.status


def test_a_refusal_holds_the_next_check_and_the_resume_opens_it(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id, step_id, timer = _between_checks(api, db, clock, cfg, staff)
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"agency_id": None, "application_date": _today(clock)})
    assert r.status_code == 200, r.text
    assert step_id not in r.json()["steps_paused"]  # answered: between its checks
    clock.freeze(timer.due_at)
    assert sweep(db, clock, cfg).fired.get("recur_next") == 1
    # 004 п.11: nothing goes out to the refused participant; the check waits, paused
    assert len(_requests(db, step_id)) == 1
    assert _steps(db, route_id)["health_monitoring"].status is StepStatus.paused
    with Session(db) as s:
        refusal = s.exec(select(ParticipantRefusal)
                         .where(ParticipantRefusal.route_id == route_id)).one()
        row = s.exec(select(StepSuspension).where(StepSuspension.step_id == step_id)).one()
        assert (row.status, row.refusal_id, row.resumed_at) == ("planned", refusal.id, None)
    clock.advance_working_days(PERIOD + 1)
    sweep(db, clock, cfg)
    assert len(_requests(db, step_id)) == 1  # still nothing while refused
    r = api.post(f"/api/routes/{route_id}/resume-participant", headers=coord.headers,
                 json={"agency_id": None, "application_date": _today(clock)})
    assert r.status_code == 200, r.text
    assert _steps(db, route_id)["health_monitoring"].status in OPEN
    reqs = _requests(db, step_id)
    assert len(reqs) == 2 and reqs[0].idempotency_key != reqs[1].idempotency_key


def test_a_consent_resume_schedules_the_next_check_again(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id, step_id, timer = _between_checks(api, db, clock, cfg, staff)
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None
        person_id = route.person_id
    assert api.post(f"/api/persons/{person_id}/consent/withdraw",
                    headers=coord.headers).status_code == 200
    assert _next_check(db, step_id) is None  # the suspension stopped it
    clock.freeze(kaliningrad(2026, 2, 2, 10))  # three weeks later: a new consent
    assert api.post(f"/api/persons/{person_id}/consent", headers=coord.headers,
                    json={"consent": consent(**NEW_CONSENT)}).status_code == 201
    r = api.post(f"/api/routes/{route_id}/resume", headers=coord.headers)
    assert r.status_code == 200, r.text
    again = _next_check(db, step_id)
    assert again is not None and (again.due_at, again.due_date) == (timer.due_at,
                                                                    timer.due_date)
    _second_check_opens(db, clock, cfg, route_id, "health_monitoring", again)


def test_a_termination_leaves_no_next_check(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id, step_id, timer = _between_checks(api, db, clock, cfg, staff)
    r = api.post(f"/api/routes/{route_id}/terminate", headers=staff["coord39"].headers,
                 json={"application_date": _today(clock)})
    assert r.status_code == 200, r.text
    assert _next_check(db, step_id) is None
    with Session(db) as s:
        t = s.get(Timer, timer.id)
        assert t is not None and t.status is TimerStatus.cancelled
    clock.freeze(timer.due_at)
    assert sweep(db, clock, cfg).fired.get("recur_next", 0) == 0


def test_the_supervisors_cancel_of_the_route_leaves_no_next_check(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id, step_id, _ = _between_checks(api, db, clock, cfg, staff)
    mandatory = _steps(db, route_id)["conditions_created"]
    r = api.post(f"/api/supervisor/steps/{mandatory.id}/close", headers=staff["sup39"].headers,
                 json={"reason": "маршрут отменён по решению руководителя",
                       "cancel_route": True})
    assert r.status_code == 200, r.text
    assert _route_status(db, route_id) is RouteStatus.cancelled
    assert _next_check(db, step_id) is None


def test_a_check_that_can_no_longer_open_is_stale_and_the_batch_goes_on(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """An EngineError opening one occurrence (here the step it waits for is open again, as
    a migration's new order can make it) cancels that timer as stale in a savepoint; the
    other timers of the batch fire and the next sweep has nothing left of it."""
    first, step_id, timer = _between_checks(api, db, clock, cfg, staff)
    with db.begin() as conn:  # the step it waits for (001 Регламент п.16) is open again
        conn.execute(text("UPDATE step SET status = 'awaiting' WHERE route_id = :r "
                          "AND kind = 'need_determined'"), {"r": first})
    clock.freeze(timer.due_at)
    result = sweep(db, clock, cfg)
    assert result.stale >= 1 and result.busy == 0
    with Session(db) as s:
        t = s.get(Timer, timer.id)
        assert t is not None and t.status is TimerStatus.cancelled
        assert t.cancelled_reason is not None and "cannot start before" in t.cancelled_reason
        assert s.exec(select(Timer).where(Timer.status == TimerStatus.pending,
                                          Timer.due_at <= clock.now())).first() is None
    assert len(_requests(db, step_id)) == 1
    assert _steps(db, first)["health_monitoring"].status is StepStatus.answered


def test_a_calendar_data_change_recomputes_the_next_check_once(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id, step_id, timer = _between_checks(api, db, clock, cfg, staff)
    want = (timer.due_at, timer.due_date)
    with db.begin() as conn:  # as a process with other calendar data computed it
        conn.execute(text("UPDATE timer SET calendar_version = 'other', due_at = :d "
                          "WHERE id = :t"), {"t": timer.id, "d": timer.due_at + timedelta(days=1)})
    assert sweep(db, clock, cfg).recomputed == 1
    again = _next_check(db, step_id)
    assert again is not None and (again.due_at, again.due_date) == want
    assert again.calendar_version == calendars.data_version()
    assert sweep(db, clock, cfg).recomputed is None  # current now: nothing to do
    with Session(db) as s:
        assert len(s.exec(select(AuditEvent).where(
            AuditEvent.action == "deadlines_recomputed")).all()) == 1
        assert len(s.exec(select(AuditEvent).where(
            AuditEvent.action == "recurrence_recomputed")).all()) == 1
    assert _route_status(db, route_id) is RouteStatus.active
    assert again.kind is TimerKind.recur_next


def _v3(tmp_path: Path, edit: Callable[[str], str]) -> dict[int, TemplateSpec]:
    """supported_living v3: v2 (the newest published, which a route is formed on) with
    ``edit`` applied to its text."""
    for f in TEMPLATE_DIR.glob("*.toml"):
        shutil.copy(f, tmp_path / f.name)
    v2 = (TEMPLATE_DIR / "supported_living-v2.toml").read_text("utf-8")
    (tmp_path / "supported_living-v3.toml").write_text(
        edit(v2).replace("version = 2", "version = 3", 1), "utf-8")
    return load_templates(tmp_path)["supported_living"]


_MONITORING = '[[steps]]\nkind = "need_monitoring"'


def _without_need_monitoring(v2: str) -> str:
    head, rest = v2.split(_MONITORING, 1)
    return head + rest[rest.index("[[steps]]"):]


def _monitoring_every(days: int) -> Callable[[str], str]:
    def edit(v2: str) -> str:
        head, rest = v2.split(_MONITORING, 1)
        assert "period_days = 247" in rest.split("[[steps]]", 1)[0]
        return head + _MONITORING + rest.replace("period_days = 247",
                                                 f"period_days = {days}", 1)
    return edit


@pytest.fixture
def publish(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[int, TemplateSpec]],
                                                                  None]]:
    """Publish supported_living's versions (a v3) for the test; the cache cleared after."""
    def go(versions: dict[int, TemplateSpec]) -> None:
        monkeypatch.setattr(template_files, "templates",
                            lambda: {**template_files.load_templates(TEMPLATE_DIR),
                                     "supported_living": versions})
        _data_template.cache_clear()

    yield go
    _data_template.cache_clear()


def _monitoring_between_checks(api: TestClient, db: Engine, clock: DbClock,
                               cfg: EngineConfig, staff: dict[str, Staff],
                               ) -> tuple[str, str, Timer]:
    """A supported-living route whose need monitoring (000 п.10) was answered: its next
    check pending."""
    coord = staff["coord39"]
    route_id = apply_with_ipra(api, coord.headers, "supported_living")
    _answer(db, clock, cfg, _steps(db, route_id)["need_assessment"])
    monitoring = _steps(db, route_id)["need_monitoring"]
    _answer(db, clock, cfg, monitoring)
    timer = _next_check(db, monitoring.id)
    assert timer is not None and timer.working_days == 247
    return route_id, monitoring.id, timer


def _migrate(db: Engine, clock: DbClock, cfg: EngineConfig, route_id: str,
             versions: dict[int, TemplateSpec], mapping: str = "") -> RouteMigration:
    with Session(db) as s:
        got = migrate_route(s, cfg, route_id=route_id, code="supported_living",
                            versions=versions, to_version=3, mapping=parse_mapping(mapping),
                            now=clock.now())
        s.commit()
    assert got is not None
    return got


def test_a_migration_retiring_a_recurring_step_drops_its_next_check(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], tmp_path: Path,
        publish: Callable[[dict[int, TemplateSpec]], None]) -> None:
    route_id, monitoring_id, timer = _monitoring_between_checks(api, db, clock, cfg, staff)
    versions = _v3(tmp_path, _without_need_monitoring)
    publish(versions)
    got = _migrate(db, clock, cfg, route_id, versions, '[steps]\nneed_monitoring = ""\n')
    assert got.retired == ("need_monitoring",)
    assert _next_check(db, monitoring_id) is None
    with db.begin() as conn:  # one left pending all the same (written alongside)
        conn.execute(text("UPDATE timer SET status = 'pending' WHERE id = :t"),
                     {"t": timer.id})
    clock.freeze(timer.due_at)
    result = sweep(db, clock, cfg)
    assert result.fired.get("recur_next", 0) == 0 and result.stale == 1
    with Session(db) as s:
        t = s.get(Timer, timer.id)
        assert t is not None and t.status is TimerStatus.cancelled
        assert t.cancelled_reason == "stale: template step need_monitoring does not recur"
    assert _steps(db, route_id)["need_monitoring"].status is StepStatus.answered
    assert len(_requests(db, monitoring_id)) == 1


def test_a_migration_changing_the_period_moves_the_next_check(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], tmp_path: Path,
        publish: Callable[[dict[int, TemplateSpec]], None]) -> None:
    """000 п.10: the need monitoring between its checks, migrated to a version that asks
    every 120 working days instead of 247: the pending check is replaced by one 120 working
    days after the current occurrence opened (audited), and it fires then."""
    route_id, monitoring_id, old = _monitoring_between_checks(api, db, clock, cfg, staff)
    versions = _v3(tmp_path, _monitoring_every(120))
    publish(versions)
    assert _migrate(db, clock, cfg, route_id, versions).checks_redated == ("need_monitoring",)
    new = _next_check(db, monitoring_id)
    ready = _steps(db, route_id)["need_monitoring"].ready_at
    assert new is not None and new.id != old.id and ready is not None
    want = calendars.deadline(ready, 120, "39")
    assert (new.due_at, new.due_date, new.working_days) == (want.due_at, want.due_date, 120)
    with Session(db) as s:
        was = s.get(Timer, old.id)
        assert was is not None and was.status is TimerStatus.cancelled
        scheduled = s.exec(select(AuditEvent).where(
            AuditEvent.entity_id == monitoring_id,
            AuditEvent.action == "recurrence_scheduled")).all()
    assert [e.after["period_days"] for e in scheduled if e.after] == [247, 120]
    _second_check_opens(db, clock, cfg, route_id, "need_monitoring", new)


def test_a_migration_keeping_the_period_keeps_the_next_check(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], tmp_path: Path,
        publish: Callable[[dict[int, TemplateSpec]], None]) -> None:
    route_id, monitoring_id, old = _monitoring_between_checks(api, db, clock, cfg, staff)
    versions = _v3(tmp_path, _monitoring_every(247))
    publish(versions)
    assert _migrate(db, clock, cfg, route_id, versions).checks_redated == ()
    new = _next_check(db, monitoring_id)
    assert new is not None and new.id == old.id
