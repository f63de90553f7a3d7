"""Federal production calendar 2024–2027: totals, decrees, transfers, working Saturdays."""

from __future__ import annotations

from datetime import date

import pytest

from calendars import get_calendar
from calendars.data_files import federal_files

TOTALS = {2024: 248, 2025: 247, 2026: 247, 2027: 247}
DECREES = {
    2024: ("1314", date(2023, 8, 10)),
    2025: ("1335", date(2024, 10, 4)),
    2026: ("1466", date(2025, 9, 24)),
    2027: ("1187", date(2026, 9, 17)),
}
# (working weekend day or holiday moved, day off it moved to)
TRANSFERS = {
    2024: [
        (date(2024, 1, 6), date(2024, 5, 10)),
        (date(2024, 1, 7), date(2024, 12, 31)),
        (date(2024, 4, 27), date(2024, 4, 29)),
        (date(2024, 11, 2), date(2024, 4, 30)),
        (date(2024, 12, 28), date(2024, 12, 30)),
    ],
    2025: [
        (date(2025, 1, 4), date(2025, 5, 2)),
        (date(2025, 1, 5), date(2025, 12, 31)),
        (date(2025, 2, 23), date(2025, 5, 8)),
        (date(2025, 3, 8), date(2025, 6, 13)),
        (date(2025, 11, 1), date(2025, 11, 3)),
    ],
    2026: [
        (date(2026, 1, 3), date(2026, 1, 9)),
        (date(2026, 1, 4), date(2026, 12, 31)),
        (date(2026, 3, 8), date(2026, 3, 9)),
        (date(2026, 5, 9), date(2026, 5, 11)),
    ],
    2027: [
        (date(2027, 1, 2), date(2027, 11, 5)),
        (date(2027, 1, 3), date(2027, 12, 31)),
        (date(2027, 2, 20), date(2027, 2, 22)),
        (date(2027, 5, 1), date(2027, 5, 3)),
        (date(2027, 5, 9), date(2027, 5, 10)),
        (date(2027, 6, 12), date(2027, 6, 14)),
    ],
}
WORKING_SATURDAYS = {
    2024: [date(2024, 4, 27), date(2024, 11, 2), date(2024, 12, 28)],
    2025: [date(2025, 11, 1)],
    2026: [],
    2027: [date(2027, 2, 20)],
}
# Hours of a 40-hour week (working days × 8 − shortened days).
HOURS_40 = {2024: 1979, 2025: 1972, 2026: 1972, 2027: 1972}


@pytest.mark.parametrize("region", ["39", "77"])
@pytest.mark.parametrize("year", sorted(TOTALS))
def test_yearly_totals(year: int, region: str) -> None:
    cal = get_calendar(region)
    assert cal.working_days_in_year(year) == TOTALS[year]
    assert cal.year_summary(year).hours_40 == HOURS_40[year]
    assert not cal.is_year_provisional(year)


@pytest.mark.parametrize("year", sorted(DECREES))
def test_decree_named(year: int) -> None:
    f = federal_files()[year]
    assert f.status == "approved"
    assert f.decree is not None
    assert (f.decree.number, f.decree.date) == DECREES[year]
    assert f"№ {DECREES[year][0]}" in f.decree.title
    assert f.working_days == TOTALS[year]


@pytest.mark.parametrize(
    ("moved_from", "moved_to"),
    [pair for pairs in TRANSFERS.values() for pair in pairs],
    ids=lambda d: d.isoformat(),
)
def test_every_transfer(moved_from: date, moved_to: date) -> None:
    cal = get_calendar()
    to = cal.day_info(moved_to)
    assert not to.working
    assert to.kind == "transfer"
    assert moved_from.strftime("%d.%m.%Y") in to.reason
    assert moved_to.weekday() < 5


@pytest.mark.parametrize("year", sorted(TRANSFERS))
def test_transfers_are_complete(year: int) -> None:
    cal = get_calendar()
    transfers = {d for d, reason in cal.holidays(year) if cal.day_info(d).kind == "transfer"}
    assert transfers == {to for _, to in TRANSFERS[year]}


@pytest.mark.parametrize(
    "day", [d for ds in WORKING_SATURDAYS.values() for d in ds], ids=lambda d: d.isoformat()
)
def test_every_working_saturday(day: date) -> None:
    cal = get_calendar()
    assert day.weekday() == 5
    assert cal.is_working_day(day)
    assert cal.day_info(day).kind == "working_saturday"
    assert "перенес" in cal.day_info(day).reason


@pytest.mark.parametrize("region", ["39", "16", "02"])
@pytest.mark.parametrize(
    "day", [date(2025, 11, 1), date(2024, 11, 2), date(2027, 2, 20)], ids=lambda d: d.isoformat()
)
def test_shortened_working_saturday_keeps_its_kind(day: date, region: str) -> None:
    info = get_calendar(region).day_info(day)
    assert info.working
    assert info.kind == "working_saturday"  # not "shortened"
    assert info.shortened  # ... and still shortened by one hour (art. 95)
    assert "перенес" in info.reason and "ст. 95" in info.reason


def test_ordinary_shortened_weekday_kind() -> None:
    info = get_calendar().day_info(date(2025, 4, 30))
    assert (info.kind, info.shortened) == ("shortened", True)
    assert get_calendar().day_info(date(2024, 12, 28)).kind == "working_saturday"
    assert not get_calendar().day_info(date(2024, 12, 28)).shortened


@pytest.mark.parametrize("year", sorted(WORKING_SATURDAYS))
def test_working_saturdays_complete(year: int) -> None:
    assert get_calendar().working_saturdays(year) == WORKING_SATURDAYS[year]


def test_issue_examples_2025() -> None:
    cal = get_calendar()
    for d in (date(2025, 2, 24), date(2025, 3, 10)):
        assert cal.is_working_day(d)
    for d in (date(2025, 5, 2), date(2025, 5, 8), date(2025, 6, 13), date(2025, 11, 3),
              date(2025, 12, 31)):
        assert not cal.is_working_day(d)
    assert cal.is_working_day(date(2025, 11, 1))


def test_shortened_day_is_full_working_day() -> None:
    cal = get_calendar()
    info = cal.day_info(date(2025, 3, 7))
    assert info.working and info.shortened and info.kind == "shortened"
    assert "ст. 95" in info.reason
    assert cal.add_working_days(date(2025, 3, 6), 1) == date(2025, 3, 7)


def test_day_kinds() -> None:
    cal = get_calendar()
    assert cal.day_info(date(2025, 1, 7)).kind == "holiday"
    assert cal.day_info(date(2025, 1, 7)).reason == "Рождество Христово"
    assert cal.day_info(date(2025, 1, 11)).kind == "weekend"
    assert cal.day_info(date(2025, 1, 13)).kind == "working"
    assert cal.get_holiday_label(date(2025, 6, 12)) == "День России"
    assert cal.get_holiday_label(date(2025, 6, 11)) is None
