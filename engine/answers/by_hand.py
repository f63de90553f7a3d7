"""Answers typed in by a person — an agency user in the agency's inbox, or staff recording a
paper answer received (298-п Регламент п.13: paper or electronic exchange). They go down
the same path as a webhook: stored once by the answer intake (``record_answers``: the
answer, its audit record and its ``apply_answer`` job in one commit), applied by the worker.
The form's one-time nonce is the ``webhook-id``, so a form sent twice stores one answer."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from engine.answers.intake import AnswerIn, IncomingAnswer, StoredAnswer, record_answers
from engine.errors import EngineError
from models.agencies import AgencyRequest, AnswerOutcome, RequestChannel
from models.text import is_blank

RECEIPT_ACTION = "received_by_agency"
"""The audit action of a paper/inbox request's receipt (``engine.routes.receipt``)."""


def answer_by_hand(session: Session, *, request_id: str, outcome: str, information: str,
                   comment: str, nonce: str, actor: str, now: datetime) -> StoredAnswer:
    """Store the answer to ``request_id`` for its agency (the caller commits). Refused,
    nothing stored: an unknown outcome, a rejection without a reason (298-п п.12), more
    than 2000 characters of comment or 4000 of information."""
    try:
        kind = AnswerOutcome(outcome)
    except ValueError:
        raise EngineError("outcome: must be provided, absent or rejected",
                          rule="choice") from None
    if kind is AnswerOutcome.rejected and is_blank(comment):
        raise EngineError("comment: required when outcome is 'rejected' (say what must be "
                          "clarified, with visible characters)", rule="required_if_rejected")
    if len(comment) > 2000:
        raise EngineError("comment: at most 2000 characters", rule="max_length",
                          params={"max": 2000})
    if len(information) > 4000:
        raise EngineError("information: at most 4000 characters", rule="max_length",
                          params={"max": 4000})
    if not 8 <= len(nonce) <= 100:
        raise EngineError("nonce: the form's one-time key is missing; open the form again",
                          rule="form_expired")
    req = session.get(AgencyRequest, request_id)
    if req is None:
        raise EngineError(f"task_id: no request {request_id!r}", rule="unknown")
    payload = {"information": information.strip()} if information.strip() else {}
    payload["entered_by"] = actor
    item = IncomingAnswer(agency_id=req.agency_id, webhook_id=f"page:{nonce}",
                          answer=AnswerIn(req.id, kind, payload, comment.strip() or None,
                                          channel=RequestChannel.inbox))
    result = record_answers(session, [item], now=now)[0]
    if isinstance(result, EngineError):
        raise result
    return result
