"""The federal production calendar: decree years from data files, other years from art. 112.

Legal basis:
  * Labour Code art. 112 part 1 — the non-working holidays: 1–6 and 8 January (New Year
    holidays), 7 January, 23 February, 8 March, 1 May, 9 May, 12 June, 4 November;
  * art. 112 part 2 — a holiday falling on a weekend moves the day off to the next working day,
    except January holidays, whose weekend days the Government moves by decree;
  * art. 112 part 5 — the Government's yearly decree transfers days off;
  * art. 95 — the working day right before a non-working holiday is one hour shorter (it stays a
    working day).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from calendars.data_files import FederalYearFile, Transfer
from calendars.days import DayInfo
from calendars.errors import CalendarError

ART112_HOLIDAYS: tuple[tuple[int, int, str], ...] = (
    (1, 1, "Новогодние каникулы"),
    (1, 2, "Новогодние каникулы"),
    (1, 3, "Новогодние каникулы"),
    (1, 4, "Новогодние каникулы"),
    (1, 5, "Новогодние каникулы"),
    (1, 6, "Новогодние каникулы"),
    (1, 7, "Рождество Христово"),
    (1, 8, "Новогодние каникулы"),
    (2, 23, "День защитника Отечества"),
    (3, 8, "Международный женский день"),
    (5, 1, "Праздник Весны и Труда"),
    (5, 9, "День Победы"),
    (6, 12, "День России"),
    (11, 4, "День народного единства"),
)
"""Labour Code art. 112 part 1: (month, day, Russian name)."""

SHORTENED_REASON = "Предпраздничный день, сокращён на 1 час (ст. 95 ТК РФ)"
ONE_DAY = timedelta(days=1)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class FederalYear:
    """The federal calendar of one year: only the days that differ from Mon–Fri working."""

    year: int
    provisional: bool
    source: str
    special: dict[date, DayInfo]
    holiday_dates: frozenset[date]
    declared_working_days: int | None


def is_weekend(day: date) -> bool:
    """Saturday and Sunday are the weekly days off of a five-day week (Labour Code art. 111)."""
    return day.weekday() >= 5


def working_in(special: dict[date, DayInfo], day: date) -> bool:
    """Whether ``day`` is working given the special days of a calendar."""
    info = special.get(day)
    return info.working if info is not None else not is_weekend(day)


def count_working_days(year: int, special: dict[date, DayInfo]) -> int:
    """Working days of ``year`` (shortened days count as full days, art. 95)."""
    d = date(year, 1, 1)
    n = 0
    while d.year == year:
        n += working_in(special, d)
        d += ONE_DAY
    return n


def _fmt(d: date) -> str:
    return d.strftime("%d.%m.%Y")


def shortened_info(prev: DayInfo | None, d: date, reason: str, provisional: bool) -> DayInfo:
    """``d`` marked shortened (art. 95); a working Saturday keeps its kind, others are "shortened".

    ``prev`` is what ``d`` was before (None: an ordinary weekday); its reason is kept first.
    """
    kind = prev.kind if prev is not None and prev.kind == "working_saturday" else "shortened"
    text = reason if prev is None else f"{prev.reason}; {reason}"
    return DayInfo(d, True, kind, text, provisional, shortened=True)


def _transfer_reason(t: Transfer, names: dict[date, str], decree_no: str | None) -> str:
    basis = "ч. 2 ст. 112 ТК РФ" if t.basis == "art112" else f"постановление № {decree_no}"
    holiday = f", {names[t.from_day]}" if t.from_day in names else ""
    return f"Выходной день, перенесён с {_fmt(t.from_day)}{holiday} ({basis})"


def from_file(f: FederalYearFile) -> FederalYear:
    """Build a decree year from its data file and check it (art. 112, art. 95, the total).

    Rules checked (each error names the file, field and rule): dates lie in the year; every
    Labour Code art. 112 part 1 holiday of the year (1–8 January, 23 February, 8 March, 1 May,
    9 May, 12 June, 4 November) is listed; every non-January holiday falling on a Saturday or
    Sunday is the ``from`` of a transfer (art. 112 part 2 moves it; the decree may move it
    elsewhere, art. 112 part 5) — either rule can be waived for a date only by an
    ``art112_exceptions`` entry giving the reason; a transfer moves a weekend day (``from``) to
    a weekday that is not a holiday (``to``) — art. 112 parts 2 and 5; a working Saturday is a
    weekend day that is not a holiday and is the ``from`` of a decree transfer; a shortened day
    is a working day (art. 95); the computed number of working days equals ``working_days``.
    """
    y = f.year
    provisional = f.status != "approved"
    decree_no = f.decree.number if f.decree else None
    file_name = Path(f.path).name

    def bad(field: str, rule: str) -> CalendarError:
        return CalendarError(f"{file_name}: {field}: {rule}")

    special: dict[date, DayInfo] = {}
    names: dict[date, str] = {}
    for h in f.holidays:
        if h.date.year != y:
            raise bad("holidays", f"{h.date} is not in {y}")
        names[h.date] = h.name
        special[h.date] = DayInfo(h.date, False, "holiday", h.name, provisional)
    _check_art112(f, names, bad)
    sat_from = {t.from_day for t in f.transfers if t.basis == "decree"}
    for t in f.transfers:
        if t.from_day.year != y or t.to_day.year != y:
            raise bad("transfers", f"{t.from_day} -> {t.to_day} must lie in {y}")
        if not is_weekend(t.from_day):
            raise bad("transfers", f"from {t.from_day} must be a Saturday or Sunday (art. 112)")
        if is_weekend(t.to_day) or t.to_day in names:
            raise bad("transfers", f"to {t.to_day} must be a weekday that is not a holiday")
        if t.from_day not in names and t.from_day not in f.working_saturdays:
            raise bad("working_saturdays", f"{t.from_day} (a transferred day) must be listed")
        if t.basis == "art112" and t.from_day not in names:
            raise bad("transfers", f"art112 transfer from {t.from_day} must start at a holiday")
        special[t.to_day] = DayInfo(
            t.to_day, False, "transfer", _transfer_reason(t, names, decree_no), provisional
        )
    for d in f.working_saturdays:
        if d.year != y or not is_weekend(d) or d in names:
            raise bad("working_saturdays", f"{d} must be a weekend day of {y}, not a holiday")
        if d not in sat_from:
            raise bad("working_saturdays", f"{d} must be the 'from' of a decree transfer")
        to = next(t.to_day for t in f.transfers if t.from_day == d)
        reason = f"Рабочий день (выходной перенесён на {_fmt(to)}, постановление № {decree_no})"
        special[d] = DayInfo(d, True, "working_saturday", reason, provisional)
    for d in f.shortened:
        if d.year != y or not working_in(special, d):
            raise bad("shortened", f"{d} must be a working day of {y} (art. 95)")
        special[d] = shortened_info(special.get(d), d, SHORTENED_REASON, provisional)
    total = count_working_days(y, special)
    if total != f.working_days:
        raise bad("working_days", f"declares {f.working_days} but the data gives {total}")
    source = f.decree.title if f.decree else "ст. 112 ТК РФ (предварительно)"
    return FederalYear(y, provisional, source, special, frozenset(names), f.working_days)


def _check_art112(
    f: FederalYearFile, names: dict[date, str], bad: Callable[[str, str], CalendarError]
) -> None:
    """The art. 112 checks of :func:`from_file`: every holiday listed, weekend ones moved."""
    y = f.year
    waived = {e.date: e.reason for e in f.art112_exceptions}
    law_days = {date(y, m, d): name for m, d, name in ART112_HOLIDAYS}
    for d in waived:
        if d not in law_days:
            raise bad(
                "art112_exceptions",
                f"{d} is not a Labour Code art. 112 part 1 holiday of {y}; nothing to waive",
            )
    moved_from = {t.from_day for t in f.transfers}
    for d, name in sorted(law_days.items()):
        if d in waived:
            continue
        if d not in names:
            raise bad(
                "holidays",
                f"{y}: {d} ({name}) is a non-working holiday under Labour Code art. 112 part 1 "
                "but is not listed (add it, or an art112_exceptions entry with the reason)",
            )
        if d.month != 1 and is_weekend(d) and d not in moved_from:
            raise bad(
                "transfers",
                f"{y}: {d} ({name}) falls on a {_WEEKDAYS[d.weekday()]} but no transfer moves "
                "its day off (Labour Code art. 112 part 2: to the next working day); add the "
                "transfer, or an art112_exceptions entry with the reason",
            )


def from_art112(year: int) -> FederalYear:
    """A year without a decree file, computed from Labour Code art. 112 alone (provisional).

    Holidays are those of art. 112 part 1. A non-January holiday on a weekend moves the day off
    to the next working day (art. 112 part 2). The weekend days of the January holidays are not
    moved: the Government moves them by decree (art. 112 part 5), unknown until it is issued.
    A working day right before a holiday is shortened (art. 95).
    """
    special: dict[date, DayInfo] = {}
    names: dict[date, str] = {}
    for month, day, name in ART112_HOLIDAYS:
        d = date(year, month, day)
        names[d] = name
        special[d] = DayInfo(d, False, "holiday", name, True)
    for d, name in sorted(names.items()):
        if d.month == 1 or not is_weekend(d):
            continue
        to = d + ONE_DAY
        while not working_in(special, to):
            to += ONE_DAY
        reason = f"Выходной день, перенесён с {_fmt(d)}, {name} (ч. 2 ст. 112 ТК РФ)"
        special[to] = DayInfo(to, False, "transfer", reason, True)
    d = date(year, 1, 1)
    while d.year == year:
        nxt = d + ONE_DAY
        if working_in(special, d) and (nxt in names or (nxt.month, nxt.day) == (1, 1)):
            special[d] = shortened_info(special.get(d), d, SHORTENED_REASON, True)
        d = nxt
    source = "ст. 112 ТК РФ (предварительно)"
    return FederalYear(year, True, source, special, frozenset(names), None)
