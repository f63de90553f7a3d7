"""Steps held by the person's refusal of a participant's accompaniment (004 п.11).

004 п.11: while the person refuses a participant's accompaniment (or all of it), nothing
goes out to that participant. A refusal pauses the steps open or planned at that moment
(``engine.routes.refusal``); this module holds the steps that become ready *later* — a step
added by a re-plan or a template migration, a planned step whose turn comes, the next
occurrence of a recurring check (``engine.routes.recurring``): instead of being opened, the
step is ``paused`` with a ``StepSuspension`` of status ``planned`` pointing to the refusal,
so the participant's resume (004 п.11, п.12) makes it planned again and the route opens it.

A refusal covers a step while it is open (no ``resumed_at``) and it is of the step's
participant (its agency, or — a step not yet addressed — an agency of the step's role), or
of all participants; a refusal of all that was already resumed for the step's role (a
resumed row of a step of that role) no longer covers it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, select

import calendars
from engine.escalations import ladder, timers
from engine.infra import audit
from engine.routes.ipra_term import local_day
from models.agencies import Agency
from models.route_life import ParticipantRefusal
from models.routes import Route, Step, StepStatus
from models.suspension import StepSuspension
from models.timers import EscalationStatus

REFUSED_RU = "отказ инвалида от сопровождения (363н п.11)"


def days_left(due_date: date | None, region: str, at: datetime) -> int | None:
    """Working days in (the local day of ``at``, ``due_date``] in ``region``: the days a
    deadline still had (0: due that day or already overdue; None: no deadline)."""
    if due_date is None:
        return None
    today = local_day(at, region)
    if due_date <= today:
        return 0
    return calendars.get_calendar(region).working_days_between(today, due_date)


def _resumed_for_role(session: Session, refusal_id: int, role: str) -> bool:
    """Whether a step of ``role`` paused by the refusal was resumed already (a partial
    resume of a refusal of all participants)."""
    with session.no_autoflush:
        return session.exec(select(StepSuspension.id).join(
            Step, col(Step.id) == col(StepSuspension.step_id)).where(
            StepSuspension.refusal_id == refusal_id,
            col(StepSuspension.resumed_at).is_not(None), Step.role == role).limit(1)
        ).first() is not None


def any_open_of(route_id: Any) -> Any:
    """An EXISTS: the route has an open refusal. Read with the route's steps, it lets the
    route's advance skip ``covering_refusal``'s SELECT when there is none (most routes)."""
    return exists().where(col(ParticipantRefusal.route_id) == route_id,
                          col(ParticipantRefusal.resumed_at).is_(None))


def covering_refusal(session: Session, route_id: str, step: Step,
                     agency_id: str | None = None) -> ParticipantRefusal | None:
    """The open refusal that keeps ``step`` from going out (004 п.11), or None.
    ``agency_id``: the agency the step would be sent to (default: the step's own)."""
    target = agency_id or step.agency_id
    with session.no_autoflush:
        refusals = list(session.exec(select(ParticipantRefusal).where(
            ParticipantRefusal.route_id == route_id,
            col(ParticipantRefusal.resumed_at).is_(None)).order_by(col(ParticipantRefusal.id))))
    for refusal in refusals:
        assert refusal.id is not None
        if refusal.agency_id is None:
            if not _resumed_for_role(session, refusal.id, step.role):
                return refusal
            continue
        if target is not None:
            if refusal.agency_id == target:
                return refusal
            continue
        agency = session.get(Agency, refusal.agency_id)
        if agency is not None and agency.role.value == step.role:
            return refusal
    return None


def hold_step(session: Session, route: Route, step: Step, refusal: ParticipantRefusal, *,
              now: datetime, actor: str) -> None:
    """Pause a step that would open now, instead of sending to a refused participant
    (004 п.11): a ``planned`` suspension row linked to the refusal, its timers stopped."""
    assert refusal.id is not None
    before = step.status
    row = StepSuspension(
        step_id=step.id, route_id=route.id, status=StepStatus.planned.value,
        complete_days_left=days_left(step.complete_by_date, route.region, now),
        complete_by_date=step.complete_by_date, suspended_at=now, reason=REFUSED_RU,
        refusal_id=refusal.id)
    session.add(row)
    timers.cancel_pending(session, step.id, reason=REFUSED_RU, now=now, actor=actor)
    ladder.resolve_open(session, step, now=now, actor=actor, resolution=REFUSED_RU,
                        action="closed_participant_refused", status=EscalationStatus.closed,
                        reason=REFUSED_RU)
    step.status = StepStatus.paused
    session.add(step)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="paused", before={"status": before.value},
                 after={"status": StepStatus.paused.value, "refusal_id": refusal.id,
                        "held": True, "complete_days_left": row.complete_days_left},
                 reason=REFUSED_RU)
