"""The workalendar interface fed by our data (workalendar's own Russia is wrong 2024–2027)."""

from __future__ import annotations

from datetime import date, datetime

from workalendar.core import Calendar
from workalendar.europe import Russia

from calendars import get_calendar
from calendars.workalendar_compat import ProductionCalendar


def test_is_a_workalendar_calendar() -> None:
    cal = ProductionCalendar()
    assert isinstance(cal, Calendar)
    assert cal.region_calendar is get_calendar("39")


def test_answers_from_our_data() -> None:
    cal = ProductionCalendar()
    assert cal.is_working_day(date(2025, 11, 1))  # working Saturday
    assert not cal.is_working_day(date(2025, 12, 31))
    assert cal.is_holiday(date(2025, 5, 8))
    assert cal.add_working_days(date(2025, 12, 30), 1) == date(2026, 1, 12)
    assert cal.add_working_days(datetime(2025, 12, 30, 10, 0), 1) == date(2026, 1, 12)
    assert cal.sub_working_days(date(2026, 1, 12), 1) == date(2025, 12, 30)
    assert (date(2025, 6, 13), cal.get_holiday_label(date(2025, 6, 13))) in cal.holidays(2025)
    assert cal.add_working_days(date(2025, 12, 30), 1, extra_holidays=[date(2026, 1, 12)]) == (
        date(2026, 1, 13)
    )


def test_workalendar_russia_is_wrong_where_we_are_right() -> None:
    ours, theirs = ProductionCalendar(), Russia()
    assert theirs.add_working_days(date(2025, 12, 30), 1) == date(2025, 12, 31)
    assert ours.add_working_days(date(2025, 12, 30), 1) == date(2026, 1, 12)
    assert not theirs.is_working_day(date(2025, 2, 24))  # workalendar: wrong day off
    assert ours.is_working_day(date(2025, 2, 24))
    assert ours.add_working_days(date(2026, 1, 12), 5) == date(2026, 1, 19)


def test_regional_compat() -> None:
    tat = ProductionCalendar("16")
    assert tat.is_working_day(date(2025, 8, 29))
    assert not tat.is_working_day(date(2025, 11, 6))
    assert tat.name == "Республика Татарстан"
