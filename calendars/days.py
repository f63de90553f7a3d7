"""What a single day is: the DayInfo record returned by RegionCalendar.day_info."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

DayKind = Literal[
    "working",
    "weekend",
    "holiday",
    "transfer",
    "regional_holiday",
    "working_saturday",
    "shortened",
]

NON_WORKING_KINDS: frozenset[str] = frozenset(
    {"weekend", "holiday", "transfer", "regional_holiday"}
)


@dataclass(frozen=True, slots=True)
class DayInfo:
    """One day of a production calendar.

    kind:
      * ``working`` — an ordinary working weekday;
      * ``weekend`` — Saturday or Sunday (Labour Code art. 111);
      * ``holiday`` — a federal non-working holiday (Labour Code art. 112 part 1);
      * ``transfer`` — a day off moved here by a government decree or by art. 112 part 2;
      * ``regional_holiday`` — a non-working day set by regional law (or moved by it);
      * ``working_saturday`` — a weekend day made working by a transfer decree (art. 112
        part 5); it keeps this kind when it is also shortened;
      * ``shortened`` — an ordinary weekday before a holiday, shortened by one hour (art. 95);
        it is a full working day for deadlines.

    ``shortened`` (the flag) is True for every shortened day, whatever its kind: a working
    Saturday right before a holiday (01.11.2025, 02.11.2024, 20.02.2027) has
    ``kind == "working_saturday"`` and ``shortened == True``.
    """

    day: date
    working: bool
    kind: DayKind
    reason: str
    provisional: bool
    shortened: bool = False
