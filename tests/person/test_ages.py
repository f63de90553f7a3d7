"""Ages on a date, the 29 February birthday, working age (400-ФЗ appendix 6)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from models.ages import Sex, WorkingAge, age_on, anniversary, months_between, retirement_age_months


def test_age_turns_on_the_birthday() -> None:
    born = date(2012, 1, 12)
    assert age_on(born, date(2026, 1, 11)) == 13
    assert age_on(born, date(2026, 1, 12)) == 14


def test_leap_day_birthday_is_28_february_in_common_years() -> None:
    born = date(2008, 2, 29)
    assert anniversary(born, 18) == date(2026, 2, 28)
    assert age_on(born, date(2026, 2, 27)) == 17
    assert age_on(born, date(2026, 2, 28)) == 18
    assert age_on(born, date(2028, 2, 29)) == 20


def test_months_lived() -> None:
    born = date(2023, 1, 31)
    assert months_between(born, date(2026, 1, 30)) == 35
    assert months_between(born, date(2026, 1, 31)) == 36
    assert months_between(born, date(2023, 2, 28)) == 1  # the month has no 31st


def test_retirement_ages_of_the_transition() -> None:
    assert retirement_age_months(Sex.male, date(1958, 6, 1)) == 60 * 12
    assert retirement_age_months(Sex.male, date(1959, 6, 1)) == 60 * 12 + 6
    assert retirement_age_months(Sex.male, date(1960, 6, 1)) == 61 * 12 + 6
    assert retirement_age_months(Sex.male, date(1961, 6, 1)) == 63 * 12
    assert retirement_age_months(Sex.male, date(1962, 6, 1)) == 64 * 12
    assert retirement_age_months(Sex.male, date(1963, 6, 1)) == 65 * 12
    assert retirement_age_months(Sex.female, date(1967, 6, 1)) == 59 * 12
    assert retirement_age_months(Sex.female, date(1968, 6, 1)) == 60 * 12


def test_working_age_bounds() -> None:
    rule = WorkingAge()
    born = date(1962, 3, 10)  # a man: 64 years
    assert rule.upper_bound(Sex.male, born) == date(2026, 3, 10)
    assert rule.includes(Sex.male, born, date(2026, 3, 9))
    assert not rule.includes(Sex.male, born, date(2026, 3, 10))
    teen = date(2010, 1, 12)
    assert not rule.includes(Sex.female, teen, date(2026, 1, 11))
    assert rule.includes(Sex.female, teen, date(2026, 1, 12))
    half = date(1960, 8, 31)  # 61 and a half: ends on the last day of February 2022
    assert rule.upper_bound(Sex.male, half) == date(2022, 2, 28)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)),
       st.integers(min_value=0, max_value=30000))
def test_age_grows_by_one_on_each_anniversary(born: date, days: int) -> None:
    on = born + timedelta(days=days)
    years = age_on(born, on)
    assert anniversary(born, years) <= on < anniversary(born, years + 1)
