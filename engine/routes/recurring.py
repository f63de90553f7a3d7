"""Recurring steps: the next occurrence opens when its timer fires.

001 Регламент п.6 пп.8 (periodic health monitoring of social employment) and 000 п.10 (the
annual need monitoring of supported living): a recurring step asks its agency again every
``period_days`` working days while the route lives. Each occurrence is a new request with
its own idempotency key (one key for life per request); it is opened by the sweeper firing
the ``recur_next`` timer that the previous occurrence's answer wrote
(``engine.escalations.recurrence``), in one transaction: the step's lock, the new request,
its send-by timers and the route's mirror job. A missed check goes up the same ladder as
any request (its answer-by timers). The route does not wait for it and ends it
(``engine.routes.transitions.advance_route``).

004 п.11: while the person refuses the step's participant (or all), the occurrence is not
sent: the timer fires and the step is held, paused with a suspension row linked to the
refusal (``engine.routes.refusal_hold``); the participant's resume opens it. The sweeper
fires through ``fire_recurrence_guarded`` (a savepoint per timer).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from engine.errors import EngineError
from engine.escalations.ladder import FireOutcome
from engine.infra import audit
from engine.infra.locks import lock_step, reread
from engine.routes.refusal_hold import covering_refusal, hold_step
from engine.routes.transitions import EngineConfig, _start_step, mirror_later
from models.agencies import Agency
from models.routes import Route, RouteStatus, StepStatus
from models.templates import template_of
from models.timers import Timer, TimerKind, TimerStatus

log = logging.getLogger("rehab.recurring")


def fire_recurrence(session: Session, cfg: EngineConfig, timer: Timer, *, now: datetime,
                    actor: str, skip_locked: bool = True) -> FireOutcome:
    """Open the next occurrence of a recurring step (the caller commits). Stale — the timer
    cancelled, nothing sent — when the route is no longer active or the step is not between
    occurrences (closed, or an occurrence still open); busy when another transaction holds
    the step."""
    assert timer.kind is TimerKind.recur_next
    step = lock_step(session, timer.step_id, skip_locked=skip_locked)
    if step is None:
        return FireOutcome.busy
    fresh = reread(session, Timer, timer.id)
    route = session.get(Route, timer.route_id)
    assert fresh is not None and route is not None
    if fresh.status is not TimerStatus.pending:
        return FireOutcome.stale
    template = template_of(route)
    stale = (f"route is {route.status.value}" if route.status is not RouteStatus.active
             else f"step is {step.status.value}"
             if step.status not in (StepStatus.answered, StepStatus.absent)
             else f"template step {step.kind} does not recur"
             if step.seq >= len(template.steps) or template.step(step.seq).period_days is None
             else None)
    if stale is not None:
        _cancel_stale(session, fresh, route.id, stale, now=now, actor=actor)
        return FireOutcome.stale
    fresh.status, fresh.fired_at, fresh.fired_by = TimerStatus.fired, now, actor
    session.add(fresh)
    audit.record(session, at=now, actor=actor, entity="timer", entity_id=str(fresh.id),
                 route_id=route.id, action="fired",
                 before={"status": TimerStatus.pending.value},
                 after={"status": fresh.status.value, "kind": fresh.kind.value,
                        "due_at": fresh.due_at})
    before = {"status": step.status.value, "request_id": step.current_request_id}
    agency = session.get(Agency, step.agency_id) if step.agency_id else None
    if agency is not None and not agency.active:
        agency = None  # the step's agency left: pick another of its role
    refusal = covering_refusal(session, route.id, step, agency.id if agency else None)
    if refusal is not None:  # 004 п.11: nothing goes out to a refused participant
        hold_step(session, route, step, refusal, now=now, actor=actor)
        mirror_later(session, cfg, route.id)
        return FireOutcome.fired
    current = route.current_seq  # the occurrence does not move the route's position
    step.status = StepStatus.planned
    _start_step(session, cfg, route, template, step, ready_at=fresh.due_at,
                now=now, actor=actor, agency=agency)
    route.current_seq = current
    session.add(route)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="recurrence_opened", before=before,
                 after={"status": step.status.value, "request_id": step.current_request_id})
    mirror_later(session, cfg, route.id)
    return FireOutcome.fired


def _cancel_stale(session: Session, timer: Timer, route_id: str, why: str, *,
                  now: datetime, actor: str) -> None:
    """Cancel a timer that no longer applies (``stale: <why>``), audited."""
    timer.status = TimerStatus.cancelled
    timer.cancelled_reason = f"stale: {why}"[:2000]
    session.add(timer)
    audit.record(session, at=now, actor=actor, entity="timer", entity_id=str(timer.id),
                 route_id=route_id, action="cancelled",
                 before={"status": TimerStatus.pending.value},
                 after={"status": timer.status.value, "kind": timer.kind.value},
                 reason=timer.cancelled_reason)


def fire_recurrence_guarded(session: Session, cfg: EngineConfig, timer: Timer, *,
                            now: datetime, actor: str) -> FireOutcome:
    """``fire_recurrence`` in a savepoint, for the sweeper's batch: an ``EngineError`` (the
    step can no longer open — e.g. a migration put a step it waits for before it) rolls
    back this occurrence only and cancels its timer as stale (logged), so one bad timer
    neither rolls back the batch nor stalls every later sweep."""
    try:
        with session.begin_nested():
            return fire_recurrence(session, cfg, timer, now=now, actor=actor)
    except EngineError as exc:
        log.warning("recur_next timer %s of step %s not fired: %s", timer.id, timer.step_id,
                    exc)
        fresh = reread(session, Timer, timer.id)
        if fresh is None or fresh.status is not TimerStatus.pending:
            return FireOutcome.stale
        _cancel_stale(session, fresh, fresh.route_id, str(exc), now=now, actor=actor)
        return FireOutcome.stale
