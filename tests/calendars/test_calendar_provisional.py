"""Years without a data file: Labour Code art. 112 rules, provisional, and the year range."""

from __future__ import annotations

from datetime import date

import pytest

from calendars import MAX_YEAR, MIN_YEAR, YearOutOfRangeError, get_calendar
from calendars.federal import from_art112


def test_year_without_file_is_provisional() -> None:
    cal = get_calendar()
    assert cal.is_year_provisional(2028)
    assert cal.is_provisional(date(2028, 3, 1))
    assert cal.day_info(date(2028, 3, 1)).provisional
    assert not cal.is_provisional(date(2027, 12, 31))
    assert cal.year_summary(2028).provisional


def test_art112_holidays_and_weekend_shift_2028() -> None:
    cal = get_calendar()
    for d in [date(2028, 1, m) for m in range(1, 9)] + [
        date(2028, 2, 23), date(2028, 3, 8), date(2028, 5, 1), date(2028, 5, 9),
        date(2028, 6, 12), date(2028, 11, 4),
    ]:
        assert not cal.is_working_day(d)
    # 4 Nov 2028 is a Saturday: the day off moves to Monday 6 Nov (art. 112 part 2)
    assert cal.day_info(date(2028, 11, 6)).kind == "transfer"
    # January weekend holidays are not moved without a decree
    assert cal.is_working_day(date(2028, 1, 10))
    assert cal.working_days_in_year(2028) == 249


def test_art112_rules_reproduce_automatic_shifts_of_decree_years() -> None:
    # 2026 and 2027 decree years contain exactly the art. 112 part 2 shifts the rules compute
    for year, shifted in {
        2026: {date(2026, 3, 9), date(2026, 5, 11)},
        2027: {date(2027, 5, 3), date(2027, 5, 10), date(2027, 6, 14)},
    }.items():
        computed = {d for d, i in from_art112(year).special.items() if i.kind == "transfer"}
        assert computed == shifted


def test_art112_shift_skips_other_days_off() -> None:
    # 2032: 8 Mar is a Monday; 2037: 9 May is a Saturday -> Monday 11 May
    assert get_calendar().day_info(date(2037, 5, 11)).kind == "transfer"
    assert get_calendar().is_working_day(date(2037, 5, 12))


def test_year_range() -> None:
    cal = get_calendar()
    assert (MIN_YEAR, MAX_YEAR) == (2000, 2100)
    cal.is_working_day(date(2000, 1, 10))
    cal.is_working_day(date(2100, 12, 31))
    with pytest.raises(YearOutOfRangeError, match="1999"):
        cal.is_working_day(date(1999, 12, 31))
    with pytest.raises(YearOutOfRangeError, match="2101"):
        cal.day_info(date(2101, 1, 1))
    with pytest.raises(YearOutOfRangeError):
        cal.working_days_in_year(2101)
    with pytest.raises(YearOutOfRangeError, match="n"):
        cal.add_working_days(date(2100, 12, 30), 5)
    with pytest.raises(YearOutOfRangeError):
        cal.sub_working_days(date(2000, 1, 3), 5)
    with pytest.raises(YearOutOfRangeError, match="start"):
        cal.get_working_days_delta(date(1990, 1, 1), date(2025, 1, 1))
