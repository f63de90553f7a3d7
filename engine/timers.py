"""Scheduling the working-day timers of a step (firing them is the sweeper's work).

- send by: 1 working day from registration / from the step becoming ready (298-п п.10),
  counted in the sender's region;
- answer by: 5 working days from receipt (298-п п.11, п.12), counted in the agency's region;
- the ladder: a reminder N working days before the answer deadline (level 0), overdue at
  the deadline (level 1), escalation M working days after it (level 2).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pendulum
from sqlmodel import Session, col, select

import calendars
from engine import audit
from models.routes import Step
from models.templates import Ladder
from models.timers import Timer, TimerKind, TimerStatus

REMINDER_LOCAL_HOUR = 9
"""Reminders go out at 09:00 local time of the agency's working day."""


def schedule_send_deadline(session: Session, step: Step, *, region: str) -> None:
    """The send-by timer of a step that has become ready (298-п п.10)."""
    assert step.send_by is not None and step.send_by_date is not None
    assert step.ready_at is not None
    session.add(
        Timer(
            step_id=step.id, route_id=step.route_id, kind=TimerKind.send_overdue,
            deadline_version=0, due_at=step.send_by, due_date=step.send_by_date,
            region=region, working_days=1, anchor_at=step.ready_at,
        )
    )


def answer_timers(
    step: Step, *, region: str, anchor_at: datetime, answer_days: int, ladder: Ladder,
    version: int,
) -> list[Timer]:
    """The ladder's three timers for the answer deadline ``step.answer_by`` (pure)."""
    assert step.answer_by is not None and step.answer_by_date is not None
    cal = calendars.get_calendar(region)
    out: list[Timer] = []
    if ladder.reminder_days_before > 0:
        day = cal.sub_working_days(step.answer_by_date, ladder.reminder_days_before)
        at = pendulum.datetime(day.year, day.month, day.day, REMINDER_LOCAL_HOUR,
                               tz=cal.timezone).in_timezone("UTC")
        if at > anchor_at:
            out.append(Timer(
                step_id=step.id, route_id=step.route_id, kind=TimerKind.answer_reminder,
                deadline_version=version, due_at=at, due_date=day, region=region,
                working_days=answer_days, anchor_at=anchor_at,
            ))
    out.append(Timer(
        step_id=step.id, route_id=step.route_id, kind=TimerKind.answer_overdue,
        deadline_version=version, due_at=step.answer_by, due_date=step.answer_by_date,
        region=region, working_days=answer_days, anchor_at=anchor_at,
    ))
    esc = calendars.deadline(step.answer_by - timedelta(microseconds=1),
                             ladder.escalate_after_days, region)
    out.append(Timer(
        step_id=step.id, route_id=step.route_id, kind=TimerKind.answer_escalation,
        deadline_version=version, due_at=esc.due_at, due_date=esc.due_date, region=region,
        working_days=answer_days, anchor_at=anchor_at,
    ))
    return out


def cancel_pending(session: Session, step_id: str, *, reason: str, now: datetime,
                   actor: str = "system:timers", kinds: list[TimerKind] | None = None) -> int:
    """Cancel the step's pending timers (an answer came, the step was closed...), with an
    audit record for each."""
    stmt = select(Timer).where(col(Timer.step_id) == step_id,
                               col(Timer.status) == TimerStatus.pending)
    if kinds:
        stmt = stmt.where(col(Timer.kind).in_(kinds))
    # timers are always flushed when created (see engine.routes._start_step), so the read
    # needs no autoflush of the unrelated pending changes
    with session.no_autoflush:
        rows = list(session.exec(stmt))
    for t in rows:
        t.status = TimerStatus.cancelled
        t.cancelled_reason = reason
        session.add(t)
        audit.record(session, at=now, actor=actor, entity="timer", entity_id=str(t.id),
                     route_id=t.route_id, action="cancelled",
                     before={"status": TimerStatus.pending.value},
                     after={"status": TimerStatus.cancelled.value, "kind": t.kind.value,
                            "deadline_version": t.deadline_version}, reason=reason)
    return len(rows)
