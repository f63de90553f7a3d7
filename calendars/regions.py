"""Regional calendars: regional non-working days laid over the federal calendar.

Legal basis: Labour Code art. 6 and art. 112 allow a subject of the Russian Federation to set
extra non-working holidays by its own law (e.g. the Law of the Republic of Tatarstan «О
праздничных днях и памятных датах Республики Татарстан», art. 1 — number and date to be
confirmed; the Law of the Republic of Bashkortostan of 27.02.1992 № ВС-10/21). Whether a
regional holiday on a day off moves to the next working day is the regional law's choice
(``weekend_transfer`` in the data file). Regional holidays dated yearly (Uraza Bayram, Kurban
Bayram) are known only for the years the data lists as approved; any other year of such a
region is provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from calendars.data_files import NamedDay, RegionFile
from calendars.days import DayInfo
from calendars.errors import MAX_YEAR, MIN_YEAR
from calendars.federal import (
    ONE_DAY,
    SHORTENED_REASON,
    FederalYear,
    shortened_info,
    working_in,
)


@dataclass(frozen=True, slots=True)
class RegionInfo:
    """A shipped region: subject code, Russian name, IANA time zone and cited sources."""

    code: str
    name: str
    timezone: str
    sources: tuple[str, ...]
    weekend_transfer: bool
    regional_holidays: bool


def region_info(r: RegionFile) -> RegionInfo:
    """The public description of a parsed region file (what :func:`known_regions` lists).

    ``regional_holidays`` is True when the region has any day off of its own (fixed-date,
    dated for some year, or dated yearly by a regional act).
    """
    return RegionInfo(
        code=r.code,
        name=r.name,
        timezone=r.timezone,
        sources=r.sources,
        weekend_transfer=r.weekend_transfer,
        regional_holidays=bool(r.fixed or r.years or r.dated_yearly),
    )


def region_year_provisional(r: RegionFile, year: int) -> bool:
    """A year of a region whose holidays are dated yearly is provisional without approved dates."""
    if not r.dated_yearly:
        return False
    ry = r.years.get(year)
    return ry is None or ry.status != "approved"


def region_year_provisional_reason(r: RegionFile, year: int) -> str | None:
    """Why ``year`` of region ``r`` is provisional on the regional side (None if it is not).

    Names the holidays concerned and, when the file has a ``[years.<YEAR>]`` table, quotes its
    ``source`` (how the estimated dates were obtained).
    """
    if not region_year_provisional(r, year):
        return None
    holidays = ", ".join(r.dated_yearly)
    ry = r.years.get(year)
    if ry is None:
        return (
            f"{r.name}: dates of {holidays} in {year} are not set by a regional act yet "
            "and not in the data (only fixed-date regional holidays are applied)"
        )
    return f"{r.name}: dates of {holidays} in {year} are estimates ({ry.source})"


def regional_days(r: RegionFile, year: int) -> list[NamedDay]:
    """The regional holiday dates of ``year`` (fixed by law plus those dated for the year)."""
    days = [NamedDay(date(year, f.month, f.day), f.name) for f in r.fixed]
    ry = r.years.get(year)
    if ry is not None:
        days.extend(ry.days)
    return sorted(days, key=lambda nd: nd.date)


def overlay(
    r: RegionFile,
    federal: dict[int, FederalYear],
    special: dict[date, DayInfo],
    provisional_years: set[int],
    reasons: dict[int, list[str]] | None = None,
) -> None:
    """Lay the region's non-working days over ``special`` (federal special days, all years).

    Each regional holiday is a day off. With ``weekend_transfer`` a holiday that falls on a day
    off (weekend, federal holiday or transferred day) moves to the next working day (as art. 112
    part 2 does for federal holidays). The working day right before a regional holiday is
    shortened by one hour (art. 95); a working Saturday so shortened keeps its kind.
    ``provisional_years`` gains the years whose regional dates are not approved, and
    ``reasons`` (if given) the regional reason for each of them.
    """
    for year in range(MIN_YEAR, MAX_YEAR + 1):
        regional_reason = region_year_provisional_reason(r, year)
        prov = year in provisional_years or regional_reason is not None
        if prov:
            provisional_years.add(year)
        if regional_reason is not None and reasons is not None:
            reasons.setdefault(year, []).append(regional_reason)
        holidays = regional_days(r, year)
        for nd in holidays:
            d = nd.date
            prev = special.get(d)
            off_already = not working_in(special, d)
            if prev is not None and prev.kind in ("holiday", "regional_holiday", "transfer"):
                special[d] = DayInfo(d, False, prev.kind, f"{prev.reason}; {nd.name}", prov)
            else:
                special[d] = DayInfo(d, False, "regional_holiday", nd.name, prov)
            if off_already and r.weekend_transfer:
                to = d + ONE_DAY
                while not working_in(special, to):
                    to += ONE_DAY
                reason = (
                    f"Выходной день, перенесён с {d:%d.%m.%Y}, {nd.name} (региональный закон)"
                )
                special[to] = DayInfo(to, False, "regional_holiday", reason, prov)
        for nd in holidays:
            before = nd.date - ONE_DAY
            if working_in(special, before) and before.year >= MIN_YEAR:
                prev = special.get(before)
                if prev is not None and prev.shortened:
                    continue
                reason = f"{SHORTENED_REASON} перед: {nd.name}"
                special[before] = shortened_info(prev, before, reason, prov)
