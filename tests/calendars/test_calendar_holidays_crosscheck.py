"""Day-by-day cross-check of 2024–2027 against the ``holidays`` package (holidays.Russia).

holidays.Russia lists non-working days (holidays and transferred days off); working Saturdays
are not among them: they are exposed as ``weekend_workdays``.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pytest

from calendars import get_calendar


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027])
def test_day_by_day_against_holidays_package(year: int) -> None:
    ru = holidays.Russia(years=year)  # type: ignore[attr-defined]
    weekend_workdays = set(getattr(ru, "weekend_workdays", set()))
    cal = get_calendar("39")
    d = date(year, 1, 1)
    mismatches = []
    while d.year == year:
        theirs = (d.weekday() < 5 and d not in ru) or d in weekend_workdays
        if cal.is_working_day(d) != theirs:
            mismatches.append((d, cal.day_info(d).kind, ru.get(d)))
        d += timedelta(days=1)
    assert mismatches == []


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027])
def test_working_saturdays_match_holidays_package(year: int) -> None:
    ru = holidays.Russia(years=year)  # type: ignore[attr-defined]
    if not hasattr(ru, "weekend_workdays"):
        pytest.skip("this holidays version does not expose weekend_workdays")
    assert sorted(ru.weekend_workdays) == get_calendar().working_saturdays(year)


def test_country_holidays_alias_agrees() -> None:
    ru = holidays.country_holidays("RU", years=2025)
    cal = get_calendar()
    assert all(not cal.is_working_day(d) for d in ru)
