"""Moving the open deadlines of steps: a new calendar decree, or a supervisor's extension.

Deadlines are working days of the acting party's region: send by 1 working day from
registration (298-п Порядок п.10), answer by 5 working days from receipt (298-п Порядок п.11,
Регламент п.12), complete by the ИПРА measure's deadline (545н) or the template's working days
from registration (363н п.10б). Each deadline's timers keep its anchor (``Timer.anchor_at``)
and length (``Timer.working_days``; 0 for a fixed ИПРА day), so a deadline can be recomputed
from them when the calendar data changes. A moved deadline gets a new ``deadline_version``:
the old pending timers are cancelled, new ones scheduled, and the move (old → new) goes into
the audit log with its reason.

Each timer records the calendar data version it was computed with. Every sweep first makes
sure the open deadlines are current (``ensure_calendar_current``): when the data files
changed it re-reads them and recomputes every open deadline; otherwise it recomputes the
steps whose pending timers were computed with other data (a worker or API process that had
not re-read the files yet). ``calendar_stamp`` keeps the version last applied; its row lock
serialises the sweepers and ``rehab route calendar-recompute``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

import calendars
from calendars.data_files import compute_data_version
from engine.escalations import ladder, timers
from engine.infra import audit
from engine.infra.locks import lock_step
from engine.routes.transitions import EngineConfig
from models.routes import Route, Step, StepStatus
from models.templates import template_of
from models.timers import (
    KINDS_OF,
    OVERDUE_KIND,
    CalendarStamp,
    DeadlineKind,
    Timer,
    TimerKind,
    TimerStatus,
)

SYSTEM = "system:recompute"
STALE_STEPS_PER_SWEEP = 500
"""At most this many steps with timers of other calendar data are recomputed per sweep."""

FIELD = {DeadlineKind.send_by: "send_by", DeadlineKind.answer_by: "answer_by",
         DeadlineKind.complete_by: "complete_by"}


def current_calendar_version() -> str:
    """The version of the calendar data files as they are now; a process still holding an
    older reading (a decree file replaced under it) re-reads them first."""
    if compute_data_version() != calendars.data_version():
        calendars.reload_data()
    return calendars.data_version()


def open_deadline_kinds(step: Step) -> list[DeadlineKind]:
    """The deadlines that run for the step now."""
    out: list[DeadlineKind] = []
    if step.status is StepStatus.sending:
        out.append(DeadlineKind.send_by)
    elif step.status is StepStatus.awaiting:
        out.append(DeadlineKind.answer_by)
    if not step.status.terminal and step.complete_by_date is not None:
        out.append(DeadlineKind.complete_by)
    return out


def base_timer(session: Session, step: Step, kind: DeadlineKind) -> Timer | None:
    """The newest timer that marks the step's ``kind`` deadline (its anchor and length
    define the deadline)."""
    return session.exec(
        select(Timer).where(Timer.step_id == step.id, Timer.kind == OVERDUE_KIND[kind])
        .order_by(col(Timer.deadline_version).desc())
    ).first()


def deadline_timer(session: Session, step: Step) -> Timer | None:
    """The newest timer of the step's running request deadline (send-by or answer-by)."""
    if step.status is StepStatus.sending:
        return base_timer(session, step, DeadlineKind.send_by)
    if step.status is StepStatus.awaiting:
        return base_timer(session, step, DeadlineKind.answer_by)
    return None


def _fresh(session: Session, cfg: EngineConfig, step: Step, base: Timer, working_days: int,
           version: int) -> tuple[calendars.Deadline, list[timers.TimerSpec]]:
    kind = base.kind.deadline_kind
    new = timers.compute_deadline(anchor_at=base.anchor_at, working_days=working_days,
                                  region=base.region,
                                  fixed_date=base.due_date if working_days == 0 else None)
    with session.no_autoflush:
        route = session.get(Route, step.route_id)
    assert route is not None
    # the route's own template: its plan's steps (004 п.10 пп.б) after the template's
    template = template_of(route)
    return new, timers.ladder_timers(
        kind, step, due=new, anchor_at=base.anchor_at, working_days=working_days,
        ladder=template.ladder_for(step.seq, cfg.default_ladder), version=version)


def set_deadline(
    session: Session, cfg: EngineConfig, step: Step, *, base: Timer, working_days: int,
    now: datetime, actor: str, reason: str, action: str,
) -> tuple[calendars.Deadline, int]:
    """Give the step's deadline of ``base``'s kind the length ``working_days`` from
    ``base.anchor_at`` (in ``base.region``) with the current calendar data: new version, old
    pending timers of that deadline cancelled, new ones scheduled (a rung already reached is
    not scheduled again when its new time is already past). Returns (the new deadline, its
    version). The caller holds the step's lock and records why in ``reason``."""
    kind = base.kind.deadline_kind
    _, old_date = timers.step_deadline(step, kind)
    fired_before = {t.kind for t in session.exec(select(Timer).where(
        Timer.step_id == step.id, Timer.deadline_version == base.deadline_version,
        Timer.status == TimerStatus.fired))}
    ladder.cancel_timers(session, step, now=now, actor=actor, reason=f"{action}: {reason}",
                         kinds=KINDS_OF[kind])
    version = timers.next_version(session, step.id)
    new, fresh = _fresh(session, cfg, step, base, working_days, version)
    timers.set_step_deadline(step, kind, new)
    if kind is not DeadlineKind.complete_by:
        step.deadline_provisional = new.provisional
    session.add(step)
    kept = [t for t in fresh if not (t.kind in fired_before and t.due_at <= now)]
    timers.add_timers(session, kept, now=now, actor=actor, reason=f"{action}: {reason}")
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=step.route_id, action=action,
                 before={FIELD[kind]: old_date, "deadline_version": base.deadline_version},
                 after={FIELD[kind]: new.due_date, "deadline_version": version,
                        "working_days": working_days, "provisional": new.provisional,
                        "timers": {t.kind.value: t.due_at.isoformat() for t in kept}},
                 reason=reason)
    return new, version


def _recompute_step(session: Session, cfg: EngineConfig, step: Step, *, now: datetime,
                    reason: str, version: str) -> int:
    """Recompute the step's running deadlines; returns how many moved. A deadline whose
    timers come out the same only gets its pending timers stamped with ``version``."""
    moved = 0
    for kind in open_deadline_kinds(step):
        base = base_timer(session, step, kind)
        if base is None:
            continue
        pending = list(session.exec(select(Timer).where(
            Timer.step_id == step.id, Timer.deadline_version == base.deadline_version,
            Timer.status == TimerStatus.pending)))
        new, fresh = _fresh(session, cfg, step, base, base.working_days, base.deadline_version)
        due_of: dict[TimerKind, datetime] = {t.kind: t.due_at for t in fresh}
        _, current = timers.step_deadline(step, kind)
        if new.due_date == current and all(due_of.get(t.kind) == t.due_at for t in pending):
            if pending:
                table = Timer.__table__  # type: ignore[attr-defined]
                session.execute(update(table).where(
                    table.c.id.in_([t.id for t in pending]),
                    table.c.status == TimerStatus.pending).values(calendar_version=version))
                for t in pending:
                    session.expire(t)
            continue
        old_version = base.deadline_version
        new, new_version = set_deadline(
            session, cfg, step, base=base, working_days=base.working_days, now=now,
            actor=SYSTEM, reason=reason, action="deadline_recomputed")
        if new.due_at > now:
            # the old deadline's rungs no longer apply: the step is not overdue any more
            ladder.resolve_open(
                session, step, now=now, actor=SYSTEM, action="resolved_by_recompute",
                resolution=f"deadline moved to {new.display()} (version {new_version})",
                kinds=(kind,), before_version=old_version + 1, reason=reason)
        moved += 1
    return moved


def recompute_open_deadlines(session: Session, cfg: EngineConfig, *, now: datetime,
                             reason: str, step_ids: Iterable[str] | None = None) -> int:
    """Recompute the running deadlines (send-by, answer-by, complete-by) of every
    non-terminal step — or of ``step_ids`` — from their anchors with the current calendar
    data (a new decree moved days off); returns how many deadlines moved. Each moved
    deadline is audited with ``reason`` (old → new date); when the new deadline is still
    ahead, the escalations opened on the old one are resolved (``resolved_by_recompute``)."""
    version = calendars.data_version()
    open_ = [StepStatus.planned, StepStatus.sending, StepStatus.awaiting,
             StepStatus.needs_clarification]
    stmt = select(Step.id).where(col(Step.status).in_(open_), or_(
        col(Step.status).in_([StepStatus.sending, StepStatus.awaiting]),
        col(Step.complete_by_date).is_not(None)))
    if step_ids is not None:
        stmt = stmt.where(col(Step.id).in_(list(step_ids)))
    recurring = select(Timer.step_id).where(Timer.kind == TimerKind.recur_next,
                                            Timer.status == TimerStatus.pending)
    if step_ids is not None:
        recurring = recurring.where(col(Timer.step_id).in_(list(step_ids)))
    ids = set(session.exec(stmt)) | set(session.exec(recurring))
    changed = 0
    for step_id in sorted(ids):
        step = lock_step(session, step_id)  # route by route, seq order (ids end in -s<seq>)
        if step is None:
            continue
        changed += _recompute_recurrence(session, step, now=now, reason=reason,
                                         version=version)
        if step.status.terminal:
            continue
        changed += _recompute_step(session, cfg, step, now=now, reason=reason, version=version)
    return changed


def _recompute_recurrence(session: Session, step: Step, *, now: datetime, reason: str,
                          version: str) -> int:
    """Recompute the step's pending next-occurrence timers (001 Регламент п.6 пп.8: every
    ``period_days`` working days) from their anchor and length with the current calendar
    data; returns how many moved (each audited ``recurrence_recomputed``)."""
    moved = 0
    for t in list(session.exec(select(Timer).where(
            Timer.step_id == step.id, Timer.kind == TimerKind.recur_next,
            Timer.status == TimerStatus.pending))):
        due = calendars.deadline(t.anchor_at, t.working_days, t.region)
        before = {"due_at": t.due_at, "due_date": t.due_date,
                  "calendar_version": t.calendar_version}
        if due.due_at != t.due_at:
            audit.record(session, at=now, actor=SYSTEM, entity="timer", entity_id=str(t.id),
                         route_id=step.route_id, action="recurrence_recomputed", before=before,
                         after={"due_at": due.due_at, "due_date": due.due_date,
                                "calendar_version": version}, reason=reason)
            moved += 1
        t.due_at, t.due_date, t.calendar_version = due.due_at, due.due_date, version
        session.add(t)
    return moved


def stale_timer_steps(session: Session, version: str, *,
                      limit: int = STALE_STEPS_PER_SWEEP) -> list[str]:
    """Steps with pending timers computed with calendar data other than ``version``."""
    cv = col(Timer.calendar_version)
    return list(session.exec(
        select(Timer.step_id).where(
            Timer.status == TimerStatus.pending,
            or_(cv < version, cv > version, cv.is_(None)))
        .distinct().limit(limit)))


def _lock_stamp(session: Session, now: datetime) -> CalendarStamp:
    """The stamp row, created if missing, locked (``FOR UPDATE``) for this transaction."""
    table = CalendarStamp.__table__  # type: ignore[attr-defined]
    values = {"id": 1, "data_version": "", "computed_at": now}
    dialect = session.get_bind().dialect.name
    ins = (pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)).values(**values)
    session.execute(ins.on_conflict_do_nothing(index_elements=["id"]))
    stamp = session.exec(select(CalendarStamp).where(CalendarStamp.id == 1).with_for_update()
                         .execution_options(populate_existing=True)).one()
    return stamp


def ensure_calendar_current(engine: Engine, cfg: EngineConfig, *, now: datetime,
                            reason: str | None = None, force: bool = False) -> int | None:
    """Make the open deadlines current with the calendar data, under the stamp's lock:

    - the data files changed since the stamp (a new decree): every open deadline is
      recomputed;
    - otherwise, steps whose pending timers were computed with other data are recomputed;
    - ``force`` (``rehab route calendar-recompute --reason``): every open deadline.

    The stamp is updated and the run audited. Returns how many deadlines moved, or None when
    there was nothing to do.
    """
    version = current_calendar_version()
    with Session(engine, expire_on_commit=False) as s:
        stamp = _lock_stamp(s, now)
        old = stamp.data_version or None
        changed = old != version
        stale = [] if changed or force else stale_timer_steps(s, version)
        if not (changed or force or stale):
            s.commit()
            return None
        why = reason or (f"calendar data changed: {old or 'unknown'} -> {version}" if changed
                         else f"timers computed with other calendar data (current {version})")
        moved = recompute_open_deadlines(s, cfg, now=now, reason=why,
                                         step_ids=None if (changed or force) else stale)
        stamp.data_version = version
        stamp.computed_at = now
        s.add(stamp)
        audit.record(s, at=now, actor=SYSTEM, entity="calendar", entity_id=version,
                     action="deadlines_recomputed", before={"data_version": old},
                     after={"data_version": version, "moved": moved,
                            "steps": len(stale) if stale else None}, reason=why)
        s.commit()
    return moved
