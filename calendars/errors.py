"""Errors raised by the calendar package, the supported year range and argument checks."""

from __future__ import annotations

from datetime import date, datetime

MIN_YEAR = 2000
"""First year the calendar answers for (years without a data file use Labour Code art. 112)."""
MAX_YEAR = 2100
"""Last year the calendar answers for."""


class CalendarError(ValueError):
    """Base error of the calendar package; the message names the field and the rule broken.

    Also raised for arguments of the wrong type (a string or a datetime where a date is due, a
    float or a bool where an int is due), so callers catch one exception class.
    """


class UnknownRegionError(CalendarError):
    """The region code is not among the shipped regional calendars."""


class YearOutOfRangeError(CalendarError):
    """A date (or a computed date) falls outside MIN_YEAR..MAX_YEAR."""


def require_date(value: object, field: str) -> date:
    """``value`` if it is a calendar date, else CalendarError naming ``field``.

    A ``datetime`` is refused rather than truncated: its ``.date()`` is the date in the
    datetime's own zone, which is not necessarily the date in the region's zone (an event at
    23:30 Kaliningrad time is already the next day in Moscow). Take the local date in the
    region's zone first, or use :func:`calendars.deadline`, which does so. Subclasses of
    ``date`` other than ``datetime`` (e.g. ``pendulum.Date``) are accepted.
    """
    if isinstance(value, datetime):
        raise CalendarError(
            f"{field}: expected a datetime.date, got a datetime ({value!r}); take its local "
            "date in the region's time zone first (or use calendars.deadline)"
        )
    if not isinstance(value, date):
        raise CalendarError(
            f"{field}: expected a datetime.date, got {type(value).__name__} {value!r}"
        )
    return value


def require_int(value: object, field: str) -> int:
    """``value`` if it is an int (not a bool), else CalendarError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CalendarError(
            f"{field}: expected an integer (not bool or float), got {type(value).__name__} "
            f"{value!r}"
        )
    return value


def check_year(year: int, field: str = "year") -> None:
    """Raise YearOutOfRangeError unless MIN_YEAR <= year <= MAX_YEAR (CalendarError if not int)."""
    require_int(year, field)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise YearOutOfRangeError(
            f"{field}: year {year} is outside the supported range {MIN_YEAR}..{MAX_YEAR}"
        )
