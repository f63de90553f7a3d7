"""An agency in another region and time zone: Bashkortostan (02, Asia/Yekaterinburg, UTC+5,
Kaliningrad + 3 h). Its answer deadline follows its own calendar (Курбан-байрам, Fri
06.06.2025, is a day off there, not in Kaliningrad) and its reminder comes at 09:00 of its
local time (298-п Порядок п.11: 5 working days in the agency's region)."""

from __future__ import annotations

from datetime import date, datetime

import pendulum
from sqlalchemy import Engine
from sqlmodel import Session

import calendars
from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from models.timers import EscalationLevel
from sim.seed import make_persons, seed_agencies
from tests.ladder.conftest import Staff, escalations, new_route, step_of, sweep

TZ = "Asia/Yekaterinburg"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
          second: int = 0) -> datetime:
    return pendulum.datetime(year, month, day, hour, minute, second, tz=TZ)


def test_bashkortostan_agency_is_reminded_at_nine_local_on_its_own_working_days(
    db: Engine, clock: DbClock, cfg: EngineConfig, staff: dict[str, Staff],
) -> None:
    with Session(db, expire_on_commit=False) as s:
        seed_agencies(s, region="02")
        person = make_persons(s, 1, region="02", seed=1402)[0]
        s.commit()
    # received (inbox) Wed 04.06.2025 10:00 local: 05.06 (1), 09.06 (2), 10.06 (3),
    # 11.06 (4), 16.06 (5) — 06.06 Курбан-байрам (02 only), 12.06 and 13.06 (federal: Russia
    # Day and the day off transferred from 08.03) are off; in Kaliningrad it would be 11.06
    route_id = new_route(db, clock, cfg, person, at=local(2025, 6, 4, 10, 0), region="02",
                         coordinator_id=None)
    step = step_of(db, route_id)
    assert step.agency_id == "msp02" and step.answer_by_date == date(2025, 6, 16)
    assert step.answer_by == local(2025, 6, 17, 0, 0)
    assert calendars.deadline(local(2025, 6, 4, 10, 0), 5, "39").due_date == date(2025, 6, 11)

    seen: dict[int, datetime] = {}
    for day in (9, 10, 11, 13, 16, 17, 18, 19):
        for hour, minute in ((0, 0), (8, 59), (9, 0)):
            clock.freeze(local(2025, 6, day, hour, minute, 30))
            sweep(db, clock, cfg)
            for esc in escalations(db, route_id):
                seen.setdefault(int(esc.level),
                                pendulum.instance(esc.opened_at).in_timezone(TZ))
    assert seen == {
        EscalationLevel.reminder: local(2025, 6, 11, 9, 0, 30),  # 1 working day before
        EscalationLevel.overdue: local(2025, 6, 17, 0, 0, 30),
        EscalationLevel.escalated: local(2025, 6, 19, 0, 0, 30),  # 17.06, 18.06 passed
    }
    assert {e.region for e in escalations(db, route_id)} == {"02"}
