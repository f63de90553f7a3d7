"""Regional calendars: Tatarstan, Bashkortostan, Kaliningrad (default), Moscow."""

from __future__ import annotations

from datetime import date

import pytest

from calendars import DEFAULT_REGION, UnknownRegionError, get_calendar, known_regions


def test_known_regions_and_default() -> None:
    regions = {r.code: r for r in known_regions()}
    assert DEFAULT_REGION == "39"
    assert {"02", "16", "39", "77"} <= set(regions)
    assert regions["39"].timezone == "Europe/Kaliningrad"
    assert regions["16"].timezone == "Europe/Moscow"
    assert regions["02"].timezone == "Asia/Yekaterinburg"
    assert regions["77"].timezone == "Europe/Moscow"
    assert all(r.sources for r in regions.values())
    assert regions["39"].name == "Калининградская область"
    assert get_calendar() is get_calendar("39")


def test_unknown_region() -> None:
    with pytest.raises(UnknownRegionError, match="region"):
        get_calendar("98")


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2024, 4, 10), "Ураза-байрам"),
        (date(2024, 8, 30), "День Республики Татарстан"),
        (date(2024, 11, 6), "День Конституции Республики Татарстан"),
        (date(2025, 6, 6), "Курбан-байрам"),
        (date(2025, 11, 6), "День Конституции Республики Татарстан"),
        (date(2026, 3, 20), "Ураза-байрам"),
        (date(2026, 5, 27), "Курбан-байрам"),
    ],
)
def test_tatarstan_holidays(day: date, name: str) -> None:
    info = get_calendar("16").day_info(day)
    assert not info.working
    assert info.kind == "regional_holiday"
    assert info.reason == name
    assert get_calendar("39").is_working_day(day)


def test_tatarstan_no_weekend_transfer() -> None:
    tat = get_calendar("16")
    # Uraza Bayram 30 Mar 2025 and Republic Day 30 Aug 2025 fell on weekends: no extra day off
    assert tat.is_working_day(date(2025, 3, 31))
    assert tat.is_working_day(date(2025, 9, 1))
    assert tat.day_info(date(2025, 3, 30)).kind == "regional_holiday"
    assert tat.working_days_in_year(2025) == 245  # Mintrud of Tatarstan
    assert tat.working_days_in_year(2024) == 245
    assert tat.working_days_in_year(2026) == 244


def test_tatarstan_shortened_before_regional_holiday() -> None:
    info = get_calendar("16").day_info(date(2025, 6, 5))
    assert info.working and info.shortened


@pytest.mark.parametrize(
    ("day", "working_in_02"),
    [
        (date(2025, 3, 30), False),  # Uraza Bayram on Sunday
        (date(2025, 3, 31), False),  # ... moved to Monday
        (date(2025, 10, 11), False),  # Republic Day on Saturday
        (date(2025, 10, 13), False),  # ... moved to Monday
        (date(2025, 10, 10), True),  # shortened pre-holiday Friday
        (date(2024, 6, 17), False),  # Kurban Bayram 16 Jun 2024 (Sunday) moved
        (date(2026, 10, 12), False),  # Republic Day 11 Oct 2026 (Sunday) moved
        (date(2025, 12, 24), True),  # Constitution Day of Bashkortostan: a working day
    ],
)
def test_bashkortostan(day: date, working_in_02: bool) -> None:
    assert get_calendar("02").is_working_day(day) is working_in_02
    assert get_calendar("39").is_working_day(day) or day.weekday() >= 5


def test_bashkortostan_totals() -> None:
    ba = get_calendar("02")
    assert [ba.working_days_in_year(y) for y in (2024, 2025, 2026)] == [245, 244, 244]
    assert ba.day_info(date(2025, 10, 10)).shortened


def test_regional_deadline_differs() -> None:
    tat, kgd = get_calendar("16"), get_calendar("39")
    assert kgd.add_working_days(date(2025, 6, 5), 1) == date(2025, 6, 6)
    assert tat.add_working_days(date(2025, 6, 5), 1) == date(2025, 6, 9)


def test_regional_provisional_years() -> None:
    tat, mos = get_calendar("16"), get_calendar("77")
    assert not tat.is_provisional(date(2026, 5, 27))
    assert tat.is_provisional(date(2027, 3, 9))  # Uraza Bayram date not yet decreed
    assert tat.day_info(date(2027, 1, 11)).provisional
    assert not mos.is_provisional(date(2027, 3, 9))
    assert tat.is_provisional(date(2030, 8, 30))
    assert not tat.is_working_day(date(2030, 8, 30))  # fixed-date holiday is still applied
