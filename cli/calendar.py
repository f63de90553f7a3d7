"""``rehab calendar``: query the production calendar from the console.

Commands: ``add DATE N``, ``is-working DATE``, ``between D1 D2``, ``show YEAR``; each takes
``--region CODE`` (default: the product's default region). A bad date, an unknown region or a
year out of range prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NoReturn

import typer

from calendars import DEFAULT_REGION, CalendarError, RegionCalendar, get_calendar

calendar_app = typer.Typer(
    help="Production calendar: working days, deadlines arithmetic and yearly grids.",
    no_args_is_help=True,
    add_completion=False,
)

RegionOption = typer.Option(DEFAULT_REGION, "--region", "-r", help="Subject code, e.g. 39.")

MONTHS = (
    "Январь", "Февраль", "Март", "Апрель", "Май", "Июнь",
    "Июль", "Август", "Сентябрь", "Октябрь", "Ноябрь", "Декабрь",
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{field}: {text!r} is not a date in YYYY-MM-DD form")


def _int(text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        _fail(f"{field}: {text!r} is not an integer")


def _calendar(region: str) -> RegionCalendar:
    try:
        return get_calendar(region)
    except CalendarError as exc:
        _fail(str(exc))


@calendar_app.command(
    "add", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True}
)
def add(
    day: str = typer.Argument(..., metavar="DATE", help="YYYY-MM-DD"),
    n: str = typer.Argument(..., metavar="N", help="Working days; negative counts back."),
    region: str = RegionOption,
) -> None:
    """Print the date N working days after DATE (N may be negative: -3)."""
    d, k, cal = _date(day, "DATE"), _int(n, "N"), _calendar(region)
    try:
        result = cal.add_working_days(d, k)
    except CalendarError as exc:
        _fail(str(exc))
    typer.echo(result.isoformat())


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
    extra = " [provisional]" if info.provisional else ""
    typer.echo(f"{word} ({info.kind}: {info.reason}){extra}")


@calendar_app.command("between")
def between(
    start: str = typer.Argument(..., metavar="D1", help="YYYY-MM-DD (not counted)"),
    end: str = typer.Argument(..., metavar="D2", help="YYYY-MM-DD (counted)"),
    region: str = RegionOption,
) -> None:
    """Print the number of working days in (D1, D2] (negative if D2 < D1)."""
    d1, d2, cal = _date(start, "D1"), _date(end, "D2"), _calendar(region)
    try:
        typer.echo(str(cal.get_working_days_delta(d1, d2)))
    except CalendarError as exc:
        _fail(str(exc))


def _month_lines(cal: RegionCalendar, year: int, month: int) -> list[str]:
    lines = [f"{MONTHS[month - 1]:^28}", " Пн  Вт  Ср  Чт  Пт  Сб  Вс "]
    first = date(year, month, 1)
    cells = ["    "] * first.weekday()
    d = first
    while d.month == month:
        info = cal.day_info(d)
        mark = " " if info.working and not info.shortened else ("~" if info.working else "*")
        cells.append(f"{d.day:>3}{mark}")
        d += timedelta(days=1)
    for i in range(0, len(cells), 7):
        lines.append("".join(cells[i : i + 7]).ljust(28))
    while len(lines) < 8:
        lines.append(" " * 28)
    return lines


@calendar_app.command("show")
def show(
    year: str = typer.Argument(..., metavar="YEAR"),
    region: str = RegionOption,
) -> None:
    """Print YEAR as month grids (days off marked) and the year's totals."""
    y, cal = _int(year, "YEAR"), _calendar(region)
    try:
        summary = cal.year_summary(y)
    except CalendarError as exc:
        _fail(str(exc))
    status = "ПРЕДВАРИТЕЛЬНО (provisional)" if summary.provisional else "утверждён (approved)"
    typer.echo(f"Производственный календарь {y} — {cal.name} ({cal.code}, {cal.timezone})")
    typer.echo(f"Статус: {status}; основание: {summary.source}")
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
    if summary.provisional:
        typer.echo("provisional: no approved data for this year (Labour Code art. 112 rules only)")
    holidays = cal.holidays(y)
    if holidays:
        typer.echo("")
        for d, reason in holidays:
            if d.weekday() < 5 or cal.day_info(d).kind != "holiday":
                typer.echo(f"{d:%d.%m} {reason}")
