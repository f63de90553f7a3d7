"""Answers in: storing agencies' answers durably before they are acknowledged.

An agency answers an interagency request with the information, a notice that it is absent,
or a rejection needing clarification (298-п Порядок п.11, Регламент п.12). The answer is
stored, with its audit record and the job that will move the route, in the caller's
transaction; only after that transaction commits is it acknowledged. Applying it to the
route is the worker's (``engine.routes.transitions.apply_answer``).

``record_answers`` stores a whole batch with a handful of statements — the API's answer
writer group-commits the answers that arrive together (``api/answer_writer.py``), and its
latency is what agencies see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

import calendars
from engine.errors import EngineError, NotFoundError
from engine.infra import audit
from engine.infra.queue import enqueue_many
from models.agencies import (
    Agency,
    AgencyAnswer,
    AgencyRequest,
    AnswerEffect,
    AnswerOutcome,
    RequestChannel,
    RequestState,
)
from models.jobs import JobKind
from models.routes import Step, StepStatus
from models.types import utcnow


class WebhookIdConflict(EngineError):
    """A stored ``webhook-id`` came again with a different body: the new answer is not
    stored (an agency must use a new webhook-id for a new answer)."""


@dataclass(frozen=True)
class AnswerIn:
    """A verified answer from an agency."""

    task_id: str
    outcome: AnswerOutcome
    payload: dict[str, Any]
    comment: str | None
    channel: RequestChannel = RequestChannel.http


@dataclass(frozen=True)
class IncomingAnswer:
    """An answer to store: from which agency, under which ``webhook-id``."""

    agency_id: str
    webhook_id: str
    answer: AnswerIn
    body_sha256: str | None = None  # of the raw body as signed (None: not compared)


@dataclass(frozen=True)
class StoredAnswer:
    """A stored answer: new (``created``) or the one stored before under that webhook-id.

    ``not_applied``: why the new answer will not move the route, as things stand when it is
    stored — ``already_answered`` (the task has an answer already) or ``request_cancelled``
    (the request was withdrawn: reassigned or closed); None: it will be applied.
    """

    answer_id: int
    task_id: str
    created: bool
    late_working_days: int
    not_applied: str | None = None


_ANSWERS = AgencyAnswer.__table__  # type: ignore[attr-defined]
_REQUESTS = AgencyRequest.__table__  # type: ignore[attr-defined]
_STEPS = Step.__table__  # type: ignore[attr-defined]
_AGENCIES = Agency.__table__  # type: ignore[attr-defined]


def _insert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (agency_id, webhook_id) DO NOTHING RETURNING: an answer that
    another API process stored a moment ago is not inserted twice (and is not returned)."""
    ins: Any = pg_insert(_ANSWERS) if dialect == "postgresql" else sqlite_insert(_ANSWERS)
    return ins.on_conflict_do_nothing(index_elements=["agency_id", "webhook_id"]).returning(
        _ANSWERS.c.id, _ANSWERS.c.agency_id, _ANSWERS.c.webhook_id)


_OPEN_STEP = (StepStatus.awaiting.value, StepStatus.sending.value)
_INSERTS = {"postgresql": _insert("postgresql"), "sqlite": _insert("sqlite")}


_Stored = tuple[StoredAnswer, str | None]  # the answer and the digest of its body


def _stored(conn: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Stored]:
    """The answers stored under these (agency, webhook-id) keys, with their body digests."""
    key_col = tuple_(_ANSWERS.c.agency_id, _ANSWERS.c.webhook_id)
    return {(row.agency_id, row.webhook_id): (StoredAnswer(
                row.id, row.request_id, False, row.late_working_days), row.body_sha256)
            for row in conn.execute(
                select(_ANSWERS.c.id, _ANSWERS.c.agency_id, _ANSWERS.c.webhook_id,
                       _ANSWERS.c.request_id, _ANSWERS.c.late_working_days,
                       _ANSWERS.c.body_sha256)
                .where(key_col.in_(keys)))}


def _conflict(webhook_id: str) -> WebhookIdConflict:
    return WebhookIdConflict(
        f"webhook-id: {webhook_id!r} was used before for another body; this answer is not "
        "stored (a new answer needs a new webhook-id)")


def _same_body(stored_digest: str | None, digest: str | None) -> bool:
    """A repeat is a duplicate when its body is the stored one (or either digest is unknown:
    answers stored before the digest was kept, calls that do not give one)."""
    return stored_digest is None or digest is None or stored_digest == digest


def late_working_days(answer_by: datetime | None, answer_by_date: date | None, region: str,
                      provisional: bool, at: datetime) -> int:
    """Working days an answer at ``at`` is late against the step's answer deadline (0 when
    on time or late only by days off; 298-п п.11), in the agency's region."""
    if answer_by is None or answer_by_date is None or at < answer_by:
        return 0
    due = calendars.Deadline(due_date=answer_by_date, due_at=answer_by, region=region,
                             timezone=calendars.get_calendar(region).timezone,
                             provisional=provisional)
    return calendars.working_days_late(due, at)


def record_answers(session: Session, items: Sequence[IncomingAnswer], *,
                   now: datetime) -> list[StoredAnswer | EngineError]:
    """Store the answers in the caller's transaction; one result per item, in order.

    An agency may answer only its own tasks (NotFoundError otherwise, nothing stored for that
    item). A repeated ``webhook-id`` of an agency returns the answer stored under it and
    changes nothing. A late answer is stored with its lateness in working days (298-п п.11).
    Each new answer gets its audit record and an ``apply_answer`` job.
    """
    conn = session.connection()
    keys = list({(i.agency_id, i.webhook_id) for i in items})
    stored = _stored(conn, keys) if keys else {}
    task_ids = list({i.answer.task_id for i in items})
    answered_before = (select(_ANSWERS.c.id).where(_ANSWERS.c.request_id == _REQUESTS.c.id)
                       .exists().label("answered_before"))
    targets = {row.id: row for row in conn.execute(
        select(_REQUESTS.c.id, _REQUESTS.c.agency_id, _REQUESTS.c.state, _STEPS.c.route_id,
               _STEPS.c.answer_by, _STEPS.c.answer_by_date, _STEPS.c.deadline_provisional,
               _STEPS.c.status.label("step_status"), _STEPS.c.current_request_id,
               _AGENCIES.c.region, answered_before)
        .join(_STEPS, _STEPS.c.id == _REQUESTS.c.step_id)
        .join(_AGENCIES, _AGENCIES.c.id == _REQUESTS.c.agency_id)
        .where(_REQUESTS.c.id.in_(task_ids)))} if task_ids else {}
    answered: set[str] = {t for t, row in targets.items() if row.answered_before}

    results: list[StoredAnswer | EngineError | tuple[str, str]] = []
    new: dict[tuple[str, str], dict[str, Any]] = {}  # (agency, webhook-id) → row to insert
    not_applied: dict[tuple[str, str], str] = {}
    for item in items:
        key = (item.agency_id, item.webhook_id)
        if key in stored or key in new:
            known = stored[key][1] if key in stored else new[key]["body_sha256"]
            # resolved below (a duplicate of a stored or a new answer), unless another body
            results.append(key if _same_body(known, item.body_sha256)
                           else _conflict(item.webhook_id))
            continue
        target = targets.get(item.answer.task_id)
        if target is None or target.agency_id != item.agency_id:
            results.append(NotFoundError(
                f"task_id: no task {item.answer.task_id!r} addressed to this agency"))
            continue
        late = late_working_days(target.answer_by, target.answer_by_date, target.region,
                                 target.deadline_provisional, now)
        ans = item.answer
        if (target.state == RequestState.cancelled.value
                or target.current_request_id != target.id):
            not_applied[key] = AnswerEffect.request_cancelled.value
        elif target.id in answered or target.step_status not in _OPEN_STEP:
            not_applied[key] = AnswerEffect.already_answered.value
        answered.add(target.id)
        new[key] = {
            "agency_id": item.agency_id, "webhook_id": item.webhook_id,
            "body_sha256": item.body_sha256, "request_id": target.id,
            "outcome": ans.outcome, "payload": ans.payload,
            "comment": ans.comment, "channel": ans.channel, "received_at": now,
            "received_real_at": utcnow(), "late_working_days": late,
            "effect": AnswerEffect.pending}
        results.append(key)
    if new:
        inserted = {(r.agency_id, r.webhook_id): int(r.id)
                    for r in conn.execute(_INSERTS[conn.dialect.name], list(new.values()))}
        raced = [k for k in new if k not in inserted]
        if raced:  # another process stored these webhook-ids since we looked: duplicates
            stored.update(_stored(conn, raced))
            results = [_conflict(r[1]) if isinstance(r, tuple) and r in raced
                       and not _same_body(stored[r][1], new[r]["body_sha256"]) else r
                       for r in results]
        created = [(inserted[k], row) for k, row in new.items() if k in inserted]
        for answer_id, row in created:
            key = (row["agency_id"], row["webhook_id"])
            stored[key] = (StoredAnswer(answer_id, row["request_id"], True,
                                        row["late_working_days"], not_applied.get(key)),
                           row["body_sha256"])
        for agency_id in dict.fromkeys(row["agency_id"] for _, row in created):
            audit.record_many(session, at=now, actor=f"agency:{agency_id}", entries=[
                audit.Entry(entity="answer", entity_id=str(answer_id),
                            route_id=targets[row["request_id"]].route_id, action="received",
                            after={"request_id": row["request_id"],
                                   "outcome": row["outcome"].value,
                                   "late_working_days": row["late_working_days"],
                                   "webhook_id": row["webhook_id"]})
                for answer_id, row in created if row["agency_id"] == agency_id])
        enqueue_many(session, JobKind.apply_answer, [str(i) for i, _ in created])
    out: list[StoredAnswer | EngineError] = []
    first_use: set[tuple[str, str]] = set()
    for res in results:
        if not isinstance(res, tuple):
            out.append(res)
            continue
        s = stored[res][0]
        if s.created and res not in first_use:
            first_use.add(res)
            out.append(s)
        else:  # the same webhook-id again (before, or earlier in this batch)
            out.append(StoredAnswer(s.answer_id, s.task_id, False, s.late_working_days))
    return out
