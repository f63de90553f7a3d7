"""Data files: version hash, reload, validation, and adding a year with one file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

import calendars
from calendars import CalendarError, data_version, get_calendar, reload_data
from calendars.data_files import DATA_DIR_ENV, data_dir

DATA_2028 = """
year = 2028
status = "approved"
working_days = 247

holidays = [
{holidays}
]
transfers = [
    {{ from = 2028-01-01, to = 2028-01-10, basis = "decree" }},
    {{ from = 2028-01-02, to = 2028-12-29, basis = "decree" }},
    {{ from = 2028-11-04, to = 2028-11-06, basis = "art112" }},
]
working_saturdays = []
shortened = [2028-02-22, 2028-03-07, 2028-05-08, 2028-11-03]

[decree]
number = "0000"
date = 2027-09-01
title = "Тестовое постановление"
source = "test"
"""
HOLIDAYS_2028 = [
    *[(f"2028-01-0{d}", "Новогодние каникулы") for d in (1, 2, 3, 4, 5, 6)],
    ("2028-01-07", "Рождество Христово"), ("2028-01-08", "Новогодние каникулы"),
    ("2028-02-23", "День защитника Отечества"), ("2028-03-08", "Международный женский день"),
    ("2028-05-01", "Праздник Весны и Труда"), ("2028-05-09", "День Победы"),
    ("2028-06-12", "День России"), ("2028-11-04", "День народного единства"),
]


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    target = tmp_path / "data"
    shutil.copytree(data_dir(), target)
    monkeypatch.setenv(DATA_DIR_ENV, str(target))
    reload_data()
    yield target
    monkeypatch.delenv(DATA_DIR_ENV)
    reload_data()


def test_public_api_names() -> None:
    for name in (
        "DEFAULT_REGION", "CalendarError", "UnknownRegionError", "YearOutOfRangeError",
        "get_calendar", "known_regions", "data_version", "reload_data", "RegionCalendar",
        "Deadline", "deadline", "working_days_late", "DayInfo", "RegionInfo",
    ):
        assert hasattr(calendars, name), name
    assert issubclass(calendars.UnknownRegionError, calendars.CalendarError)
    assert issubclass(calendars.YearOutOfRangeError, ValueError)


def test_data_version_is_stable_short_hash() -> None:
    v = data_version()
    assert v == data_version()
    assert len(v) == 12 and int(v, 16) >= 0


def test_adding_next_year_is_one_file(data_copy: Path) -> None:
    before = data_version()
    assert get_calendar().is_year_provisional(2028)
    rows = "\n".join(f'    {{ date = {d}, name = "{n}" }},' for d, n in HOLIDAYS_2028)
    (data_copy / "2028.toml").write_text(DATA_2028.format(holidays=rows), encoding="utf-8")
    reload_data()
    assert data_version() != before
    cal = get_calendar()
    assert not cal.is_year_provisional(2028)
    assert cal.working_days_in_year(2028) == 247
    assert not cal.is_working_day(date(2028, 12, 29))


def test_changed_decree_file_changes_version(data_copy: Path) -> None:
    before = data_version()
    f = data_copy / "2025.toml"
    f.write_text(f.read_text(encoding="utf-8") + "\n# amended\n", encoding="utf-8")
    assert data_version() == before  # cached until reload
    reload_data()
    assert data_version() != before


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("working_days = 247", "working_days = 250", "working_days: declares 250"),
        (
            'basis = "decree" },\n    { from = 2025-01-05',
            'basis = "law" },\n    { from = 2025-01-05',
            "basis",
        ),
        ("shortened = [2025-03-07", "shortened = [2025-03-08", "shortened"),
        ("working_saturdays = [2025-11-01]", "working_saturdays = []", "working_saturdays"),
        ('status = "approved"', 'status = "approved"\nextra = 1', "extra: is not a known key"),
    ],
)
def test_invalid_federal_file_names_field_and_rule(
    data_copy: Path, old: str, new: str, match: str
) -> None:
    f = data_copy / "2025.toml"
    text = f.read_text(encoding="utf-8")
    assert old in text
    f.write_text(text.replace(old, new, 1), encoding="utf-8")
    reload_data()
    with pytest.raises(CalendarError, match=match):
        get_calendar()


def test_invalid_region_file(data_copy: Path) -> None:
    (data_copy / "regions" / "99-bad.toml").write_text(
        'code = "9"\nname = "x"\ntimezone = "UTC"\nweekend_transfer = false\nsources = ["x"]\n',
        encoding="utf-8",
    )
    reload_data()
    with pytest.raises(CalendarError, match="code"):
        calendars.known_regions()
