"""Errors raised by the calendar package and the supported year range."""

from __future__ import annotations

MIN_YEAR = 2000
"""First year the calendar answers for (years without a data file use Labour Code art. 112)."""
MAX_YEAR = 2100
"""Last year the calendar answers for."""


class CalendarError(ValueError):
    """Base error of the calendar package; the message names the field and the rule broken."""


class UnknownRegionError(CalendarError):
    """The region code is not among the shipped regional calendars."""


class YearOutOfRangeError(CalendarError):
    """A date (or a computed date) falls outside MIN_YEAR..MAX_YEAR."""


def check_year(year: int, field: str = "year") -> None:
    """Raise YearOutOfRangeError unless MIN_YEAR <= year <= MAX_YEAR."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise YearOutOfRangeError(
            f"{field}: year {year} is outside the supported range {MIN_YEAR}..{MAX_YEAR}"
        )
