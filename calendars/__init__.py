"""Production calendars of the Russian Federation and its regions, fed by ``calendars/data``.

Every legal deadline of the product is counted in working days (Government Resolution 298-п,
п. 10–12; Labour Code art. 95, 112; Civil Code art. 191, 193). See ``docs/calendars.md``.
"""

from __future__ import annotations

from calendars.days import DayInfo, DayKind
from calendars.deadlines import Deadline, deadline, working_days_late
from calendars.errors import (
    MAX_YEAR,
    MIN_YEAR,
    CalendarError,
    UnknownRegionError,
    YearOutOfRangeError,
)
from calendars.region_calendar import RegionCalendar, YearSummary
from calendars.regions import RegionInfo
from calendars.registry import (
    DEFAULT_REGION,
    data_version,
    get_calendar,
    known_regions,
    reload_data,
)

__all__ = [
    "DEFAULT_REGION",
    "MAX_YEAR",
    "MIN_YEAR",
    "CalendarError",
    "DayInfo",
    "DayKind",
    "Deadline",
    "RegionCalendar",
    "RegionInfo",
    "UnknownRegionError",
    "YearOutOfRangeError",
    "YearSummary",
    "data_version",
    "deadline",
    "get_calendar",
    "known_regions",
    "reload_data",
    "working_days_late",
]
