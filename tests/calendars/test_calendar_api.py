"""API contracts: argument checks, workalendar's delta vs the signed count, provisional ranges."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from workalendar.core import Calendar

from calendars import CalendarError, YearOutOfRangeError, get_calendar
from calendars import data_files as df
from calendars.region_calendar import RegionCalendar
from calendars.regions import region_info
from calendars.workalendar_compat import ProductionCalendar

D = date(2025, 3, 6)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.is_working_day("2025-03-06"), "day"),
        (lambda c: c.is_working_day(None), "day"),
        (lambda c: c.is_working_day(20250306), "day"),
        (lambda c: c.is_working_day(datetime(2025, 3, 6, 12, 0)), "day"),
        (lambda c: c.is_working_day(datetime(2025, 3, 6, 23, 30, tzinfo=UTC)), "day"),
        (lambda c: c.day_info("x"), "day"),
        (lambda c: c.is_holiday("x"), "day"),
        (lambda c: c.get_holiday_label("x"), "day"),
        (lambda c: c.is_provisional("x"), "day"),
        (lambda c: c.add_working_days("2025-03-06", 1), "day"),
        (lambda c: c.add_working_days(datetime(2025, 3, 6, 9, 0), 1), "day"),
        (lambda c: c.add_working_days(D, 1.0), "n"),
        (lambda c: c.add_working_days(D, 1.5), "n"),
        (lambda c: c.add_working_days(D, True), "n"),
        (lambda c: c.add_working_days(D, "1"), "n"),
        (lambda c: c.sub_working_days(D, True), "n"),
        (lambda c: c.sub_working_days(D, 2.0), "n"),
        (lambda c: c.get_working_days_delta("x", D), "start"),
        (lambda c: c.get_working_days_delta(D, "x"), "end"),
        (lambda c: c.working_days_between(D, datetime(2025, 3, 7)), "d2"),
        (lambda c: c.is_range_provisional("x", D), "d1"),
        (lambda c: c.working_days_in_year("2025"), "year"),
        (lambda c: c.working_days_in_year(2025.0), "year"),
        (lambda c: c.is_year_provisional(True), "year"),
        (lambda c: c.year_summary(None), "year"),
        (lambda c: c.holidays("2025"), "year"),
    ],
)
def test_wrong_argument_types_raise_calendar_error(
    call: Callable[[RegionCalendar], object], field: str
) -> None:
    with pytest.raises(CalendarError, match=rf"^{field}: expected ") as exc:
        call(get_calendar())
    assert isinstance(exc.value, ValueError)
    assert not isinstance(exc.value, YearOutOfRangeError)


def test_datetime_refusal_says_what_to_do() -> None:
    with pytest.raises(CalendarError, match="local date in the region's time zone"):
        get_calendar().is_working_day(datetime(2025, 3, 6, 23, 30, tzinfo=UTC))


def test_date_subclasses_and_plain_ints_are_accepted() -> None:
    cal = get_calendar()
    p = pendulum.date(2025, 12, 30)
    assert isinstance(p, date) and not isinstance(p, datetime)
    assert cal.is_working_day(p)
    assert cal.add_working_days(p, 1) == date(2026, 1, 12)
    assert cal.working_days_between(p, date(2026, 1, 19)) == 6
    assert cal.add_working_days(D, 0) == D and cal.sub_working_days(D, -1) == date(2025, 3, 7)


def test_get_working_days_delta_follows_workalendar() -> None:
    cal = get_calendar()
    a, b = date(2025, 12, 30), date(2026, 1, 19)
    assert cal.get_working_days_delta(a, b) == 6
    assert cal.get_working_days_delta(b, a) == 6  # the order does not matter
    # include_start counts the earlier date when it is a working day ...
    assert cal.get_working_days_delta(b, a, include_start=True) == 7
    # ... and not when it is a day off (8 Mar 2025, Saturday holiday)
    assert cal.get_working_days_delta(date(2025, 3, 8), date(2025, 3, 10), True) == 1
    # workalendar returns 0 for equal dates, even with include_start
    assert cal.get_working_days_delta(a, a, include_start=True) == 0


def test_working_days_between_is_signed() -> None:
    cal = get_calendar()
    a, b = date(2025, 12, 30), date(2026, 1, 19)
    assert cal.working_days_between(a, b) == 6
    assert cal.working_days_between(b, a) == -6
    assert cal.working_days_between(a, a) == 0
    with pytest.raises(YearOutOfRangeError, match="d1"):
        cal.working_days_between(date(1999, 12, 31), a)


@settings(max_examples=300, deadline=None)
@given(
    region=st.sampled_from(["39", "16", "02"]),
    a=st.dates(min_value=date(2023, 6, 1), max_value=date(2028, 6, 30)),
    span=st.integers(min_value=-120, max_value=120),
    include_start=st.booleans(),
)
def test_delta_equals_workalendar_algorithm(
    region: str, a: date, span: int, include_start: bool
) -> None:
    # workalendar's own day-by-day get_working_days_delta, asking our days
    b = a + timedelta(days=span)
    pc = ProductionCalendar(region)
    theirs = Calendar.get_working_days_delta(pc, a, b, include_start)
    assert get_calendar(region).get_working_days_delta(a, b, include_start) == theirs
    assert pc.get_working_days_delta(a, b, include_start) == theirs
    assert pc.get_working_days_delta(
        datetime.combine(a, datetime.min.time()), b, include_start
    ) == theirs  # the compat layer converts datetimes like workalendar


def test_is_range_provisional() -> None:
    kgd, tat = get_calendar("39"), get_calendar("16")
    assert not kgd.is_range_provisional(date(2024, 1, 1), date(2027, 12, 31))
    assert kgd.is_range_provisional(date(2027, 12, 31), date(2028, 1, 1))
    assert kgd.is_range_provisional(date(2028, 1, 1), date(2027, 12, 31))  # either order
    assert not kgd.is_range_provisional(date(2027, 12, 31), date(2027, 12, 31))
    assert kgd.is_range_provisional(date(2023, 12, 31), date(2024, 1, 1))  # 2023: no file
    assert tat.is_range_provisional(date(2027, 1, 1), date(2027, 1, 1))  # regional estimate
    assert not tat.is_range_provisional(date(2026, 1, 1), date(2026, 12, 31))
    with pytest.raises(YearOutOfRangeError, match="d2"):
        kgd.is_range_provisional(date(2025, 1, 1), date(2101, 1, 1))


def test_provisional_reasons() -> None:
    kgd, tat = get_calendar("39"), get_calendar("16")
    assert kgd.provisional_reasons(2027) == ()
    (federal,) = kgd.provisional_reasons(2028)
    assert "no approved federal decree for 2028" in federal and "art. 112" in federal
    (regional,) = tat.provisional_reasons(2027)
    assert "estimates" in regional and "указа Раиса РТ на 2027 год" in regional
    assert tat.provisional_reasons(2028)[0] == federal
    assert "not set by a regional act" in tat.provisional_reasons(2028)[1]
    assert tat.year_summary(2027).provisional_reasons == (regional,)


@pytest.mark.parametrize(
    "obj",
    [
        region_info,
        RegionCalendar.is_year_provisional,
        RegionCalendar.get_holiday_label,
        RegionCalendar.is_range_provisional,
        RegionCalendar.working_days_between,
        df.Decree,
        df.NamedDay,
        df.Transfer,
        df.FederalYearFile,
        df.FixedHoliday,
        df.RegionYear,
        df.RegionFile,
        df.Art112Exception,
    ],
    ids=lambda o: o.__qualname__,
)
def test_public_objects_have_docstrings(obj: object) -> None:
    doc = obj.__doc__ or ""
    name = getattr(obj, "__name__", "")
    if dataclasses.is_dataclass(obj):  # dataclasses get an auto "Name(field: type, ...)" doc
        assert not doc.startswith(f"{name}(")
    assert len(doc.strip()) > 20
