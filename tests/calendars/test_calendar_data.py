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


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("year", "old", "new", "match"),
    [
        # 12 June missing from the holidays (checked before the working-days total)
        (
            2025,
            '    { date = 2025-06-12, name = "День России" },\n',
            "",
            r"^2025\.toml: holidays: 2025: 2025-06-12 \(День России\) is a non-working "
            r"holiday under Labour Code art\. 112 part 1",
        ),
        # 7 January missing
        (
            2024,
            '    { date = 2024-01-07, name = "Рождество Христово" },\n',
            "",
            r"^2024\.toml: holidays: 2024: 2024-01-07 \(Рождество Христово\)",
        ),
        # 8 Mar 2026 is a Sunday: its art. 112 part 2 transfer to 9 Mar removed
        (
            2026,
            '    { from = 2026-03-08, to = 2026-03-09, basis = "art112" },\n',
            "",
            r"^2026\.toml: transfers: 2026: 2026-03-08 \(Международный женский день\) falls "
            r"on a Sunday but no transfer moves its day off \(Labour Code art\. 112 part 2",
        ),
        # an exception must name an art. 112 holiday
        (
            2025,
            "working_saturdays = [2025-11-01]",
            'working_saturdays = [2025-11-01]\nart112_exceptions = [{ date = 2025-06-13, '
            'reason = "x" }]',
            r"^2025\.toml: art112_exceptions: 2025-06-13 is not a Labour Code art\. 112",
        ),
        (
            2025,
            "working_saturdays = [2025-11-01]",
            'working_saturdays = [2025-11-01]\nart112_exceptions = [{ date = 2025-06-12, '
            'reason = " " }]',
            r"^2025\.toml: art112_exceptions\[0\]\.reason: must say why",
        ),
    ],
)
def test_federal_file_must_follow_art112(
    data_copy: Path, year: int, old: str, new: str, match: str
) -> None:
    _edit(data_copy / f"{year}.toml", old, new)
    reload_data()
    with pytest.raises(CalendarError, match=match):
        get_calendar()


def test_art112_exception_waives_the_check(data_copy: Path) -> None:
    f = data_copy / "2026.toml"
    _edit(f, '    { from = 2026-03-08, to = 2026-03-09, basis = "art112" },\n', "")
    _edit(f, "working_days = 247", "working_days = 248")
    _edit(
        f,
        "working_saturdays = []",
        'working_saturdays = []\nart112_exceptions = [\n    { date = 2026-03-08, '
        'reason = "test: the day off is not moved" },\n]',
    )
    reload_data()
    cal = get_calendar()
    assert cal.is_working_day(date(2026, 3, 9))
    assert cal.working_days_in_year(2026) == 248


REGION = """code = "98"
name = "Тестовый регион"
timezone = {tz}
weekend_transfer = false
sources = ["test"]
fixed = {fixed}
"""


@pytest.mark.parametrize(
    ("tz", "fixed", "match"),
    [
        ('"Europe/Kalinigrad"', "[]", r"^98-test\.toml: timezone: 'Europe/Kalinigrad' is not a "
         r"known IANA time zone"),
        ('"../etc/passwd"', "[]", r"^98-test\.toml: timezone: "),
        ('""', "[]", r"^98-test\.toml: timezone: "),
        ("3", "[]", r"^98-test\.toml: timezone: must be a str"),
        ('"Europe/Moscow"', '["8-30"]', r"^98-test\.toml: fixed\[0\]: must be a \{month, day"),
        ('"Europe/Moscow"', '"8-30"', r"^98-test\.toml: fixed: must be a list"),
        ('"Europe/Moscow"', '[{ month = "8", day = 30, name = "x" }]',
         r"^98-test\.toml: fixed\[0\]\.month: must be a int"),
        ('"Europe/Moscow"', '[{ month = 8, day = 30 }]', r"^98-test\.toml: fixed\[0\]\.name: "
         r"is required"),
        ('"Europe/Moscow"', '[{ month = 8, day = 30, name = "x", note = 1 }]',
         r"^98-test\.toml: fixed\[0\]\.note: is not a known key"),
        ('"Europe/Moscow"', '[{ month = 2, day = 29, name = "x" }]',
         r"^98-test\.toml: fixed\[0\]\.month/day: must form a valid date in every year"),
    ],
)
def test_region_file_fields_are_checked(
    data_copy: Path, tz: str, fixed: str, match: str
) -> None:
    (data_copy / "regions" / "98-test.toml").write_text(
        REGION.format(tz=tz, fixed=fixed), encoding="utf-8"
    )
    reload_data()
    with pytest.raises(CalendarError, match=match):
        calendars.known_regions()


def test_valid_test_region_loads(data_copy: Path) -> None:
    (data_copy / "regions" / "98-test.toml").write_text(
        REGION.format(tz='"Asia/Vladivostok"', fixed='[{ month = 8, day = 30, name = "x" }]'),
        encoding="utf-8",
    )
    reload_data()
    cal = get_calendar("98")
    assert cal.timezone == "Asia/Vladivostok"
    assert not cal.is_working_day(date(2027, 8, 30))
