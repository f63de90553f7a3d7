"""The escalation ladder: reminder (0), overdue (1), escalated (2), and its resolution.

The Ministry of Social Policy controls interagency interaction (298-п Порядок п.13,
Регламент п.17); the rehabilitation organisation answers for the route's deadlines
(363н п.10б).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from engine import audit
from models.routes import Step
from models.timers import Escalation, EscalationStatus

SYSTEM = "system:ladder"


def resolve_on_answer(session: Session, step: Step, *, now: datetime, late_days: int) -> int:
    """An answer stops the ladder: open escalations of the step are resolved, recording
    that the answer came late and by how many working days."""
    rows = list(session.exec(
        select(Escalation).where(
            Escalation.step_id == step.id,
            col(Escalation.status).in_([EscalationStatus.open, EscalationStatus.acknowledged]),
        )
    ))
    for esc in rows:
        before = {"status": esc.status.value}
        esc.status = EscalationStatus.resolved
        esc.resolved_at = now
        esc.resolution = (
            f"answer received {late_days} working day(s) late" if late_days
            else "answer received on time"
        )
        session.add(esc)
        audit.record(session, at=now, actor=SYSTEM, entity="escalation", entity_id=str(esc.id),
                     route_id=step.route_id, action="resolved_by_answer", before=before,
                     after={"status": esc.status.value, "late_working_days": late_days})
    return len(rows)
