"""Reading escalations for the pages: one by its id, a route's by id."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.timers import Escalation


def escalation_by_id(session: Session, escalation_id: int) -> Escalation | None:
    """The escalation, or None."""
    return session.get(Escalation, escalation_id)


def escalations_of_route(session: Session, route_id: str) -> list[Escalation]:
    """The route's escalations, oldest first."""
    return list(session.exec(select(Escalation).where(Escalation.route_id == route_id)
                             .order_by(col(Escalation.id))))
