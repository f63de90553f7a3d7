"""Reading routes and their steps (identifiers only), and the overview's counts.

The API shows what these return; recording that a person's data was read is the caller's
(``engine.persons.reads.record_route_reads``), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from models.routes import Route, RouteStatus, Step, StepStatus
from models.timers import Escalation, EscalationLevel, EscalationStatus


def get_route(session: Session, route_id: str) -> Route | None:
    """The route, or None."""
    return session.get(Route, route_id)


def step_by_id(session: Session, step_id: str) -> Step | None:
    """The step, or None."""
    return session.get(Step, step_id)


def steps_of(session: Session, route_id: str) -> list[Step]:
    """The route's steps."""
    return list(session.exec(select(Step).where(col(Step.route_id) == route_id)))


def steps_of_routes(session: Session, route_ids: Sequence[str]) -> list[Step]:
    """The steps of all these routes, in one statement."""
    return list(session.exec(select(Step).where(col(Step.route_id).in_(route_ids))))


def routes_newest_first(session: Session, *, region: str | None,
                        status: RouteStatus | None,
                        limit: int) -> list[Route]:
    """Routes newest first: of ``region`` (None: every region), of ``status`` if given."""
    q = select(Route).order_by(col(Route.created_at).desc(), col(Route.id)).limit(limit)
    if region is not None:
        q = q.where(Route.region == region)
    if status is not None:
        q = q.where(col(Route.status) == status)
    return list(session.exec(q))


def overview_counts(session: Session, now: datetime) -> dict[str, dict[str, int]]:
    """Routes by status, steps past their running deadline, open escalations by level."""
    routes = {RouteStatus(k).value: int(v) for k, v in session.exec(
        select(Route.status, func.count()).group_by(Route.status)).all()}
    overdue = session.exec(select(func.count()).select_from(Step).where(or_(
        and_(col(Step.status) == StepStatus.awaiting, col(Step.answer_by) <= now),
        and_(col(Step.status) == StepStatus.sending, col(Step.send_by) <= now)))).one()
    escalations = {EscalationLevel(k).name: int(v) for k, v in session.exec(
        select(Escalation.level, func.count())
        .where(col(Escalation.status).in_([EscalationStatus.open,
                                           EscalationStatus.acknowledged]))
        .group_by(col(Escalation.level))).all()}
    return {"routes": routes, "steps": {"overdue": int(overdue)}, "escalations": escalations}
