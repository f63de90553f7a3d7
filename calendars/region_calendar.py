"""RegionCalendar: the one calendar API of the product (workalendar-style method names)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from calendars.days import NON_WORKING_KINDS, DayInfo
from calendars.errors import (
    MAX_YEAR,
    MIN_YEAR,
    YearOutOfRangeError,
    check_year,
    require_date,
    require_int,
)
from calendars.regions import RegionInfo
from calendars.tables import DayTable


@dataclass(frozen=True, slots=True)
class YearSummary:
    """Totals of one year of a regional calendar (hours: 40-hour week, art. 91 and art. 95)."""

    year: int
    working_days: int
    days_off: int
    shortened_days: int
    hours_40: int
    provisional: bool
    source: str
    provisional_reasons: tuple[str, ...] = ()
    """Why the year is provisional: the federal reason (no decree) and/or the regional one."""


def _out_of_range(field: str, day: object) -> YearOutOfRangeError:
    return YearOutOfRangeError(
        f"{field}: {day} is outside the supported range {MIN_YEAR}-01-01..{MAX_YEAR}-12-31"
    )


class RegionCalendar:
    """The production calendar of one region: federal data plus the region's own days off.

    Method names and semantics follow ``workalendar.core.Calendar``. All look-ups use the
    precomputed :class:`~calendars.tables.DayTable`; dates outside MIN_YEAR..MAX_YEAR raise
    :class:`YearOutOfRangeError`.

    Arguments are checked: a day must be a ``datetime.date`` — a ``datetime`` is refused, not
    truncated (its ``.date()`` is the date in its own zone, not necessarily the region's; see
    :func:`calendars.errors.require_date`); a count must be an ``int`` and not a ``bool``.
    Anything else raises :class:`CalendarError` (a ``ValueError``) naming the argument.
    ``calendars.workalendar_compat.ProductionCalendar`` keeps workalendar's behaviour of
    converting datetimes with ``.date()``.
    """

    __slots__ = (
        "code", "name", "timezone", "info", "_base", "_size", "_working",
        "_after", "_before", "_work_days", "_table",
    )

    def __init__(self, info: RegionInfo, table: DayTable) -> None:
        self.code: str = info.code
        self.name: str = info.name
        self.timezone: str = info.timezone
        self.info = info
        self._table = table
        self._base = table.base
        self._size = table.size
        self._working = table.working
        self._after = table.after
        self._before = table.before
        self._work_days = table.work_days

    def __repr__(self) -> str:
        return f"RegionCalendar(code={self.code!r}, name={self.name!r}, tz={self.timezone!r})"

    def _index(self, day: date, field: str = "day") -> int:
        if type(day) is not date:
            require_date(day, field)
        i = day.toordinal() - self._base
        if not 0 <= i < self._size:
            raise _out_of_range(field, day)
        return i

    def is_working_day(self, day: date) -> bool:
        """True if ``day`` is a working day (a shortened day is working, Labour Code art. 95)."""
        if type(day) is not date:
            require_date(day, "day")
        i = day.toordinal() - self._base
        if not 0 <= i < self._size:
            raise _out_of_range("day", day)
        return self._working[i] == 1

    def is_holiday(self, day: date) -> bool:
        """True if ``day`` is a non-working holiday or transferred day off (not a plain weekend)."""
        return self.day_info(day).kind in ("holiday", "transfer", "regional_holiday")

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day after ``day`` (before it if ``n`` < 0); ``day`` if n == 0.

        Same semantics as ``workalendar``: ``day`` itself is never counted, so from a Friday
        ``add_working_days(fri, 1)`` is the next Monday, and from a Saturday it is Monday too.
        ``n`` must be an ``int`` (not a bool).
        """
        if type(day) is not date:
            require_date(day, "day")
        if type(n) is not int:
            require_int(n, "n")
        i = day.toordinal() - self._base
        if not 0 <= i < self._size:
            raise _out_of_range("day", day)
        if n > 0:
            k = self._after[i] + n
            if k >= len(self._work_days):
                raise _out_of_range("n", f"{day} + {n} working days")
            return self._work_days[k]
        if n < 0:
            k = self._before[i] + n
            if k < 0:
                raise _out_of_range("n", f"{day} - {-n} working days")
            return self._work_days[k]
        return day

    def sub_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day before ``day`` (``add_working_days(day, -n)``)."""
        if type(n) is not int:
            require_int(n, "n")
        return self.add_working_days(day, -n)

    def get_working_days_delta(
        self, start: date, end: date, include_start: bool = False
    ) -> int:
        """Working days between two dates, exactly as ``workalendar``'s method of this name.

        The order of the dates does not matter (the result is never negative): with
        ``a, b = min(start, end), max(start, end)`` it counts the working days in (a, b], plus
        ``a`` itself when ``include_start`` is true and ``a`` is a working day. When
        ``start == end`` the result is 0 even with ``include_start`` (workalendar returns
        early there). Unlike workalendar, datetimes are refused (see the class doc).

        For a signed count of a period, use :meth:`working_days_between`.
        """
        a = self._index(start, "start")
        b = self._index(end, "end")
        if a == b:
            return 0
        if a > b:
            a, b = b, a
        return self._after[b] - self._after[a] + (1 if include_start and self._working[a] else 0)

    def working_days_between(self, d1: date, d2: date) -> int:
        """Signed number of working days in the half-open interval (d1, d2].

        ``d1`` is not counted, ``d2`` is (a period counted from the day after an event, Civil
        Code art. 191; Labour Code art. 112 decides which days work). If ``d2`` < ``d1`` the
        result is the negated count of (d2, d1], so ``between(a, b) == -between(b, a)`` and
        ``add_working_days(a, between(a, b)) == b`` whenever ``b`` is a working day after ``a``.
        """
        return self._after[self._index(d2, "d2")] - self._after[self._index(d1, "d1")]

    def is_range_provisional(self, d1: date, d2: date) -> bool:
        """True if any day of the closed interval [d1, d2] (either order) is provisional.

        A day is provisional when its year has no approved federal decree (Labour Code
        art. 112 rules only) or the region's own dates for that year are estimates. Pass the
        days an answer depends on: for ``add_working_days(d, n)`` with n > 0 that is
        (d, result], i.e. ``is_range_provisional(d + 1 day, result)``; for n < 0 it is
        [result, d - 1 day]; for :meth:`working_days_between` (d1, d2] likewise.
        """
        a = self._index(d1, "d1")
        b = self._index(d2, "d2")
        first, last = (d1.year, d2.year) if a <= b else (d2.year, d1.year)
        prov = self._table.provisional_years
        return any(y in prov for y in range(first, last + 1))

    def day_info(self, day: date) -> DayInfo:
        """What ``day`` is: working or not, the kind, the reason and whether it is provisional."""
        i = self._index(day)
        d = date.fromordinal(i + self._base)
        info = self._table.special.get(d)
        if info is not None:
            return info
        prov = d.year in self._table.provisional_years
        if d.weekday() >= 5:
            return DayInfo(d, False, "weekend", "Выходной день (суббота/воскресенье)", prov)
        return DayInfo(d, True, "working", "Рабочий день", prov)

    def is_provisional(self, day: date) -> bool:
        """True if ``day``'s status rests on provisional data (no decree or regional dates yet)."""
        self._index(day)
        return day.year in self._table.provisional_years

    def is_year_provisional(self, year: int) -> bool:
        """True if ``year`` of this region rests on provisional data.

        That is: no approved federal transfer decree for the year (only the Labour Code
        art. 112 rules are applied), or — for a region with holidays dated yearly by a
        regional act — no approved regional dates for the year.
        :meth:`provisional_reasons` says which.
        """
        check_year(year)
        return year in self._table.provisional_years

    def provisional_reasons(self, year: int) -> tuple[str, ...]:
        """Why ``year`` is provisional, federal reason first; empty if it is approved."""
        check_year(year)
        return self._table.provisional_reasons.get(year, ())

    def working_days_in_year(self, year: int) -> int:
        """Number of working days in ``year`` (shortened days count as full days)."""
        check_year(year)
        first = date(year, 1, 1).toordinal() - self._base
        last = date(year, 12, 31).toordinal() - self._base
        return self._after[last] - self._before[first] + 1

    def holidays(self, year: int) -> list[tuple[date, str]]:
        """Non-working days of ``year`` other than plain weekends, as (date, reason) pairs.

        Same shape as ``workalendar.core.Calendar.holidays``.
        """
        check_year(year)
        return sorted(
            (d, info.reason)
            for d, info in self._table.special.items()
            if d.year == year and info.kind in NON_WORKING_KINDS
        )

    def working_saturdays(self, year: int) -> list[date]:
        """Weekend days of ``year`` that are working days by a transfer decree."""
        check_year(year)
        return sorted(
            d for d, info in self._table.special.items()
            if d.year == year and info.working and d.weekday() >= 5
        )

    def get_holiday_label(self, day: date) -> str | None:
        """The reason ``day`` is a non-working holiday (Russian), or None.

        As in workalendar: the label of a holiday (Labour Code art. 112 part 1), of a
        transferred day off (art. 112 parts 2 and 5) or of a regional holiday; None for a
        working day and for a plain weekend.
        """
        info = self.day_info(day)
        return info.reason if info.kind in NON_WORKING_KINDS and info.kind != "weekend" else None

    def year_summary(self, year: int) -> YearSummary:
        """Totals of ``year``: working days, days off, shortened days, 40-hour-week norm."""
        check_year(year)
        working = self.working_days_in_year(year)
        total = (date(year, 12, 31) - date(year, 1, 1)).days + 1
        shortened = sum(
            1 for d, info in self._table.special.items() if d.year == year and info.shortened
        )
        return YearSummary(
            year=year,
            working_days=working,
            days_off=total - working,
            shortened_days=shortened,
            hours_40=working * 8 - shortened,
            provisional=year in self._table.provisional_years,
            source=self._table.year_sources.get(year, ""),
            provisional_reasons=self._table.provisional_reasons.get(year, ()),
        )
