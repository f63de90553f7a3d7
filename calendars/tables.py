"""Precomputed day tables: per region, ordinal -> cumulative working-day index and the inverse.

For every day ``i`` days after 1 January MIN_YEAR the table holds ``after[i]`` — the number of
working days in [start, day] minus one — and ``before[i]``, the number of working days strictly
before ``day``. ``work_days[k]`` is the (k+1)-th working day. With them, adding N working days,
subtracting them and counting them between two dates are O(1) list look-ups, no day loops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from calendars.data_files import FederalYearFile, RegionFile
from calendars.days import DayInfo
from calendars.errors import MAX_YEAR, MIN_YEAR
from calendars.federal import ONE_DAY, FederalYear, from_art112, from_file
from calendars.regions import overlay

FIRST_DAY = date(MIN_YEAR, 1, 1)
LAST_DAY = date(MAX_YEAR, 12, 31)


def federal_years(files: dict[int, FederalYearFile]) -> dict[int, FederalYear]:
    """Every year of MIN_YEAR..MAX_YEAR: from its data file if any, else from art. 112."""
    return {
        y: from_file(files[y]) if y in files else from_art112(y)
        for y in range(MIN_YEAR, MAX_YEAR + 1)
    }


def federal_provisional_reason(fy: FederalYear) -> str | None:
    """Why a federal year is provisional (None if it rests on an approved decree)."""
    if not fy.provisional:
        return None
    if fy.declared_working_days is None:
        return (
            f"no approved federal decree for {fy.year}: Labour Code art. 112 rules only "
            "(the transfer decree, art. 112 part 5, is not in the data)"
        )
    return f"the federal data file {fy.year}.toml is marked provisional (decree not approved)"


@dataclass(frozen=True, slots=True)
class DayTable:
    """The precomputed calendar of one region over MIN_YEAR..MAX_YEAR (see the module doc).

    ``provisional_reasons`` maps each provisional year to why it is provisional: the federal
    reason (no decree) and/or the regional one (regional dates estimated), in that order.
    """

    base: int
    size: int
    working: bytes
    after: list[int]
    before: list[int]
    work_days: list[date]
    special: dict[date, DayInfo]
    provisional_years: frozenset[int]
    year_sources: dict[int, str]
    provisional_reasons: dict[int, tuple[str, ...]]


def build_table(federal: dict[int, FederalYear], region: RegionFile | None) -> DayTable:
    """Build the table of one region (``None``: the federal calendar alone)."""
    special: dict[date, DayInfo] = {}
    provisional: set[int] = set()
    reasons: dict[int, list[str]] = {}
    for fy in federal.values():
        special.update(fy.special)
        federal_reason = federal_provisional_reason(fy)
        if federal_reason is not None:
            provisional.add(fy.year)
            reasons[fy.year] = [federal_reason]
    if region is not None:
        overlay(region, federal, special, provisional, reasons)
    for d, info in list(special.items()):
        if not FIRST_DAY <= d <= LAST_DAY:
            del special[d]
        elif info.provisional != (d.year in provisional):
            special[d] = replace(info, provisional=d.year in provisional)
    base = FIRST_DAY.toordinal()
    size = LAST_DAY.toordinal() - base + 1
    working = bytearray(size)
    after = [0] * size
    before = [0] * size
    work_days: list[date] = []
    count = 0
    d = FIRST_DAY
    for i in range(size):
        found = special.get(d)
        w = found.working if found is not None else d.weekday() < 5
        before[i] = count
        if w:
            working[i] = 1
            work_days.append(d)
            count += 1
        after[i] = count - 1
        d += ONE_DAY
    sources = {y: fy.source for y, fy in federal.items()}
    return DayTable(
        base, size, bytes(working), after, before, work_days, special,
        frozenset(provisional), sources, {y: tuple(r) for y, r in reasons.items()},
    )
