"""Reading what the supervisor's pages show beside the actions: a step's history (its audit
records and its escalation's) and the supervisors' actions on a route (the timeline's marks).
The Ministry of Social Policy controls interagency interaction (298-п Порядок п.13)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from models.audit import AuditEvent


def step_history(session: Session, *, route_id: str, entity_ids: Iterable[str]
                 ) -> list[AuditEvent]:
    """The route's audit records about these entities (a step and its escalation), oldest
    first."""
    return list(session.exec(select(AuditEvent).where(
        AuditEvent.route_id == route_id, col(AuditEvent.entity_id).in_(list(entity_ids)))
        .order_by(col(AuditEvent.id))))


def staff_actions_on_route(session: Session, route_id: str, actions: Iterable[str]
                           ) -> list[AuditEvent]:
    """The route's audit records of these actions taken by staff."""
    return list(session.exec(select(AuditEvent).where(
        AuditEvent.route_id == route_id, col(AuditEvent.actor).startswith("staff:"),
        col(AuditEvent.action).in_(list(actions)))))
