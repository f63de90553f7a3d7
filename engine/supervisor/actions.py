"""The supervisor's review of the escalation ladder: list, acknowledge, extend, reassign,
close; and reading a route's history.

The Ministry of Social Policy controls interagency interaction (298-п Порядок п.13,
Регламент п.17); the rehabilitation organisation answers for the deadlines and completeness
of the route (363н п.10б). A supervisor acts only on routes of their own region; an
administrator on any. Every action is refused with an error naming the field and the rule
(and changes nothing) when it does not apply; every action leaves an audit record. Every
action locks the step's row first and checks the state after the lock (engine/infra/locks.py), so
an answer or a sweeper at the same moment is either seen whole or waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pendulum
from sqlmodel import Session, col, select

import calendars
from engine.errors import EngineError, NotFoundError
from engine.escalations import ladder
from engine.infra import audit
from engine.infra.locks import lock_route_steps, lock_step, reread
from engine.routes.recompute import deadline_timer, set_deadline
from engine.routes.transitions import (
    EngineConfig,
    _new_request,
    advance_route,
    arm_send_deadline,
    mirror_later,
    withdraw_request,
)
from models.agencies import Agency, AgencyRequest
from models.audit import AuditEvent
from models.routes import Route, RouteStatus, Step, StepStatus
from models.staff import StaffRole, StaffUser
from models.templates import template_of
from models.text import is_blank
from models.timers import (
    REQUEST_KINDS,
    DeadlineKind,
    Escalation,
    EscalationLevel,
    EscalationStatus,
    TimerKind,
)


class ForbiddenError(EngineError):
    """The caller may not act here (another region, or not their role)."""


class ConflictError(EngineError):
    """The action does not apply to the thing's current state."""


SUPERVISING = (StaffRole.supervisor, StaffRole.admin)
READING = (StaffRole.coordinator, StaffRole.supervisor, StaffRole.admin)
ACTIVE_STEP = (StepStatus.sending, StepStatus.awaiting, StepStatus.needs_clarification)
SORTS = ("-age", "age", "-level", "level", "-opened_at", "opened_at")


def actor_of(staff: StaffUser) -> str:
    return f"staff:{staff.id}"


def check_access(staff: StaffUser, region: str, *,
                 roles: tuple[StaffRole, ...] = SUPERVISING) -> None:
    """Role and region rule: a supervisor acts only in their own region (298-п п.13)."""
    if staff.role not in roles:
        raise ForbiddenError(
            f"role: a {staff.role.value} may not do this "
            f"(needs {' or '.join(r.value for r in roles)})",
            rule="role", params={"needs": [r.value for r in roles]})
    if staff.role is not StaffRole.admin and staff.region != region:
        raise ForbiddenError(
            f"region: the route belongs to region {region}; {staff.id} acts only in region "
            f"{staff.region}", rule="other_region", params={"region": region,
                                                            "own": staff.region})


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if is_blank(text):
        raise EngineError("reason: must not be empty (visible characters)", rule="blank")
    if len(text) > 2000:
        raise EngineError("reason: at most 2000 characters", rule="max_length",
                          params={"max": 2000})
    return text


def _step_route(session: Session, step_id: str, staff: StaffUser) -> tuple[Step, Route]:
    """The step, locked and read afresh, and its route (after the access check)."""
    step = lock_step(session, step_id)
    if step is None:
        raise NotFoundError(f"step_id: no step {step_id!r}", rule="unknown")
    route = session.get(Route, step.route_id)
    assert route is not None
    check_access(staff, route.region)
    return step, route


def local_today(region: str, now: datetime) -> date:
    cal = calendars.get_calendar(region)
    local = pendulum.instance(now).in_timezone(cal.timezone)
    return date(local.year, local.month, local.day)


# --------------------------------------------------------------------------- listing
@dataclass(frozen=True)
class EscalationView:
    """One escalation as the supervisor sees it (identifiers only)."""

    id: int
    level: int
    level_name: str
    status: str
    route_id: str
    step_id: str
    step_kind: str
    region: str
    agency_id: str | None
    deadline_kind: str  # send_by, answer_by, complete_by
    deadline: date
    deadline_version: int
    cause: str | None  # why it was opened (e.g. "agency refused the request: HTTP 400")
    age_working_days: int  # working days since the missed deadline (0 before / on it)
    opened_at: datetime
    acknowledged_by: str | None
    resolution: str | None


def list_escalations(
    session: Session, *, staff: StaffUser, now: datetime, level: int | None = None,
    status: str | None = None, agency_id: str | None = None, region: str | None = None,
    min_age_days: int | None = None, sort: str = "-age", limit: int = 500,
) -> list[EscalationView]:
    """Escalations filtered by level, status (default: open and acknowledged), agency,
    region (a supervisor: only their own) and minimal age in working days; sorted."""
    if sort not in SORTS:
        raise EngineError(f"sort: must be one of {', '.join(SORTS)}")
    if level is not None and level not in {int(lv) for lv in EscalationLevel}:
        raise EngineError("level: must be 0 (reminder), 1 (overdue) or 2 (escalated)")
    if staff.role not in SUPERVISING:
        raise ForbiddenError(f"role: a {staff.role.value} may not list escalations")
    if staff.role is not StaffRole.admin:
        if region is not None and region != staff.region:
            raise ForbiddenError(f"region: {staff.id} sees only region {staff.region}")
        region = staff.region
    q = select(Escalation)
    if status is None:
        q = q.where(col(Escalation.status).in_(ladder.OPEN_STATES))
    elif status != "all":
        try:
            q = q.where(Escalation.status == EscalationStatus(status))
        except ValueError:
            raise EngineError(f"status: must be all or one of "
                              f"{', '.join(s.value for s in EscalationStatus)}") from None
    if level is not None:
        q = q.where(Escalation.level == EscalationLevel(level))
    if agency_id is not None:
        q = q.where(Escalation.agency_id == agency_id)
    if region is not None:
        q = q.where(Escalation.region == region)
    kinds = {s.id: s.kind for s in session.exec(
        select(Step).where(col(Step.id).in_(select(Escalation.step_id).where(
            col(Escalation.id).in_(q.with_only_columns(col(Escalation.id)))))))}
    out = []
    for esc in session.exec(q.order_by(col(Escalation.id))):
        age = max(0, calendars.get_calendar(esc.region).working_days_between(
            esc.due_date, local_today(esc.region, now)))
        if min_age_days is not None and age < min_age_days:
            continue
        assert esc.id is not None
        out.append(EscalationView(
            id=esc.id, level=int(esc.level), level_name=EscalationLevel(esc.level).name,
            status=esc.status.value, route_id=esc.route_id, step_id=esc.step_id,
            step_kind=kinds.get(esc.step_id, ""), region=esc.region, agency_id=esc.agency_id,
            deadline_kind=esc.deadline_kind.value, deadline=esc.due_date,
            deadline_version=esc.deadline_version, cause=esc.cause,
            age_working_days=age, opened_at=esc.opened_at,
            acknowledged_by=esc.acknowledged_by, resolution=esc.resolution,
        ))
    key = sort.lstrip("-")
    out.sort(key=lambda v: (
        v.age_working_days if key == "age" else v.level if key == "level"
        else v.opened_at.timestamp(), v.id), reverse=sort.startswith("-"))
    return out[:limit]


# --------------------------------------------------------------------------- actions
def acknowledge(session: Session, *, staff: StaffUser, escalation_id: int, now: datetime,
                reason: str) -> Escalation:
    """Take an open escalation into work (298-п Порядок п.13: the Ministry's control), with
    its mandatory reason, as every action of the supervisor's (refused, nothing changed:
    blank or over 2000 characters)."""
    text = _reason(reason)
    esc = session.get(Escalation, escalation_id)
    if esc is None:
        raise NotFoundError(f"escalation_id: no escalation {escalation_id}", rule="unknown")
    check_access(staff, esc.region)
    lock_step(session, esc.step_id)  # an answer resolving it meanwhile is seen, not undone
    esc = reread(session, Escalation, escalation_id)
    assert esc is not None
    if esc.status is not EscalationStatus.open:
        raise ConflictError(
            f"escalation: only an open escalation can be acknowledged (it is {esc.status.value})",
            rule="not_open", params={"status": esc.status.value})
    esc.status = EscalationStatus.acknowledged
    esc.acknowledged_by = staff.id
    esc.acknowledged_at = now
    session.add(esc)
    audit.record(session, at=now, actor=actor_of(staff), entity="escalation",
                 entity_id=str(esc.id), route_id=esc.route_id, action="acknowledged",
                 before={"status": EscalationStatus.open.value},
                 after={"status": esc.status.value}, reason=text)
    return esc


def extend_deadline(session: Session, cfg: EngineConfig, *, staff: StaffUser, step_id: str,
                    days: int, reason: str, now: datetime) -> calendars.Deadline:
    """Extend the step's running deadline (send-by or answer-by) by ``days`` working days
    of the acting party's region: new deadline version, new timers, old ones cancelled,
    open escalations of that deadline resolved, audit old → new."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise EngineError(f"days: must be a positive whole number of working days (got {days})",
                          rule="positive_int")
    text = _reason(reason)
    step, _route = _step_route(session, step_id, staff)
    if step.status not in (StepStatus.sending, StepStatus.awaiting):
        raise ConflictError(f"step: only a step waiting to be sent or answered has a deadline "
                            f"to extend (it is {step.status.value})", rule="not_waiting",
                            params={"status": step.status.value})
    base = deadline_timer(session, step)
    if base is None:
        raise ConflictError("step: it has no running deadline", rule="no_deadline")
    total = base.working_days + days
    new = calendars.deadline(base.anchor_at, total, base.region)
    if new.due_at <= now:
        raise EngineError(f"days: extended by {days} the deadline {new.display()} is already "
                          f"past; extend by more working days", rule="deadline_past",
                          params={"days": days, "deadline": new.display()})
    new, _version = set_deadline(session, cfg, step, base=base, working_days=total, now=now,
                                 actor=actor_of(staff), reason=text, action="deadline_extended")
    ladder.resolve_open(session, step, now=now, actor=actor_of(staff),
                        resolution=f"deadline extended to {new.display()}",
                        action="resolved_by_extension", reason=text,
                        kinds=(base.kind.deadline_kind,))
    mirror_later(session, cfg, step.route_id)
    return new


def _stop_step(session: Session, step: Step, *, now: datetime, actor: str, reason: str,
               resolution: str, closing: bool) -> None:
    """Withdraw the step's current request (its agency is told: a cancel notice) and stop
    its request timers; ``closing`` the step: every timer, and its open escalations are
    ``closed`` (the deadline will not be met); otherwise (reassigned) the request's
    escalations are resolved and the complete-by ladder goes on."""
    if step.current_request_id:
        req = session.get(AgencyRequest, step.current_request_id)
        if req is not None:
            withdraw_request(session, req, now=now, actor=actor, reason=reason)
    ladder.cancel_timers(session, step, now=now, actor=actor, reason=reason,
                         kinds=None if closing else REQUEST_KINDS)
    if closing:
        ladder.resolve_open(session, step, now=now, actor=actor, resolution=resolution,
                            action="closed_with_step", status=EscalationStatus.closed,
                            reason=reason)
    else:
        ladder.resolve_open(session, step, now=now, actor=actor, resolution=resolution,
                            action="resolved_by_supervisor", reason=reason,
                            kinds=(DeadlineKind.send_by, DeadlineKind.answer_by))


def reassign_step(session: Session, cfg: EngineConfig, *, staff: StaffUser, step_id: str,
                  agency_id: str, reason: str, now: datetime) -> AgencyRequest:
    """Give the step to another provider of the same service (same role, same region): the
    old request is cancelled and its agency told (a cancel notice), a new one is sent with a
    new send-by deadline (298-п Порядок п.10), the history is kept."""
    text = _reason(reason)
    step, route = _step_route(session, step_id, staff)
    if step.status not in ACTIVE_STEP:
        raise ConflictError(f"step: only a step in progress can be reassigned "
                            f"(it is {step.status.value})", rule="not_in_progress",
                            params={"status": step.status.value})
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFoundError(f"agency_id: no agency {agency_id!r}", rule="unknown")
    if agency.id == step.agency_id:
        raise EngineError("agency_id: the step is already assigned to this agency",
                          rule="same_agency")
    if agency.role.value != step.role:
        raise EngineError(f"agency_id: {agency.id} provides {agency.role.value}; the step "
                          f"needs {step.role}", rule="agency_role",
                          params={"agency": agency.id, "role": agency.role.value,
                                  "needs": step.role})
    if agency.region != route.region:
        raise EngineError(f"agency_id: {agency.id} is in region {agency.region}; the route "
                          f"is in region {route.region}", rule="agency_region",
                          params={"agency": agency.id, "region": agency.region,
                                  "needs": route.region})
    if not agency.active:
        raise EngineError(f"agency_id: {agency.id} is not active", rule="agency_inactive",
                          params={"agency": agency.id})
    actor = actor_of(staff)
    old_agency, old_status = step.agency_id, step.status
    _stop_step(session, step, now=now, actor=actor, reason=f"reassigned: {text}",
               resolution=f"step reassigned to {agency.id}", closing=False)
    template = template_of(route)
    step.agency_id = agency.id
    step.status = StepStatus.sending
    step.outcome_note = None
    session.add(step)
    send = arm_send_deadline(session, cfg, template, step, ready_at=now, now=now, actor=actor)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="reassigned",
                 before={"agency_id": old_agency, "status": old_status.value},
                 after={"agency_id": agency.id, "status": StepStatus.sending.value,
                        "send_by": send.due_date}, reason=text)
    mirror_later(session, cfg, route.id)
    return _new_request(session, cfg, route, template, step, agency, now=now)


def close_step(session: Session, cfg: EngineConfig, *, staff: StaffUser, step_id: str,
               reason: str, now: datetime, cancel_route: bool = False) -> Step:
    """Close a step (cancelled, with reason).

    An optional step (StepTemplate.optional) is closed and the route goes on with its next
    step (298-п Регламент п.16: the order of the mandatory steps is kept). A mandatory step
    can be closed only together with the whole route (``cancel_route=True``): a route
    without it would not be complete (363н п.10б), so it must not silently go on.
    """
    text = _reason(reason)
    first = session.get(Step, step_id)
    if first is None:
        raise NotFoundError(f"step_id: no step {step_id!r}", rule="unknown")
    route_steps = lock_route_steps(session, first.route_id)  # seq order: no deadlock
    step = next(s for s in route_steps if s.id == step_id)
    route = session.get(Route, step.route_id)
    assert route is not None
    check_access(staff, route.region)
    if step.status.terminal:
        raise ConflictError(f"step: a {step.status.value} step cannot be closed",
                            rule="step_finished", params={"status": step.status.value})
    if route.status is not RouteStatus.active:
        raise ConflictError(f"route: a {route.status.value} route cannot change",
                            rule="route_not_active", params={"status": route.status.value})
    if not step.optional and not cancel_route:
        raise ConflictError(
            f"step: {step.kind} is mandatory in template {route.template}; it can be closed "
            f"only with cancel_route=true (the route is cancelled)", rule="step_mandatory")
    actor = actor_of(staff)
    targets = route_steps if cancel_route else [step]
    for s in targets:
        if s.status.terminal:
            if cancel_route:  # a recurring check between occurrences: no next one
                ladder.cancel_timers(session, s, now=now, actor=actor,
                                     reason=f"closed: {text}", kinds=(TimerKind.recur_next,))
            continue
        before = {"status": s.status.value}
        _stop_step(session, s, now=now, actor=actor, reason=f"closed: {text}",
                   resolution="step closed by supervisor", closing=True)
        s.status = StepStatus.cancelled
        s.outcome_note = text
        session.add(s)
        audit.record(session, at=now, actor=actor, entity="step", entity_id=s.id,
                     route_id=route.id, action="closed", before=before,
                     after={"status": s.status.value}, reason=text)
    if cancel_route:
        route.status = RouteStatus.cancelled
        route.completed_at = now
        session.add(route)
        audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                     route_id=route.id, action="cancelled",
                     before={"status": RouteStatus.active.value},
                     after={"status": route.status.value}, reason=text)
        mirror_later(session, cfg, route.id)
        return step
    mirror_later(session, cfg, route.id)
    # the steps that waited for it open, even while others run beside it (parallel steps,
    # a recurring check), or the route completes
    advance_route(session, cfg, route, now=now, actor=actor)
    return step


# --------------------------------------------------------------------------- history
def route_history(session: Session, *, staff: StaffUser | None, route_id: str, now: datetime,
                  actor: str | None = None) -> list[AuditEvent]:
    """The route's audit history in order. Reading it reads personal-data-bearing records
    (152-ФЗ): the read itself is logged (action "read"). ``staff`` None: an operator at
    the command line, named by ``actor``."""
    route = session.get(Route, route_id)
    if route is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    if staff is not None:
        check_access(staff, route.region, roles=READING)
    rows = list(session.exec(select(AuditEvent).where(AuditEvent.route_id == route_id)
                             .order_by(col(AuditEvent.id))))
    audit.record(session, at=now, actor=actor or (actor_of(staff) if staff else "cli"),
                 entity="route", entity_id=route_id, route_id=route_id, action="read",
                 after={"what": "history", "events": len(rows)})
    return rows
