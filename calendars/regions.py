"""Regional calendars: regional non-working days laid over the federal calendar.

Legal basis: Labour Code art. 6 and art. 112 allow a subject of the Russian Federation to set
extra non-working holidays by its own law (e.g. Tatarstan law № 2280 of 19.07.1999,
Bashkortostan law № ВС-10/21 of 27.02.1992). Whether a regional holiday on a day off moves to
the next working day is the regional law's choice (``weekend_transfer`` in the data file).
Regional holidays dated yearly (Uraza Bayram, Kurban Bayram) are known only for the years the
data lists as approved; any other year of such a region is provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from calendars.data_files import NamedDay, RegionFile
from calendars.days import DayInfo
from calendars.errors import MAX_YEAR, MIN_YEAR
from calendars.federal import ONE_DAY, SHORTENED_REASON, FederalYear, working_in


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
) -> None:
    """Lay the region's non-working days over ``special`` (federal special days, all years).

    Each regional holiday is a day off. With ``weekend_transfer`` a holiday that falls on a day
    off (weekend, federal holiday or transferred day) moves to the next working day (as art. 112
    part 2 does for federal holidays). The working day right before a regional holiday is
    shortened by one hour (art. 95). ``provisional_years`` gains the years whose regional dates
    are not approved.
    """
    for year in range(MIN_YEAR, MAX_YEAR + 1):
        prov = year in provisional_years or region_year_provisional(r, year)
        if prov:
            provisional_years.add(year)
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
                if prev is not None:
                    reason = f"{prev.reason}; {reason}"
                special[before] = DayInfo(before, True, "shortened", reason, prov, shortened=True)
