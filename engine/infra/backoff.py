"""One retry backoff for the whole product: exponential, capped, with jitter.

Every retry — a request to an agency, a notification, a Prefect mirror update, a Prefect call
refused as busy, a sweep waiting for a locked step, a simulated agency's answer — waits
``backoff_seconds(attempt, base=…, cap=…)``: ``base · 2^(attempt-1)``, capped at ``cap``, then
spread by ±``jitter`` (10 % by default) so that many retries started together do not come
back together. ``retry_async`` repeats one awaitable call with those delays.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Spread of a delay around its nominal value (0.1: ±10 %).
JITTER = 0.1


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: float = JITTER,
                    rng: Callable[[], float] = random.random) -> float:
    """The wait before retrying after the ``attempt``-th failure (1, 2, …): ``base``,
    ``2·base``, ``4·base`` … capped at ``cap``, times a factor in ``[1-jitter, 1+jitter]``
    (never above ``cap``)."""
    if base < 0 or cap < 0:
        raise ValueError("base, cap: must not be negative (seconds)")
    if not 0 <= jitter < 1:
        raise ValueError("jitter: must be in [0, 1)")
    nominal = min(cap, base * 2.0 ** min(max(0, attempt - 1), 62))
    return float(min(cap, nominal * (1 - jitter + 2 * jitter * rng())))


async def retry_async(fn: Callable[[], Awaitable[T]], *, attempts: int, base: float,
                      cap: float, retry_on: Callable[[BaseException], bool],
                      on_attempt: Callable[[], None] | None = None) -> T:
    """Await ``fn()``; while it raises an exception ``retry_on`` accepts, wait
    ``backoff_seconds`` and call it again, at most ``attempts`` times in all (then the last
    exception propagates). ``on_attempt`` is called before each call (counting calls)."""
    if attempts < 1:
        raise ValueError("attempts: must be at least 1")
    for attempt in range(1, attempts + 1):
        if on_attempt is not None:
            on_attempt()
        try:
            return await fn()
        except Exception as exc:
            if attempt == attempts or not retry_on(exc):
                raise
        await asyncio.sleep(backoff_seconds(attempt, base=base, cap=cap))
    raise AssertionError("unreachable")
