"""The timer sweeper: finds due timers and fires each exactly once, in batches.

Reminders are sweepers (a scheduled query by status and due time), not sleeping flow runs:
after a long holiday thousands of timers come due together and are fired one transaction
per batch. Exactly once, with several sweepers at a time: on PostgreSQL the batch is
claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``; on SQLite every transaction begins with
``BEGIN IMMEDIATE`` (engine/infra/db.py), so sweepers take turns. A timer's effects and its
``status = fired`` commit in one transaction, so a crash between finding and firing leaves
the timer pending and the next sweep fires it. Before firing, the timer's step is locked
with ``SKIP LOCKED`` too: a step held by an answer being applied or a supervisor acting is
left for a moment (``busy``) and tried again, so the sweeper never waits holding timer
locks that the other transaction needs (no deadlock), and never fires on a step that is
being answered. Deadlines: 298-п Порядок п.10, п.11, Регламент п.12; the ladder: 298-п
Порядок п.13, Регламент п.17, 363н п.10б.

``rehab sweeper`` runs :class:`SweeperLoop`: it sweeps on its own real-time interval and
needs nothing from Prefect to fire timers. Each sweep's counts are then *reported* by a
``reporter`` given at start-up (the Prefect one lives in ``flows/sweeper.py``): while the
reporter's target is down the reports wait, in order, and catch up when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.escalations import ladder
from engine.infra.backoff import backoff_seconds
from engine.infra.clock import Clock
from engine.routes.recompute import ensure_calendar_current
from engine.routes.recurring import fire_recurrence_guarded
from engine.routes.termination import fire_due_route_timers
from engine.routes.transitions import EngineConfig, mirror_later
from models.timers import Timer, TimerKind, TimerStatus
from models.types import utcnow

log = logging.getLogger("rehab.sweeper")


@dataclass
class SweepResult:
    """What one sweep did: timers fired by kind, stale timers cancelled, batches run."""

    fired: dict[str, int] = field(default_factory=dict)
    stale: int = 0
    busy: int = 0  # timers left pending because their step was held by another transaction
    batches: int = 0
    recomputed: int | None = None  # deadlines moved by a calendar change (None: no change)

    @property
    def total_fired(self) -> int:
        return sum(self.fired.values())

    def as_dict(self) -> dict[str, int]:
        """Counts only (safe for Prefect: identifiers and numbers, no personal data)."""
        out = {f"fired_{k}": v for k, v in sorted(self.fired.items())}
        out.update(fired=self.total_fired, stale=self.stale, busy=self.busy,
                   batches=self.batches, recomputed=self.recomputed or 0)
        return out


def sweep_due_timers(
    engine: Engine, clock: Clock, cfg: EngineConfig, *, sweeper_id: str,
    batch_size: int = 200, max_batches: int | None = None,
    check_calendar: bool = True,
    on_claimed: Callable[[list[int]], None] | None = None,
    before_commit: Callable[[list[int]], None] | None = None,
    busy_retries: int = 8,
) -> SweepResult:
    """Fire every pending timer with ``due_at <= clock.now()``, ``batch_size`` per
    transaction, at most ``max_batches`` batches (None: until none is due).

    ``check_calendar``: first make the open deadlines current with the calendar data
    (``engine.routes.recompute.ensure_calendar_current``). ``on_claimed`` is called with the claimed
    ids inside the batch's transaction, before any step is locked (tests use it to simulate
    a crash between finding and firing); ``before_commit`` with the ids fired, just before
    the batch commits (tests use it to hold a batch open). Timers whose step was busy are
    tried again, after a short real-time pause, up to ``busy_retries`` times in a row; then
    they are left for the next sweep.
    """
    if batch_size < 1:
        raise ValueError("batch_size: must be at least 1")
    result = SweepResult()
    actor = f"system:sweeper:{sweeper_id}"
    if check_calendar:
        result.recomputed = ensure_calendar_current(engine, cfg, now=clock.now())
    retries = 0
    while max_batches is None or result.batches < max_batches:
        now = clock.now()
        busy = 0
        with Session(engine, expire_on_commit=False) as session:
            due = list(session.exec(
                select(Timer)
                .where(Timer.status == TimerStatus.pending, col(Timer.due_at) <= now)
                .order_by(col(Timer.due_at), col(Timer.id))
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            ))
            if not due:
                session.commit()
                break
            if on_claimed is not None:
                on_claimed([t.id for t in due if t.id is not None])
            fired: list[int] = []
            for timer in due:
                if timer.kind is TimerKind.recur_next:  # a recurring step's next check
                    outcome = fire_recurrence_guarded(session, cfg, timer, now=now,
                                                      actor=actor)
                else:
                    outcome = ladder.fire_timer(session, timer, now=now, actor=actor)
                if outcome is ladder.FireOutcome.fired:
                    mirror_later(session, cfg, timer.route_id)  # overdue / escalated
                    key = timer.kind.value
                    result.fired[key] = result.fired.get(key, 0) + 1
                    fired.append(timer.id or 0)
                elif outcome is ladder.FireOutcome.stale:
                    # the mirror may still show what the stale timer promised (a next check)
                    mirror_later(session, cfg, timer.route_id)
                    result.stale += 1
                else:
                    busy += 1
            if before_commit is not None:
                before_commit(fired)
            session.commit()
        result.batches += 1
        if busy == len(due):
            retries += 1
            if retries > busy_retries:
                result.busy += busy
                break
            # real time: a lock is being held
            time.sleep(backoff_seconds(retries + 1, base=0.04, cap=0.5))
            continue
        retries = 0
        if len(due) < batch_size and not busy:
            break
    _sweep_route_timers(engine, clock, cfg, actor=actor, batch_size=batch_size, result=result)
    return result


def _sweep_route_timers(engine: Engine, clock: Clock, cfg: EngineConfig, *, actor: str,
                        batch_size: int, result: SweepResult) -> None:
    """Fire the due timers of whole routes — the ИПРА's end (004 п.13 а) — one batch per
    transaction (``engine.routes.termination.fire_due_route_timers``)."""
    while True:
        with Session(engine, expire_on_commit=False) as session:
            done = fire_due_route_timers(session, cfg, now=clock.now(), actor=actor,
                                         batch_size=batch_size)
            session.commit()
        if done.fired:
            result.fired["ipra_expiry"] = result.fired.get("ipra_expiry", 0) + done.fired
        result.stale += done.stale
        if done.fired + done.stale < batch_size:
            return
        result.batches += 1


# --------------------------------------------------------------------------- the loop
@dataclass(frozen=True)
class SweepReport:
    """One sweep as reported (counts only; real-time instants)."""

    sweeper_id: str
    seq: int
    started_at: datetime
    finished_at: datetime
    counts: dict[str, int]


#: Reports the oldest of the given sweeps, in order; returns how many it reported (0 when its
#: target is unavailable: they wait for the next sweep).
Reporter = Callable[[list[SweepReport]], int]


class SweeperLoop:
    """Fire due timers every ``interval_seconds`` of real time, report each sweep.

    Timers never wait for the reporter: a sweep runs whether or not the last reports went
    out. At most ``max_unreported`` reports wait (the oldest are dropped beyond it, with a
    warning); they are kept in memory, so a restart forgets unreported ones (the timers'
    effects are in our database and its audit records either way)."""

    def __init__(self, engine: Engine, clock: Clock, cfg: EngineConfig, *, sweeper_id: str,
                 interval_seconds: float, batch_size: int = 200,
                 reporter: Reporter | None = None, max_unreported: int = 10_000) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval: must be a positive number of seconds")
        if batch_size < 1:
            raise ValueError("batch_size: must be at least 1")
        self.engine = engine
        self.clock = clock
        self.cfg = cfg
        self.sweeper_id = sweeper_id
        self.interval = interval_seconds
        self.batch_size = batch_size
        self.reporter = reporter
        self.unreported: deque[SweepReport] = deque(maxlen=max_unreported)
        self.sweeps = 0
        self.reported = 0
        self.errors = 0
        self.fired = 0
        #: called after each sweep and report (the process's heartbeat)
        self.after_sweep: Callable[[], None] | None = None

    def sweep_once(self) -> SweepReport:
        started = utcnow()
        result = sweep_due_timers(self.engine, self.clock, self.cfg,
                                  sweeper_id=self.sweeper_id, batch_size=self.batch_size)
        self.sweeps += 1
        self.fired += result.total_fired
        report = SweepReport(self.sweeper_id, self.sweeps, started, utcnow(),
                             result.as_dict())
        if self.reporter is not None:
            if len(self.unreported) == self.unreported.maxlen:
                log.warning("sweeper %s: %d reports wait; the oldest is dropped",
                            self.sweeper_id, len(self.unreported))
            self.unreported.append(report)
        if result.total_fired or result.stale:
            log.info("timer sweep %d: %s", self.sweeps,
                     ", ".join(f"{k}={v}" for k, v in report.counts.items()))
        return report

    def report(self) -> int:
        """Hand the waiting reports to the reporter; return how many went out."""
        if self.reporter is None or not self.unreported:
            return 0
        try:
            n = self.reporter(list(self.unreported))
        except Exception:  # noqa: BLE001 - the reporter's trouble never stops the sweeps
            log.warning("sweeper %s: reporting failed", self.sweeper_id, exc_info=True)
            return 0
        for _ in range(n):
            self.unreported.popleft()
        self.reported += n
        return n

    def run(self, stop: threading.Event) -> None:
        """Sweep and report until ``stop`` is set."""
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                self.sweep_once()
            except Exception:  # noqa: BLE001 - logged and counted; the next sweep tries again
                self.errors += 1
                log.exception("sweeper %s: sweep failed", self.sweeper_id)
            self.report()
            if self.after_sweep is not None:
                try:
                    self.after_sweep()
                except Exception:  # noqa: BLE001 - a heartbeat never stops the sweeps
                    log.warning("sweeper %s: heartbeat failed", self.sweeper_id, exc_info=True)
            stop.wait(max(0.0, self.interval - (time.monotonic() - t0)))
