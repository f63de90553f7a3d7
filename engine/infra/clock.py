"""Business time: a clock the tests and the demo can move.

Every business rule (deadlines, timers, lateness) reads ``Clock.now()``; infrastructure
(job leases, retry backoff, webhook replay windows) uses real time. The movable clock lives
in the database (``clock_state``) so that the API, the workers and the sweepers of one
installation agree on what time it is.

Production runs on real time: with ``REHAB_ENVIRONMENT=production`` the business clock is
the system clock (:func:`make_clock`), and a process refuses to start while the database
holds a shifted or frozen clock (:func:`require_real_clock`) — a deadline counted from a
moved clock would be wrong in law (298-п Порядок п.10, п.11 count real working days).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import pendulum
from sqlalchemy import Engine, select
from sqlmodel import Session

import calendars
from engine.infra.db import make_engine
from models.clock import ClockState
from models.types import utcnow

if TYPE_CHECKING:
    from engine.infra.settings import Settings


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return utcnow()


_STATE = ClockState.__table__  # type: ignore[attr-defined]
_READ = select(_STATE.c.offset_seconds, _STATE.c.frozen_at).where(_STATE.c.id == 1)


class DbClock:
    """Real time shifted (or frozen) by the ``clock_state`` row; re-read at most every
    ``ttl`` seconds of real time (``refresh()`` forces it)."""

    def __init__(self, engine: Engine, ttl: float = 0.05) -> None:
        self._engine = engine
        # reads go through a deferred-begin engine: reading the time never waits for writers
        self._reader = make_engine(engine.url.render_as_string(hide_password=False),
                                   read_only=True) if engine.dialect.name == "sqlite" else engine
        self._ttl = ttl
        self._read_at = -1e9
        self._offset = 0.0
        self._frozen: datetime | None = None

    def refresh(self) -> None:
        # one Core statement (no session): a worker reads the time once a batch
        with self._reader.connect() as conn:
            row = conn.execute(_READ).first()
        self._offset = float(row[0]) if row else 0.0
        self._frozen = row[1] if row else None
        self._read_at = time.monotonic()

    def now(self) -> datetime:
        if time.monotonic() - self._read_at > self._ttl:
            self.refresh()
        if self._frozen is not None:
            return self._frozen
        return utcnow() + timedelta(seconds=self._offset)

    # -- moving it ---------------------------------------------------------------------
    def _write(self, frozen_at: datetime | None, offset: float) -> None:
        with Session(self._engine) as s:
            row = s.get(ClockState, 1) or ClockState(id=1)
            row.frozen_at = frozen_at
            row.offset_seconds = offset
            s.add(row)
            s.commit()
        self.refresh()

    def freeze(self, at: datetime) -> None:
        """Stop business time at ``at`` (aware)."""
        self._write(at, 0.0)

    def set(self, at: datetime, *, frozen: bool = True) -> None:
        """Jump to ``at``; frozen there, or running on from there."""
        if frozen:
            self._write(at, 0.0)
        else:
            self._write(None, (at - utcnow()).total_seconds())

    def advance(self, delta: timedelta) -> datetime:
        """Move business time forward by ``delta``; return the new now."""
        self.refresh()
        if self._frozen is not None:
            self._write(self._frozen + delta, 0.0)
        else:
            self._write(None, self._offset + delta.total_seconds())
        return self.now()

    def advance_working_days(self, n: int, region: str = calendars.DEFAULT_REGION) -> datetime:
        """Move to the same local time of day ``n`` working days later in ``region``."""
        cal = calendars.get_calendar(region)
        local = pendulum.instance(self.now()).in_timezone(cal.timezone)
        target_day = cal.add_working_days(local.date(), n)
        target = pendulum.datetime(
            target_day.year, target_day.month, target_day.day,
            local.hour, local.minute, local.second, tz=cal.timezone,
        )
        return self.advance(target - local)


class FixedClock:
    """A clock held in memory (pure unit tests)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> datetime:
        self.at = self.at + delta
        return self.at


class ClockNotRealError(RuntimeError):
    """The database holds a shifted or frozen business clock where real time is required."""


def require_real_clock(engine: Engine) -> None:
    """Raise :class:`ClockNotRealError` (one line naming the row and what to do) when the
    ``clock_state`` row shifts or freezes business time."""
    with Session(engine) as s:
        row = s.get(ClockState, 1)
    if row is None or (row.frozen_at is None and not row.offset_seconds):
        return
    what = (f"frozen at {row.frozen_at.isoformat()}" if row.frozen_at is not None
            else f"shifted by {row.offset_seconds:+.0f} s")
    raise ClockNotRealError(
        f"clock_state: business time is {what}; production runs on the system clock "
        "(reset it: UPDATE clock_state SET frozen_at = NULL, offset_seconds = 0)")


def make_clock(engine: Engine, settings: Settings) -> Clock:
    """The business clock of a process: the system clock in production (after checking the
    database holds no moved clock), else the movable ``DbClock``."""
    if settings.environment == "production":
        require_real_clock(engine)
        return SystemClock()
    return DbClock(engine, ttl=settings.clock_cache_seconds)
