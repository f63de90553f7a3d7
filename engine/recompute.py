"""Moving the open deadlines of steps: a new calendar decree, or a supervisor's extension.

Deadlines are working days of the acting party's region: send by 1 working day from
registration (298-п Порядок п.10), answer by 5 working days from receipt (298-п Порядок п.11,
Регламент п.12). Each deadline's timers keep its anchor (``Timer.anchor_at``) and length
(``Timer.working_days``), so a deadline can be recomputed from them when the calendar data
changes. A moved deadline gets a new ``deadline_version``: the old pending timers are
cancelled, new ones scheduled, and the move (old → new) goes into the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

import calendars
from engine import audit, ladder, timers
from engine.routes import EngineConfig, _next_deadline_version
from models.routes import Step, StepStatus
from models.templates import get_template
from models.timers import CalendarStamp, Timer, TimerKind, TimerStatus

SYSTEM = "system:recompute"


def deadline_timer(session: Session, step: Step) -> Timer | None:
    """The newest timer that marks the step's running deadline (send-by or answer-by)."""
    if step.status is StepStatus.sending:
        kind = TimerKind.send_overdue
    elif step.status is StepStatus.awaiting:
        kind = TimerKind.answer_overdue
    else:
        return None
    return session.exec(
        select(Timer).where(Timer.step_id == step.id, Timer.kind == kind)
        .order_by(col(Timer.deadline_version).desc())
    ).first()


def set_deadline(
    session: Session, cfg: EngineConfig, step: Step, *, base: Timer, working_days: int,
    now: datetime, actor: str, reason: str, action: str,
) -> tuple[calendars.Deadline, int]:
    """Give the step the deadline ``working_days`` working days after ``base.anchor_at``
    (in ``base.region``): new version, old pending timers cancelled, new ones scheduled.
    Returns (the new deadline, its version). The caller records why in ``reason``."""
    new = calendars.deadline(base.anchor_at, working_days, base.region)
    answer = base.kind is not TimerKind.send_overdue
    old_date = step.answer_by_date if answer else step.send_by_date
    fired_before = {
        t.kind: t for t in session.exec(select(Timer).where(
            Timer.step_id == step.id, Timer.deadline_version == base.deadline_version,
            Timer.status == TimerStatus.fired))
    }
    ladder.cancel_timers(session, step, now=now, actor=actor, reason=f"{action}: {reason}")
    session.flush()
    version = _next_deadline_version(session, step.id)
    if answer:
        step.answer_by, step.answer_by_date = new.due_at, new.due_date
        route_template = get_template(_route_template(session, step))
        fresh = timers.answer_timers(
            step, region=base.region, anchor_at=base.anchor_at, answer_days=working_days,
            ladder=route_template.ladder_for(step.seq, cfg.default_ladder), version=version,
        )
    else:
        step.send_by, step.send_by_date = new.due_at, new.due_date
        fresh = [Timer(step_id=step.id, route_id=step.route_id, kind=TimerKind.send_overdue,
                       deadline_version=version, due_at=new.due_at, due_date=new.due_date,
                       region=base.region, working_days=working_days,
                       anchor_at=base.anchor_at)]
    step.deadline_provisional = new.provisional
    session.add(step)
    for t in fresh:
        if t.kind in fired_before and t.due_at <= now:
            continue  # that rung was reached already and would be reached again at once
        session.add(t)
    field = "answer_by" if answer else "send_by"
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=step.route_id, action=action,
                 before={field: old_date, "deadline_version": base.deadline_version},
                 after={field: new.due_date, "deadline_version": version,
                        "working_days": working_days, "provisional": new.provisional},
                 reason=reason)
    return new, version


def _route_template(session: Session, step: Step) -> str:
    from models.routes import Route

    route = session.get(Route, step.route_id)
    assert route is not None
    return route.template


def recompute_open_deadlines(session: Session, cfg: EngineConfig, *, now: datetime,
                             reason: str) -> int:
    """Recompute send-by / answer-by of every non-terminal step from its anchor with the
    current calendar data (a new decree moved days off); returns how many deadlines moved.
    Each moved deadline is audited with ``reason`` (old → new date)."""
    changed = 0
    steps = session.exec(select(Step).where(
        col(Step.status).in_([StepStatus.sending, StepStatus.awaiting])).order_by(col(Step.id)))
    for step in list(steps):
        base = deadline_timer(session, step)
        if base is None:
            continue
        current = step.answer_by_date if base.kind is TimerKind.answer_overdue \
            else step.send_by_date
        new = calendars.deadline(base.anchor_at, base.working_days, base.region)
        if new.due_date == current:
            continue
        set_deadline(session, cfg, step, base=base, working_days=base.working_days, now=now,
                     actor=SYSTEM, reason=reason, action="deadline_recomputed")
        changed += 1
    return changed


def ensure_calendar_current(engine: Engine, cfg: EngineConfig, *, now: datetime) -> int | None:
    """Recompute the open deadlines when the calendar data changed since they were computed
    (``calendar_stamp``); returns how many moved, or None when the data is unchanged."""
    version = calendars.data_version()
    with Session(engine, expire_on_commit=False) as s:
        stamp = s.exec(select(CalendarStamp).where(CalendarStamp.id == 1)
                       .with_for_update()).first()
        if stamp is not None and stamp.data_version == version:
            s.commit()
            return None
        old = stamp.data_version if stamp else None
        moved = recompute_open_deadlines(
            s, cfg, now=now,
            reason=f"calendar data changed: {old or 'unknown'} -> {version}",
        )
        stamp = stamp or CalendarStamp(id=1, data_version=version, computed_at=now)
        stamp.data_version = version
        stamp.computed_at = now
        s.add(stamp)
        audit.record(s, at=now, actor=SYSTEM, entity="calendar", entity_id=version,
                     action="deadlines_recomputed", before={"data_version": old},
                     after={"data_version": version, "moved": moved})
        try:
            s.commit()
        except IntegrityError:  # another sweeper stamped it first: it did the work
            s.rollback()
            return None
    return moved
