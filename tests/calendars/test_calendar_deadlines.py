"""The deadline rule (298-п п.10–12; Civil Code art. 191, 193; Labour Code art. 95, 112)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calendars import (
    CalendarError,
    Deadline,
    UnknownRegionError,
    YearOutOfRangeError,
    deadline,
    working_days_late,
)

KGD = ZoneInfo("Europe/Kaliningrad")
MSK = ZoneInfo("Europe/Moscow")
UTC = UTC


def test_issue_example_new_year() -> None:
    sent = deadline(datetime(2025, 12, 30, 10, 0, tzinfo=KGD), 1)
    assert sent.due_date == date(2026, 1, 12)
    assert sent.region == "39" and sent.timezone == "Europe/Kaliningrad"
    assert sent.due_at == datetime(2026, 1, 12, 22, 0, tzinfo=UTC)  # 13 Jan 00:00 UTC+2
    assert sent.display() == "12.01.2026"
    assert not sent.provisional
    answered = deadline(datetime(2026, 1, 12, 9, 0, tzinfo=KGD), 5)
    assert answered.due_date == date(2026, 1, 19)
    assert answered.display() == "19.01.2026"


def test_event_at_2330_kaliningrad_counts_from_next_day() -> None:
    # 23:30 in Kaliningrad is already the next day in Moscow/UTC+3 but the local date counts.
    event = datetime(2025, 3, 5, 23, 30, tzinfo=KGD)  # Wednesday
    assert deadline(event, 1).due_date == date(2025, 3, 6)
    assert deadline(event, 2).due_date == date(2025, 3, 7)  # shortened day is a full day
    assert deadline(event, 3).due_date == date(2025, 3, 10)  # 8 Mar Sat, 9 Sun, 10 Mon work
    # the same instant given in UTC gives the same answer
    assert deadline(event.astimezone(UTC), 1) == deadline(event, 1)


def test_event_instant_in_other_zone_uses_acting_party_zone() -> None:
    # 23:30 Moscow on Thu 6 Mar 2025 is 22:30 Kaliningrad: same local date in both.
    # 00:30 Moscow on Fri 7 Mar is 23:30 Thu in Kaliningrad.
    event = datetime(2025, 3, 7, 0, 30, tzinfo=MSK)
    assert deadline(event, 1, region="39").due_date == date(2025, 3, 7)
    assert deadline(event, 1, region="77").due_date == date(2025, 3, 10)


def test_event_on_day_off() -> None:
    # registered on Saturday 8 Mar 2025 (holiday on a weekend): counting starts on Sunday.
    event = datetime(2025, 3, 8, 12, 0, tzinfo=KGD)
    assert deadline(event, 1).due_date == date(2025, 3, 10)
    # registered on New Year's Day
    assert deadline(datetime(2026, 1, 1, 8, 0, tzinfo=KGD), 1).due_date == date(2026, 1, 12)


def test_event_on_working_saturday() -> None:
    event = datetime(2025, 11, 1, 15, 0, tzinfo=KGD)  # working (shortened) Saturday
    assert deadline(event, 1).due_date == date(2025, 11, 5)  # 2 Sun, 3 transfer, 4 holiday
    # a working Saturday is itself a deadline day
    assert deadline(datetime(2025, 10, 31, 9, 0, tzinfo=KGD), 1).due_date == date(2025, 11, 1)


def test_across_new_year_2024_2025() -> None:
    event = datetime(2024, 12, 27, 17, 0, tzinfo=KGD)  # Friday
    d = deadline(event, 1)
    assert d.due_date == date(2024, 12, 28)  # working Saturday
    assert deadline(event, 2).due_date == date(2025, 1, 9)


def test_due_at_is_exclusive_end_of_day() -> None:
    d = deadline(datetime(2026, 1, 12, 9, 0, tzinfo=KGD), 5)
    assert d.due_at.tzinfo is not None and d.due_at.utcoffset() == timedelta(0)
    just_before = d.due_at - timedelta(microseconds=1)
    assert just_before.astimezone(KGD).date() == d.due_date
    assert d.due_at.astimezone(KGD) == datetime(2026, 1, 20, 0, 0, tzinfo=KGD)


def test_regional_zone_yekaterinburg() -> None:
    d = deadline(datetime(2025, 6, 4, 20, 0, tzinfo=UTC), 1, region="02")  # 5 Jun 01:00 UTC+5
    assert d.timezone == "Asia/Yekaterinburg"
    assert d.due_date == date(2025, 6, 9)  # 6 Jun Kurban Bayram in Bashkortostan, 7–8 weekend
    assert d.due_at == datetime(2025, 6, 9, 19, 0, tzinfo=UTC)


def test_provisional_deadline() -> None:
    d = deadline(datetime(2027, 12, 29, 10, 0, tzinfo=KGD), 3)
    assert d.due_date.year == 2028
    assert d.provisional
    assert d.display().endswith(" (предварительно)")
    assert not deadline(datetime(2027, 12, 1, 10, 0, tzinfo=KGD), 3).provisional


def test_deadline_errors() -> None:
    with pytest.raises(CalendarError, match="event_at"):
        deadline(datetime(2025, 1, 1, 10, 0), 1)
    with pytest.raises(CalendarError, match="working_days"):
        deadline(datetime(2025, 1, 1, 10, 0, tzinfo=KGD), 0)
    with pytest.raises(UnknownRegionError):
        deadline(datetime(2025, 1, 1, 10, 0, tzinfo=KGD), 1, region="99")
    with pytest.raises(YearOutOfRangeError):
        deadline(datetime(2100, 12, 31, 10, 0, tzinfo=KGD), 1)


def test_working_days_late() -> None:
    due = deadline(datetime(2026, 1, 12, 9, 0, tzinfo=KGD), 5)  # 19 Jan 2026
    assert working_days_late(due, datetime(2026, 1, 19, 23, 59, tzinfo=KGD)) == 0
    assert working_days_late(due, due.due_at) == 1  # 20 Jan 00:00 local
    assert working_days_late(due, datetime(2026, 1, 23, 12, 0, tzinfo=KGD)) == 4
    assert working_days_late(due, datetime(2026, 1, 25, 12, 0, tzinfo=KGD)) == 4  # Sunday
    assert working_days_late(due, datetime(2026, 1, 26, 0, 0, tzinfo=KGD)) == 5
    assert working_days_late(due, datetime(2026, 1, 1, 12, 0, tzinfo=KGD)) == 0
    with pytest.raises(CalendarError, match="at"):
        working_days_late(due, datetime(2026, 1, 23, 12, 0))


def test_deadline_is_frozen() -> None:
    d = deadline(datetime(2026, 1, 12, 9, 0, tzinfo=KGD), 5)
    assert isinstance(d, Deadline)
    with pytest.raises(AttributeError):
        d.due_date = date(2026, 1, 1)  # type: ignore[misc]
