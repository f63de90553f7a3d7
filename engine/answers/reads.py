"""Reading agency requests and their answers for the agency inbox and the paper answer
(298-п Регламент п.13: an agency without its own system exchanges on paper or through
its inbox)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from models.agencies import AgencyAnswer, AgencyRequest, RequestState
from models.routes import Route, Step, StepStatus


def request_by_id(session: Session, request_id: str) -> AgencyRequest | None:
    """The request, or None."""
    return session.get(AgencyRequest, request_id)


def answer_to(session: Session, request_id: str) -> AgencyAnswer | None:
    """The answer stored for the request, or None."""
    return session.exec(select(AgencyAnswer)
                        .where(AgencyAnswer.request_id == request_id)).first()


def open_requests(session: Session, agency_id: str, *, waiting: Iterable[StepStatus]
                  ) -> list[tuple[AgencyRequest, Step, Route]]:
    """The agency's delivered, unanswered requests that are still their step's current one
    while the step is in ``waiting``, with step and route, earliest answer deadline first."""
    answered = select(AgencyAnswer.request_id)
    q = (select(AgencyRequest, Step, Route)
         .join(Step, col(Step.id) == AgencyRequest.step_id)
         .join(Route, col(Route.id) == Step.route_id)
         .where(AgencyRequest.agency_id == agency_id,
                AgencyRequest.state == RequestState.delivered,
                col(Step.current_request_id) == AgencyRequest.id,
                col(Step.status).in_(list(waiting)),
                col(AgencyRequest.id).not_in(answered))
         .order_by(col(Step.answer_by), col(Step.id)))
    return [(r, st, rt) for r, st, rt in session.exec(q)]
