"""Time travel through the holidays: an agency that never answers goes reminder → overdue
→ escalated on the right working days (298-п Порядок п.11: 5 working days; the ladder:
1 working day before, at the deadline, 2 working days after)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pendulum
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from models.notifications import Channel, Notification
from models.persons import Person
from models.routes import Step
from models.timers import EscalationLevel
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, escalations, new_route, sweep

TZ = "Europe/Kaliningrad"


def _walk(db: Engine, clock: DbClock, cfg: EngineConfig, route_id: str,
          start: date, days: int) -> dict[int, datetime]:
    """Move the clock through ``days`` local days (just after midnight and 09:00), sweeping
    each time; return when (local clock) each ladder level was first reached."""
    seen: dict[int, datetime] = {}
    for i in range(days):
        day = start + timedelta(days=i)
        for hour in (0, 9):
            clock.freeze(pendulum.datetime(day.year, day.month, day.day, hour, 0, 30, tz=TZ))
            sweep(db, clock, cfg)
            for esc in escalations(db, route_id):
                if int(esc.level) not in seen:
                    seen[int(esc.level)] = pendulum.instance(esc.opened_at).in_timezone(TZ)
    return seen


def _answer_by(db: Engine, route_id: str) -> date | None:
    with Session(db) as s:
        step = s.exec(select(Step).where(Step.route_id == route_id, Step.seq == 0)).one()
        return step.answer_by_date


@pytest.mark.parametrize(
    ("registered", "deadline", "reminder", "overdue", "escalated"),
    [
        # New Year 2025/2026: 31.12.2025 (transfer from 05.01.2025) and 01–11.01.2026 are off;
        # received Mon 29.12 → 30.12 (1), 12.01 (2), 13.01 (3), 14.01 (4), 15.01 (5).
        (kaliningrad(2025, 12, 29, 10, 0), date(2026, 1, 15),
         datetime(2026, 1, 14, 9, 0), datetime(2026, 1, 16, 0, 0), datetime(2026, 1, 20, 0, 0)),
        # May 2025: 01–04.05 and 08–11.05 off (02.05 and 08.05 are transferred days off);
        # received Wed 30.04 → 05.05 (1), 06.05 (2), 07.05 (3), 12.05 (4), 13.05 (5).
        (kaliningrad(2025, 4, 30, 10, 0), date(2025, 5, 13),
         datetime(2025, 5, 12, 9, 0), datetime(2025, 5, 14, 0, 0), datetime(2025, 5, 16, 0, 0)),
    ],
    ids=["new-year-2026", "may-2025"],
)
def test_silent_agency_climbs_the_ladder_on_working_days(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], registered: datetime, deadline: date, reminder: datetime,
    overdue: datetime, escalated: datetime,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0], at=registered)
    assert _answer_by(db, route_id) == deadline
    start = pendulum.instance(registered).in_timezone(TZ).date()
    seen = _walk(db, clock, cfg, route_id, start, 30)

    def local(dt: datetime) -> datetime:
        return pendulum.datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, 30, tz=TZ)

    assert seen == {
        EscalationLevel.reminder: local(reminder),
        EscalationLevel.overdue: local(overdue),
        EscalationLevel.escalated: local(escalated),
    }
    # each level once, each with the deadline it is about
    rows = escalations(db, route_id)
    assert sorted(int(e.level) for e in rows) == [0, 1, 2]
    assert {e.due_date for e in rows} == {deadline}
    with Session(db) as s:
        notes = list(s.exec(select(Notification).where(Notification.route_id == route_id)
                            .order_by(col(Notification.id))))
    by_recipient = {n.recipient: n for n in notes}
    # level 0: the agency (no e-mail: its portal inbox); level 1: the route's coordinator;
    # level 2: the region's supervisor (sup39; sup16 is another region's)
    assert set(by_recipient) == {"agency:msp39", "coord39@example.org", "sup39@example.org"}
    assert by_recipient["agency:msp39"].channel is Channel.portal
    assert f"истекает {deadline:%d.%m.%Y}" in by_recipient["agency:msp39"].subject
    assert "Просрочен" in by_recipient["coord39@example.org"].subject
    assert "Эскалация" in by_recipient["sup39@example.org"].subject
    for n in notes:  # identifiers only: no name, no SNILS
        assert seeded[0].full_name not in n.body and seeded[0].snils not in n.body


def test_level_2_waits_for_the_configured_working_days(
    db: Engine, clock: DbClock, seeded: list[Person], staff: dict[str, Staff],
) -> None:
    from models.templates import Ladder

    cfg = EngineConfig(sender_region="39", public_base_url="http://127.0.0.1:9",
                       default_ladder=Ladder(reminder_days_before=2, escalate_after_days=3),
                       mirror=False)
    route_id = new_route(db, clock, cfg, seeded[0], at=kaliningrad(2025, 4, 30, 10, 0))
    seen = _walk(db, clock, cfg, route_id, date(2025, 4, 30), 20)
    assert seen[EscalationLevel.reminder].date() == date(2025, 5, 7)  # 2 wd before 13.05
    assert seen[EscalationLevel.overdue].date() == date(2025, 5, 14)
    # 14, 15, 16 pass: at the end of Friday 16.05 (local midnight starting 17.05)
    assert seen[EscalationLevel.escalated].date() == date(2025, 5, 17)
