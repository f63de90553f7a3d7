"""``rehab calendar``: query the production calendar from the console.

Commands: ``add DATE N``, ``is-working DATE``, ``between D1 D2``, ``show YEAR``; each takes
``--region CODE`` (default: the product's default region). A bad date, an unknown region or a
year out of range prints one line on stderr and exits with code 2.

An answer that depends on a provisional day (a year without an approved decree, Labour Code
art. 112 rules only, or with estimated regional dates) gets `` [provisional]`` after the
value on the same line; the value stays the first token for scripts.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, NoReturn

import typer

from calendars import DEFAULT_REGION, CalendarError, RegionCalendar, get_calendar

calendar_app = typer.Typer(
    help="Production calendar: working days, deadlines arithmetic and yearly grids.",
    no_args_is_help=True,
    add_completion=False,
)

RegionOption = typer.Option(DEFAULT_REGION, "--region", "-r", help="Subject code, e.g. 39.")

# Negative numbers ("-3", "-5") are arguments, not options: the value is then checked by us
# and a bad one is a one-line error (exit 2) instead of Typer's usage box.
NUMBER_ARGS: dict[str, Any] = {"ignore_unknown_options": True, "allow_interspersed_args": True}

PROVISIONAL = " [provisional]"

MONTHS = (
    "Январь", "Февраль", "Март", "Апрель", "Май", "Июнь",
    "Июль", "Август", "Сентябрь", "Октябрь", "Ноябрь", "Декабрь",
)
WEEKDAYS_ACC = (
    "понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье",
)

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"[+-]?[0-9]+")
ONE_DAY = timedelta(days=1)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _date(text: str, field: str) -> date:
    """``text`` as a date; only the strict ``YYYY-MM-DD`` form (no 20250101, no 2025-W01-3)."""
    if not _ISO_DATE.fullmatch(text):
        _fail(f"{field}: {text!r} is not a date in YYYY-MM-DD form (e.g. 2025-12-30)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{field}: {text!r} is not a valid calendar date (YYYY-MM-DD)")


def _int(text: str, field: str) -> int:
    if not _INTEGER.fullmatch(text):
        _fail(f"{field}: {text!r} is not an integer")
    return int(text)


def _calendar(region: str) -> RegionCalendar:
    try:
        return get_calendar(region)
    except CalendarError as exc:
        _fail(str(exc))


def _mark(provisional: bool) -> str:
    return PROVISIONAL if provisional else ""


@calendar_app.command("add", context_settings=NUMBER_ARGS)
def add(
    day: str = typer.Argument(..., metavar="DATE", help="YYYY-MM-DD"),
    n: str = typer.Argument(..., metavar="N", help="Working days; negative counts back."),
    region: str = RegionOption,
) -> None:
    """Print the date N working days after DATE (N may be negative: -3)."""
    d, k, cal = _date(day, "DATE"), _int(n, "N"), _calendar(region)
    try:
        result = cal.add_working_days(d, k)
        if k > 0:
            provisional = cal.is_range_provisional(d + ONE_DAY, result)
        elif k < 0:
            provisional = cal.is_range_provisional(result, d - ONE_DAY)
        else:
            provisional = False
    except CalendarError as exc:
        _fail(str(exc))
    typer.echo(f"{result.isoformat()}{_mark(provisional)}")


@calendar_app.command("is-working")
def is_working(
    day: str = typer.Argument(..., metavar="DATE", help="YYYY-MM-DD"),
    region: str = RegionOption,
) -> None:
    """Print 'working' or 'non-working' with the reason (exit code 0 either way)."""
    d, cal = _date(day, "DATE"), _calendar(region)
    try:
        info = cal.day_info(d)
    except CalendarError as exc:
        _fail(str(exc))
    word = "working" if info.working else "non-working"
    typer.echo(f"{word} ({info.kind}: {info.reason}){_mark(info.provisional)}")


@calendar_app.command("between")
def between(
    start: str = typer.Argument(..., metavar="D1", help="YYYY-MM-DD (not counted)"),
    end: str = typer.Argument(..., metavar="D2", help="YYYY-MM-DD (counted)"),
    region: str = RegionOption,
) -> None:
    """Print the number of working days in (D1, D2] (negative if D2 < D1)."""
    d1, d2, cal = _date(start, "D1"), _date(end, "D2"), _calendar(region)
    try:
        count = cal.working_days_between(d1, d2)
        lo, hi = min(d1, d2), max(d1, d2)
        provisional = lo != hi and cal.is_range_provisional(lo + ONE_DAY, hi)
    except CalendarError as exc:
        _fail(str(exc))
    typer.echo(f"{count}{_mark(provisional)}")


def _month_lines(cal: RegionCalendar, year: int, month: int) -> list[str]:
    lines = [f"{MONTHS[month - 1]:^28}", " Пн  Вт  Ср  Чт  Пт  Сб  Вс "]
    first = date(year, month, 1)
    cells = ["    "] * first.weekday()
    d = first
    while d.month == month:
        info = cal.day_info(d)
        mark = " " if info.working and not info.shortened else ("~" if info.working else "*")
        cells.append(f"{d.day:>3}{mark}")
        d += ONE_DAY
    for i in range(0, len(cells), 7):
        lines.append("".join(cells[i : i + 7]).ljust(28))
    while len(lines) < 8:
        lines.append(" " * 28)
    return lines


@calendar_app.command("show", context_settings=NUMBER_ARGS)
def show(
    year: str = typer.Argument(..., metavar="YEAR"),
    region: str = RegionOption,
) -> None:
    """Print YEAR as month grids (days off marked), the year's totals and its days off."""
    y, cal = _int(year, "YEAR"), _calendar(region)
    try:
        summary = cal.year_summary(y)
    except CalendarError as exc:
        _fail(str(exc))
    status = "ПРЕДВАРИТЕЛЬНО (provisional)" if summary.provisional else "утверждён (approved)"
    typer.echo(f"Производственный календарь {y} — {cal.name} ({cal.code}, {cal.timezone})")
    typer.echo(f"Статус: {status}; федеральное основание: {summary.source}")
    typer.echo("Обозначения: * нерабочий день, ~ сокращённый предпраздничный день")
    typer.echo("")
    for row in range(0, 12, 3):
        blocks = [_month_lines(cal, y, m) for m in range(row + 1, row + 4)]
        for parts in zip(*blocks, strict=True):
            typer.echo("  ".join(parts).rstrip())
    typer.echo("")
    typer.echo(f"working days: {summary.working_days}")
    typer.echo(f"days off: {summary.days_off}")
    typer.echo(f"shortened days: {summary.shortened_days}")
    typer.echo(f"hours (40-hour week): {summary.hours_40}")
    for reason in summary.provisional_reasons:
        typer.echo(f"provisional: {reason}")
    holidays = cal.holidays(y)
    if holidays:
        typer.echo("")
        for d, reason in holidays:
            weekend = (
                f" (приходится на {WEEKDAYS_ACC[d.weekday()]}, weekend)"
                if d.weekday() >= 5 else ""
            )
            typer.echo(f"{d:%d.%m} {reason}{weekend}")
