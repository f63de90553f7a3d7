"""Scheduling the working-day timers of a step (firing them is the sweeper's work).

Each deadline of a step (``DeadlineKind``) has its ladder of timers:

- send by: 1 working day from registration / from the step becoming ready (298-п Порядок
  п.10), counted in the sender's region: ``send_overdue`` at the deadline (level 1),
  ``send_escalation`` some working days later (level 2);
- answer by: 5 working days from receipt (298-п Порядок п.11, Регламент п.12), counted in
  the agency's region: ``answer_reminder`` N working days before (level 0, 09:00 local),
  ``answer_overdue`` at the deadline (level 1), ``answer_escalation`` M working days after
  (level 2);
- complete by: the ИПРА measure's execution deadline (545н: the ИПРА lists each measure with
  its executor and deadline), or the template's N working days from registration (363н
  п.10б): ``complete_overdue`` at the end of that day (level 1), ``complete_escalation`` M
  working days after (level 2).

Every timer records the calendar data version its due time was computed with
(``Timer.calendar_version``), so a process still holding old calendar data leaves timers the
sweeper recognises and recomputes (``engine.routes.recompute``). Creating and cancelling a timer
each leave an audit record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import pendulum
from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

import calendars
from engine.infra import audit
from models.routes import Step
from models.templates import Ladder
from models.timers import DeadlineKind, Timer, TimerKind, TimerStatus

REMINDER_LOCAL_HOUR = 9
"""Reminders go out at 09:00 local time of the agency's working day."""

SYSTEM = "system:timers"

_TABLE = Timer.__table__  # type: ignore[attr-defined]
_INSERT = insert(_TABLE)
_INSERT_RETURNING_IDS = _INSERT.returning(_TABLE.c.id, sort_by_parameter_order=True)


def end_of_day(day: date, region: str) -> calendars.Deadline:
    """A deadline on a fixed calendar day (an ИПРА's «срок исполнения»): it ends at local
    midnight after ``day`` in ``region``'s time zone."""
    cal = calendars.get_calendar(region)
    nxt = day + timedelta(days=1)
    at = pendulum.datetime(nxt.year, nxt.month, nxt.day, tz=cal.timezone).in_timezone("UTC")
    return calendars.Deadline(due_date=day, due_at=at, region=cal.code, timezone=cal.timezone,
                              provisional=cal.is_provisional(day))


def compute_deadline(*, anchor_at: datetime, working_days: int, region: str,
                     fixed_date: date | None = None) -> calendars.Deadline:
    """``working_days`` working days after ``anchor_at`` in ``region`` (298-п п.10–12);
    ``working_days == 0`` means a fixed day (``fixed_date``, e.g. from the ИПРА)."""
    if working_days == 0:
        assert fixed_date is not None, "a fixed-day deadline needs its day"
        return end_of_day(fixed_date, region)
    return calendars.deadline(anchor_at, working_days, region)


def after_deadline(due: calendars.Deadline, days: int) -> calendars.Deadline:
    """The end of the ``days``-th working day after the deadline's last day (level 2)."""
    return calendars.deadline(due.due_at - timedelta(microseconds=1), days, due.region)


def step_deadline(step: Step, kind: DeadlineKind) -> tuple[datetime | None, date | None]:
    """The step's current (instant, day) of a deadline; complete-by keeps only the day."""
    if kind is DeadlineKind.send_by:
        return step.send_by, step.send_by_date
    if kind is DeadlineKind.answer_by:
        return step.answer_by, step.answer_by_date
    return None, step.complete_by_date


def set_step_deadline(step: Step, kind: DeadlineKind, due: calendars.Deadline) -> None:
    if kind is DeadlineKind.send_by:
        step.send_by, step.send_by_date = due.due_at, due.due_date
    elif kind is DeadlineKind.answer_by:
        step.answer_by, step.answer_by_date = due.due_at, due.due_date
    else:
        step.complete_by_date = due.due_date


class StepRef(Protocol):
    """What scheduling a step's timers reads of it (a ``Step`` row, or the bulk
    registration's plain record of one)."""

    @property
    def id(self) -> str: ...
    @property
    def route_id(self) -> str: ...


class AwaitingStepRef(StepRef, Protocol):
    @property
    def answer_by(self) -> datetime | None: ...
    @property
    def answer_by_date(self) -> date | None: ...
    @property
    def deadline_provisional(self) -> bool: ...


@dataclass(frozen=True)
class TimerSpec:
    """A timer to be scheduled (a row of ``timer`` not yet inserted)."""

    step_id: str
    route_id: str
    kind: TimerKind
    deadline_version: int
    due_at: datetime
    due_date: date
    region: str
    working_days: int
    anchor_at: datetime
    calendar_version: str


def _timer(step: StepRef, kind: TimerKind, *, version: int, at: datetime, day: date, region: str,
           working_days: int, anchor_at: datetime) -> TimerSpec:
    return TimerSpec(step_id=step.id, route_id=step.route_id, kind=kind,
                     deadline_version=version, due_at=at, due_date=day, region=region,
                     working_days=working_days, anchor_at=anchor_at,
                     calendar_version=calendars.data_version())


def ladder_timers(
    kind: DeadlineKind, step: StepRef, *, due: calendars.Deadline, anchor_at: datetime,
    working_days: int, ladder: Ladder, version: int,
) -> list[TimerSpec]:
    """The timers of one deadline ``due`` (pure): the reminder (answer-by only; not when its
    time is not after ``anchor_at``), overdue at the deadline, escalation after it."""
    region = due.region
    out: list[TimerSpec] = []
    if kind is DeadlineKind.answer_by and ladder.reminder_days_before > 0:
        cal = calendars.get_calendar(region)
        day = cal.sub_working_days(due.due_date, ladder.reminder_days_before)
        at = pendulum.datetime(day.year, day.month, day.day, REMINDER_LOCAL_HOUR,
                               tz=cal.timezone).in_timezone("UTC")
        if at > anchor_at:
            out.append(_timer(step, TimerKind.answer_reminder, version=version, at=at, day=day,
                              region=region, working_days=working_days, anchor_at=anchor_at))
    overdue, escalation = {
        DeadlineKind.send_by: (TimerKind.send_overdue, TimerKind.send_escalation),
        DeadlineKind.answer_by: (TimerKind.answer_overdue, TimerKind.answer_escalation),
        DeadlineKind.complete_by: (TimerKind.complete_overdue, TimerKind.complete_escalation),
    }[kind]
    out.append(_timer(step, overdue, version=version, at=due.due_at, day=due.due_date,
                      region=region, working_days=working_days, anchor_at=anchor_at))
    esc = after_deadline(due, ladder.escalate_after_days)
    out.append(_timer(step, escalation, version=version, at=esc.due_at, day=esc.due_date,
                      region=region, working_days=working_days, anchor_at=anchor_at))
    return out


def answer_timers(
    step: AwaitingStepRef, *, region: str, anchor_at: datetime, answer_days: int, ladder: Ladder,
    version: int,
) -> list[TimerSpec]:
    """The ladder's timers for the answer deadline ``step.answer_by`` (pure)."""
    assert step.answer_by is not None and step.answer_by_date is not None
    cal = calendars.get_calendar(region)
    due = calendars.Deadline(due_date=step.answer_by_date, due_at=step.answer_by,
                             region=cal.code, timezone=cal.timezone,
                             provisional=step.deadline_provisional)
    return ladder_timers(DeadlineKind.answer_by, step, due=due, anchor_at=anchor_at,
                         working_days=answer_days, ladder=ladder, version=version)


_NEXT_VERSION = (select(func.coalesce(func.max(_TABLE.c.deadline_version) + 1, 0))
                 .where(_TABLE.c.step_id == bindparam("step_id")))


def latest_version_of(step_id: Any) -> Any:
    """A scalar subquery: the step's latest deadline version (-1: none yet), for a caller
    that reads its step after taking the step's (or its route's) lock and saves the
    ``next_version`` statement: ``version = latest + 1``."""
    return (select(func.coalesce(func.max(_TABLE.c.deadline_version), -1))
            .where(_TABLE.c.step_id == step_id).scalar_subquery())


def next_version(session: Session, step_id: str) -> int:
    """A new deadline version of the step (one counter over all its deadlines).

    One Core statement on the session's connection: timers are always written when they
    are created (``add_timers``), so no flush is needed and no row is loaded."""
    return int(session.connection().execute(_NEXT_VERSION, {"step_id": step_id}).scalar_one())


def add_timers(session: Session, timers: Iterable[TimerSpec], *, now: datetime,
               actor: str = SYSTEM, reason: str | None = None) -> list[int]:
    """Insert the timers (at once, so later conditional updates see them) with an audit
    record ``scheduled`` each; return their ids.

    One multi-row INSERT … RETURNING, not ORM objects: a route transition schedules several
    timers and never reads them back in the same transaction."""
    specs = list(timers)
    if not specs:
        return []
    rows = [{"step_id": t.step_id, "route_id": t.route_id, "kind": t.kind,
             "deadline_version": t.deadline_version, "due_at": t.due_at, "due_date": t.due_date,
             "region": t.region, "working_days": t.working_days, "anchor_at": t.anchor_at,
             "calendar_version": t.calendar_version, "status": TimerStatus.pending}
            for t in specs]
    ids = [int(r[0]) for r in session.connection().execute(_INSERT_RETURNING_IDS, rows)]
    audit.record_many(session, at=now, actor=actor, entries=[audit.Entry(
        entity="timer", entity_id=str(tid), route_id=t.route_id, action="scheduled",
        after={"step_id": t.step_id, "kind": t.kind.value,
               "deadline_version": t.deadline_version, "due_at": t.due_at,
               "due_date": t.due_date, "region": t.region,
               "calendar_version": t.calendar_version}, reason=reason)
        for tid, t in zip(ids, specs, strict=True)])
    return ids


_CANCEL = (update(_TABLE)
           .where(_TABLE.c.step_id == bindparam("of_step"),
                  _TABLE.c.status == TimerStatus.pending)
           .values(status=TimerStatus.cancelled, cancelled_reason=bindparam("reason"))
           .returning(_TABLE.c.id, _TABLE.c.kind, _TABLE.c.deadline_version,
                      _TABLE.c.route_id))
_CANCEL_KINDS = _CANCEL.where(_TABLE.c.kind.in_(bindparam("kinds", expanding=True)))


def cancel_pending(session: Session, step_id: str, *, reason: str, now: datetime,
                   actor: str = SYSTEM, kinds: Iterable[TimerKind] | None = None) -> int:
    """Cancel the step's pending timers (of ``kinds``; None: all), with an audit record for
    each one actually cancelled.

    A conditional ``UPDATE … WHERE status = 'pending'``: a timer that a sweeper fired
    meanwhile stays fired (its row lock makes this statement wait for the sweeper's commit,
    and PostgreSQL then re-checks the condition), it is never overwritten to cancelled.
    """
    kind_list = list(kinds) if kinds is not None else None
    params: dict[str, object] = {"of_step": step_id, "reason": reason[:2000]}
    if kind_list is not None:
        if not kind_list:
            return 0
        params["kinds"] = kind_list
    # timers are written when created (add_timers): no flush, and no ORM execution
    rows = list(session.connection().execute(
        _CANCEL if kind_list is None else _CANCEL_KINDS, params))
    for r in rows:  # keep loaded timers truthful
        obj = session.identity_map.get(identity_key(Timer, r[0]))
        if obj is not None:
            session.expire(obj)
    audit.record_many(session, at=now, actor=actor, entries=[audit.Entry(
        entity="timer", entity_id=str(tid), route_id=route_id, action="cancelled",
        before={"status": TimerStatus.pending.value},
        after={"status": TimerStatus.cancelled.value, "kind": TimerKind(kind).value,
               "deadline_version": version}, reason=reason)
        for tid, kind, version, route_id in sorted(rows, key=lambda r: r[0])])
    return len(rows)


def pending_of(session: Session, step_id: str,
               kinds: Iterable[TimerKind] | None = None) -> list[Timer]:
    """The step's pending timers (of ``kinds``), oldest deadline version first."""
    stmt = select(Timer).where(Timer.step_id == step_id, Timer.status == TimerStatus.pending)
    if kinds is not None:
        stmt = stmt.where(col(Timer.kind).in_(list(kinds)))
    return list(session.exec(stmt.order_by(col(Timer.deadline_version), col(Timer.id))))
