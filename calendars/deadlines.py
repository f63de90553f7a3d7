"""The deadline rule: N working days after an event, in the acting party's region and zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import pendulum

from calendars.errors import CalendarError
from calendars.registry import DEFAULT_REGION, data_generation, get_calendar


@dataclass(frozen=True)
class Deadline:
    """A computed deadline.

    ``due_date`` is the last working day (a local date in the acting party's zone);
    ``due_at`` is the aware UTC instant that ends it — local midnight starting the next day — an
    exclusive bound: the step is overdue iff ``now >= due_at``. ``provisional`` is True when any
    day counted rests on provisional calendar data.
    """

    due_date: date
    due_at: datetime
    region: str
    timezone: str
    provisional: bool

    def display(self) -> str:
        """``"19.01.2026"``, with ``" (предварительно)"`` appended when provisional."""
        text = self.due_date.strftime("%d.%m.%Y")
        return f"{text} (предварительно)" if self.provisional else text


def _local_date(at: datetime, tz: str, field: str) -> date:
    if not isinstance(at, datetime):
        raise CalendarError(f"{field}: expected an aware datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise CalendarError(f"{field}: must be timezone-aware (a naive datetime has no instant)")
    local = at.astimezone(_zone(tz))
    return date(local.year, local.month, local.day)


@lru_cache(maxsize=64)
def _zone(tz: str) -> pendulum.Timezone:
    """pendulum's time zone of that name (a tzinfo; built once per name)."""
    zone = pendulum.timezone(tz)
    assert isinstance(zone, pendulum.Timezone)
    return zone


@lru_cache(maxsize=4096)
def _end_of_day_utc(day: date, tz: str) -> datetime:
    nxt = day + timedelta(days=1)
    p = pendulum.datetime(nxt.year, nxt.month, nxt.day, tz=tz).in_timezone("UTC")
    return datetime(p.year, p.month, p.day, p.hour, p.minute, p.second, tzinfo=UTC)


def deadline(event_at: datetime, working_days: int, region: str = DEFAULT_REGION) -> Deadline:
    """The deadline of an act due ``working_days`` working days after ``event_at``.

    Rule: take the event's local date in the time zone of the region of the party that must act;
    the period starts the next day (Civil Code art. 191: a period counted in days begins on the
    day after the event); count ``working_days`` working days in that region's production
    calendar (Labour Code art. 112: non-working holidays and transferred days off; regional
    holidays by regional law; a shortened pre-holiday day, art. 95, is a full working day);
    the deadline is the end of the last counted day in that zone (Civil Code art. 193: a period
    whose last day falls on a day off ends on the next working day — counting only working days
    already lands on one). The time of day of the event does not matter: an event at 23:30
    local time still starts the period the next day.

    Used for interagency requests: prepared and sent within 1 working day of registering the
    application (Government Resolution 298-п, п. 10) and answered within 5 working days
    (298-п, п. 11, п. 12).

    Raises CalendarError for a naive ``event_at`` or ``working_days`` < 1,
    UnknownRegionError, YearOutOfRangeError.
    """
    if isinstance(working_days, bool) or not isinstance(working_days, int) or working_days < 1:
        raise CalendarError(f"working_days: must be an integer >= 1, got {working_days!r}")
    if event_at.tzinfo is None or event_at.utcoffset() is None:
        raise CalendarError("event_at: must be timezone-aware (a naive datetime has no instant)")
    return _deadline(event_at, working_days, region, data_generation())


@lru_cache(maxsize=8192)
def _deadline(event_at: datetime, working_days: int, region: str, _generation: int) -> Deadline:
    """``deadline``, remembered: a route's registration, delivery and ladder ask for the
    same few deadlines again and again (an instant's hash is its UTC instant, whatever its
    zone; the calendar data's reload count is part of the key)."""
    cal = get_calendar(region)
    start = _local_date(event_at, cal.timezone, "event_at")
    due = cal.add_working_days(start, working_days)
    provisional = cal.is_range_provisional(start + timedelta(days=1), due)
    return Deadline(due, _end_of_day_utc(due, cal.timezone), cal.code, cal.timezone, provisional)


def working_days_late(due: Deadline, at: datetime) -> int:
    """Working days late: working days (in ``due.region``) in (due_date, local date of ``at``].

    0 if ``at`` is on time (before ``due.due_at``) and also when it is late only by days off
    (e.g. a Friday deadline checked on Saturday); counted like a period, Civil Code art. 191.
    """
    cal = get_calendar(due.region)
    local = _local_date(at, due.timezone, "at")
    if local <= due.due_date:
        return 0
    return cal.working_days_between(due.due_date, local)
