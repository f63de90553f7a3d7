"""The next occurrence of a recurring step: a timer, never a waiting process.

A recurring step (001 Регламент п.6 пп.8: periodic health monitoring; 000 п.10: the annual
need monitoring) asks its agency again every N working days while the route lives. When an
occurrence is done, the timer of the next one is written in the same transaction (its due
time ``period_days`` working days after the occurrence opened, in the route's region); the
sweeper fires it (``engine.routes.recurring``), which opens a new request with a key of its
own. The route ends the recurrence: its completion cancels the pending timer.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

import calendars
from engine.escalations import timers
from engine.infra import audit
from models.routes import Step
from models.timers import TimerKind

SYSTEM = "system:engine"


def schedule_next(session: Session, step: Step, *, period_days: int, region: str,
                  now: datetime, actor: str = SYSTEM) -> calendars.Deadline:
    """Schedule the step's next occurrence ``period_days`` working days after the current
    one opened (``step.ready_at``; ``now`` if it never did), in the caller's transaction."""
    anchor = step.ready_at or now
    due = calendars.deadline(anchor, period_days, region)
    version = timers.next_version(session, step.id)
    (timer_id,) = timers.add_timers(session, [timers.TimerSpec(
        step_id=step.id, route_id=step.route_id, kind=TimerKind.recur_next,
        deadline_version=version, due_at=due.due_at, due_date=due.due_date, region=region,
        working_days=period_days, anchor_at=anchor,
        calendar_version=calendars.data_version())], now=now, actor=actor)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=step.route_id, action="recurrence_scheduled",
                 after={"next_at": due.due_at, "next_date": due.due_date,
                        "period_days": period_days, "timer_id": timer_id})
    return due
