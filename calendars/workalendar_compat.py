"""A ``workalendar.core.Calendar`` fed by our data, for code that expects a workalendar calendar.

workalendar's own ``Russia`` calendar is wrong for 2024–2027 (it lacks the transfer decrees and
working Saturdays), so only its interface is used: ``holidays()``, ``is_working_day()``,
``add_working_days()`` etc. answer from :class:`calendars.RegionCalendar`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from workalendar.core import SAT, SUN, Calendar

from calendars.region_calendar import RegionCalendar
from calendars.registry import DEFAULT_REGION, get_calendar


def _as_date(day: date) -> date:
    return day.date() if isinstance(day, datetime) else day


class ProductionCalendar(Calendar):  # type: ignore[misc]
    """workalendar Calendar whose days off come from the product's production calendar."""

    WEEKEND_DAYS = (SAT, SUN)

    def __init__(self, region: str = DEFAULT_REGION, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.region_calendar: RegionCalendar = get_calendar(region)

    @property
    def name(self) -> str:
        return self.region_calendar.name

    def holidays(self, year: int | None = None) -> list[tuple[date, str]]:
        """Non-working days other than plain weekends (holidays, transfers, regional days)."""
        return self.region_calendar.holidays(year or date.today().year)

    def get_calendar_holidays(self, year: int) -> list[tuple[date, str]]:
        return self.holidays(year)

    def is_working_day(
        self,
        day: date,
        extra_working_days: list[date] | None = None,
        extra_holidays: list[date] | None = None,
    ) -> bool:
        """Our data decides; working Saturdays are working (workalendar's base cannot say so)."""
        d = _as_date(day)
        if extra_working_days and d in {_as_date(x) for x in extra_working_days}:
            return True
        if extra_holidays and d in {_as_date(x) for x in extra_holidays}:
            return False
        return self.region_calendar.is_working_day(d)

    def is_holiday(self, day: date, extra_holidays: list[date] | None = None) -> bool:
        d = _as_date(day)
        if extra_holidays and d in {_as_date(x) for x in extra_holidays}:
            return True
        return self.region_calendar.is_holiday(d)

    def add_working_days(
        self,
        day: date,
        delta: int,
        extra_working_days: list[date] | None = None,
        extra_holidays: list[date] | None = None,
        keep_datetime: bool = False,
    ) -> date:
        if extra_working_days or extra_holidays or keep_datetime:
            result: date = super().add_working_days(
                day, delta, extra_working_days, extra_holidays, keep_datetime
            )
            return result
        return self.region_calendar.add_working_days(_as_date(day), delta)

    def sub_working_days(
        self,
        day: date,
        delta: int,
        extra_working_days: list[date] | None = None,
        extra_holidays: list[date] | None = None,
        keep_datetime: bool = False,
    ) -> date:
        return self.add_working_days(
            day, -abs(delta), extra_working_days, extra_holidays, keep_datetime
        )

    def get_working_days_delta(
        self,
        start: date,
        end: date,
        include_start: bool = False,
        extra_working_days: list[date] | None = None,
        extra_holidays: list[date] | None = None,
    ) -> int:
        """workalendar's count (order-free, ``include_start``), from the precomputed table.

        Datetimes are converted with ``.date()`` as workalendar does; with extra days the
        base class's day-by-day loop is used.
        """
        if extra_working_days or extra_holidays:
            result: int = super().get_working_days_delta(
                start, end, include_start, extra_working_days, extra_holidays
            )
            return result
        return self.region_calendar.get_working_days_delta(
            _as_date(start), _as_date(end), include_start
        )
