"""Property tests: add, sub and delta agree and always land on working days."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from calendars import get_calendar

REGIONS = st.sampled_from(["39", "16", "02", "77"])
DAYS = st.dates(min_value=date(2002, 1, 1), max_value=date(2098, 12, 31))  # ±400 days fit
STEPS = st.integers(min_value=-400, max_value=400)


@settings(max_examples=400, deadline=None)
@given(region=REGIONS, day=DAYS, n=STEPS)
def test_add_lands_on_working_day_and_delta_agrees(region: str, day: date, n: int) -> None:
    cal = get_calendar(region)
    result = cal.add_working_days(day, n)
    if n == 0:
        assert result == day
        return
    assert cal.is_working_day(result)
    assert (result > day) == (n > 0)
    if n > 0:
        assert cal.working_days_between(day, result) == n
        assert cal.get_working_days_delta(day, result) == n
        assert cal.get_working_days_delta(result, day) == n  # order does not matter
    else:
        # the |n|-th working day before `day`: (result, day) holds |n| - 1 working days,
        # plus `day` itself when it is working
        back = cal.working_days_between(result, day)
        assert back == -n - 1 + cal.is_working_day(day)
        assert cal.working_days_between(day, result) == -back
        # workalendar's include_start counts `result` (a working day) as well
        assert cal.get_working_days_delta(day, result, include_start=True) == back + 1


@settings(max_examples=400, deadline=None)
@given(region=REGIONS, day=DAYS, n=st.integers(min_value=0, max_value=400))
def test_sub_is_add_negated(region: str, day: date, n: int) -> None:
    cal = get_calendar(region)
    assert cal.sub_working_days(day, n) == cal.add_working_days(day, -n)


@settings(max_examples=400, deadline=None)
@given(region=REGIONS, a=DAYS, b=DAYS)
def test_between_antisymmetric_and_add_inverts_it(region: str, a: date, b: date) -> None:
    cal = get_calendar(region)
    between = cal.working_days_between(a, b)
    assert between == -cal.working_days_between(b, a)
    if b > a and cal.is_working_day(b) and between > 0:
        assert cal.add_working_days(a, between) == b


@settings(max_examples=400, deadline=None)
@given(region=REGIONS, a=DAYS, b=DAYS, include_start=st.booleans())
def test_delta_is_workalendar_semantics(
    region: str, a: date, b: date, include_start: bool
) -> None:
    cal = get_calendar(region)
    delta = cal.get_working_days_delta(a, b, include_start)
    assert delta >= 0
    assert delta == cal.get_working_days_delta(b, a, include_start)  # order-free
    lo = min(a, b)
    if a == b:
        assert delta == 0  # workalendar returns 0 early, even with include_start
    else:
        extra = 1 if include_start and cal.is_working_day(lo) else 0
        assert delta == abs(cal.working_days_between(a, b)) + extra


@settings(max_examples=200, deadline=None)
@given(region=REGIONS, day=DAYS, n=st.integers(min_value=1, max_value=60))
def test_add_matches_day_by_day_count(region: str, day: date, n: int) -> None:
    cal = get_calendar(region)
    d, left = day, n
    while left:
        d = date.fromordinal(d.toordinal() + 1)
        left -= cal.is_working_day(d)
    assert cal.add_working_days(day, n) == d
    assert cal.sub_working_days(d, n) <= day
