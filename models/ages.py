"""Ages on a date, the 18th birthday, and working age (pure functions of dates).

A person reaches an age on their birthday; a person born on 29 February reaches it on 28
February of a common year — the end of a term counted in years falls on the last day of the
month when the month has no such day (Civil Code art. 192 п.3, read by analogy).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Sex(StrEnum):
    """Sex as recorded in the identity document."""

    male = "male"
    female = "female"


def anniversary(born: date, years: int) -> date:
    """The day a person born on ``born`` reaches ``years`` full years (29 Feb → 28 Feb)."""
    year = born.year + years
    day = min(born.day, calendar.monthrange(year, born.month)[1])
    return date(year, born.month, day)


def age_on(born: date, on: date) -> int:
    """Full years of a person born on ``born`` on the date ``on`` (0 before the first birthday)."""
    years = on.year - born.year
    return years if on >= anniversary(born, years) else years - 1


def months_between(born: date, on: date) -> int:
    """Full months lived on ``on`` (for ages given in months, e.g. early help)."""
    months = (on.year - born.year) * 12 + on.month - born.month
    if on.day < born.day and on.day < calendar.monthrange(on.year, on.month)[1]:
        months -= 1
    return months


ADULT_AGE = 18
"""Civil Code art. 21: full legal capacity at 18; the category "disabled child" ends then."""

WORKING_AGE_FROM = 16
"""Labour Code art. 63: an employment contract from the age of 16."""

_BASE_RETIREMENT_AGE = {Sex.male: 60, Sex.female: 55}
# 400-ФЗ appendix 6 (as amended by 350-ФЗ of 03.10.2018): months added to the base age by the
# year the base age is reached; 350-ФЗ art. 10 ч.3 lets those reaching it in 2019 and 2020
# retire six months earlier (hence 6 and 18 rather than 12 and 24).
_RETIREMENT_INCREMENT_MONTHS = {2019: 6, 2020: 18, 2021: 36, 2022: 48}
_FULL_INCREMENT_MONTHS = 60


def retirement_age_months(sex: Sex, born: date) -> int:
    """The general retirement age in months for a person of ``sex`` born on ``born``.

    400-ФЗ art. 8 ч.1 with appendix 6: 65 for men and 60 for women once the transition ends
    (men born 1963+, women born 1968+); earlier birth years get the transitional ages.
    """
    base = _BASE_RETIREMENT_AGE[sex]
    reached = born.year + base
    if reached < 2019:
        extra = 0
    else:
        extra = _RETIREMENT_INCREMENT_MONTHS.get(reached, _FULL_INCREMENT_MONTHS)
    return base * 12 + extra


@dataclass(frozen=True)
class WorkingAge:
    """Working age (трудоспособный возраст): from ``from_years`` up to the retirement age.

    Used by 298-п Регламент п.3 (social employment: disabled people of working age). The lower
    bound is Labour Code art. 63 (16); the upper bound is the general retirement age (400-ФЗ
    art. 8 and appendix 6). Earlier retirement some disabled people have (400-ФЗ art. 32) is
    not taken into account: it is an entitlement, it does not end their working age.
    """

    from_years: int = WORKING_AGE_FROM

    def upper_bound(self, sex: Sex, born: date) -> date:
        """The first day a person is no longer of working age (reaching the retirement age)."""
        months = retirement_age_months(sex, born)
        years, rest = divmod(months, 12)
        month_index = born.month - 1 + rest
        year = born.year + years + month_index // 12
        month = month_index % 12 + 1
        day = min(born.day, calendar.monthrange(year, month)[1])
        return date(year, month, day)

    def includes(self, sex: Sex, born: date, on: date) -> bool:
        """Whether the person is of working age on the date ``on``."""
        return age_on(born, on) >= self.from_years and on < self.upper_bound(sex, born)
