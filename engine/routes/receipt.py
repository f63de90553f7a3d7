"""The receipt of a request by a paper or inbox agency: where its answer period starts.

298-п Порядок п.11 (Регламент п.12): the request is answered within 5 working days «со дня
получения межведомственного запроса» — from its **receipt**. A webhook agency receives it
with the 2xx of the delivery (``engine.routes.transitions.mark_delivered``). A request to an
agency without a system of its own (298-п Регламент п.13: paper or electronic exchange) is
put in its inbox when prepared, and is received when delivery is confirmed:

- the agency opens it in its inbox (``api/web/inbox_pages.py``), or
- staff record that the paper request was delivered, with when (``POST
  /api/requests/{id}/receipt``, ``rehab route receipt``).

Until then the step is ``sending`` and shows "awaiting receipt": the send-by deadline of
Порядок п.10 still runs and its ladder still climbs. The receipt is recorded once
(``received_by_agency``), and only while the request awaits it; later openings, and openings
of a withdrawn request (a refusal, 004 п.11), change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from engine.answers.by_hand import RECEIPT_ACTION
from engine.errors import EngineError, NotFoundError
from engine.infra import audit
from engine.infra.locks import lock_step, reread
from engine.routes.transitions import EngineConfig, mark_delivered
from models.agencies import AgencyRequest, RequestChannel, RequestState
from models.audit import AuditEvent
from models.routes import Route, Step, StepStatus


@dataclass(frozen=True)
class Receipt:
    request_id: str
    recorded: bool  # False: it was received before (nothing changed)
    answer_by_date: str | None


def awaiting_receipt(req: AgencyRequest | None, step: Step) -> bool:
    """The step's request lies in a paper/inbox agency's inbox, not yet received."""
    return (req is not None and step.status is StepStatus.sending
            and req.id == step.current_request_id and req.channel is RequestChannel.inbox
            and req.state is RequestState.delivered)


def steps_awaiting_receipt(session: Session, step_ids: list[str]) -> set[str]:
    """Of ``step_ids``, the steps whose request awaits its receipt (one query)."""
    if not step_ids:
        return set()
    rows = session.exec(
        select(Step.id).join(AgencyRequest, col(AgencyRequest.id) == col(Step.current_request_id))
        .where(col(Step.id).in_(step_ids), Step.status == StepStatus.sending,
               AgencyRequest.channel == RequestChannel.inbox,
               AgencyRequest.state == RequestState.delivered))
    return set(rows)


def route_of_request(session: Session, request_id: str) -> Route | None:
    """The route a request belongs to (None: no such request)."""
    return session.exec(
        select(Route).join(Step, col(Step.route_id) == col(Route.id))
        .join(AgencyRequest, col(AgencyRequest.step_id) == col(Step.id))
        .where(AgencyRequest.id == request_id)).first()


def confirm_receipt(session: Session, cfg: EngineConfig, *, request_id: str, now: datetime,
                    actor: str, received_at: datetime | None = None) -> Receipt:
    """Record the receipt of a paper/inbox request (in the caller's transaction): the step
    starts waiting for the answer, due ``answer_days`` working days from ``received_at``
    (default ``now``) in the agency's calendar (298-п Порядок п.11). ``received_at`` must
    carry a time zone, not be in the future and not precede the request's preparation.
    Received before, or not awaiting its receipt (withdrawn, replaced, answered): nothing
    changes (``recorded`` False)."""
    req = session.get(AgencyRequest, request_id)
    if req is None:
        raise NotFoundError(f"request_id: no request {request_id!r}")
    at = received_at or now
    if at.tzinfo is None:
        raise EngineError("received_at: must carry a time zone", rule="time_zone")
    if at > now:
        raise EngineError("received_at: must not be in the future", rule="future_date")
    if at < req.created_at:
        raise EngineError("received_at: must not precede the request's preparation "
                          f"({req.created_at.isoformat()})", rule="before_preparation")
    step = lock_step(session, req.step_id)
    assert step is not None
    seen = session.exec(select(AuditEvent.id).where(
        AuditEvent.entity == "request", AuditEvent.entity_id == req.id,
        AuditEvent.action == RECEIPT_ACTION).limit(1)).first()
    if seen is not None:
        return Receipt(req.id, False, step.answer_by_date.isoformat()
                       if step.answer_by_date else None)
    if req.channel is not RequestChannel.inbox:
        raise EngineError("request_id: a webhook agency's request is received with its "
                          "delivery (the 2xx), not recorded by hand", rule="webhook_receipt")
    fresh = reread(session, AgencyRequest, req.id)  # its state as of the step's lock
    assert fresh is not None
    req = fresh
    if not awaiting_receipt(req, step):
        # withdrawn (a refusal, a suspension, a termination), replaced or answered: no
        # receipt — a request withdrawn and sent again is received when it is opened again
        return Receipt(req.id, False, step.answer_by_date.isoformat()
                       if step.answer_by_date else None)
    audit.record(session, at=now, actor=actor, entity="request", entity_id=req.id,
                 route_id=step.route_id, action=RECEIPT_ACTION,
                 after={"channel": req.channel.value, "received_at": at})
    mark_delivered(session, cfg, req, now=now, received_at=at)
    return Receipt(req.id, True, step.answer_by_date.isoformat()
                   if step.answer_by_date else None)
