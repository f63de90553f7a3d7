"""Stopping one open step for good — its measure left the ИПРА (re-plan) or a template
migration dropped it: the request is withdrawn (its agency gets a cancel notice), every
timer stops and the step's open escalations are closed, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from engine.escalations import ladder
from engine.infra import audit
from engine.routes.transitions import withdraw_request
from models.agencies import AgencyRequest
from models.routes import Step, StepStatus
from models.timers import EscalationStatus


def cancel_step(session: Session, step: Step, *, now: datetime, actor: str, reason: str,
                note: str, action: str) -> None:
    """Cancel ``step`` (the caller holds its lock): withdraw its request and tell the agency,
    stop its timers, close its escalations, audit ``action`` with ``reason``."""
    before = {"status": step.status.value}
    if step.current_request_id:
        req = session.get(AgencyRequest, step.current_request_id)
        if req is not None:
            withdraw_request(session, req, now=now, actor=actor, reason=reason)
    ladder.cancel_timers(session, step, now=now, actor=actor, reason=reason)
    ladder.resolve_open(session, step, now=now, actor=actor, resolution=reason,
                        action="closed_with_step", status=EscalationStatus.closed,
                        reason=reason)
    step.status = StepStatus.cancelled
    step.outcome_note = note[:500]
    session.add(step)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=step.route_id, action=action, before=before,
                 after={"status": step.status.value}, reason=reason)
