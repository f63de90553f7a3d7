"""Use cases of the route engine, each in the caller's transaction.

A route is a row; a waiting route is a row and a few timers. Every change writes its audit
record and enqueues the route's Prefect mirror in the same transaction, so a crash at any
moment leaves either all of a transition or none of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

import calendars
from engine import audit, timers
from engine.queue import enqueue
from engine.settings import Settings
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
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import Ladder, RouteTemplate, get_template
from models.types import new_id

SYSTEM = "system:engine"


class EngineError(ValueError):
    """A use case refused: the message names the field and the rule."""


class NotFoundError(EngineError):
    """The thing does not exist (or is not visible to the caller)."""


@dataclass(frozen=True)
class EngineConfig:
    """What the use cases need from the settings."""

    sender_region: str
    public_base_url: str
    default_ladder: Ladder
    mirror: bool

    @classmethod
    def from_settings(cls, s: Settings) -> EngineConfig:
        return cls(
            sender_region=s.sender_region,
            public_base_url=s.effective_public_base_url,
            default_ladder=Ladder(s.reminder_days_before, s.escalate_after_days),
            mirror=s.prefect_mirror,
        )


def _mirror(session: Session, cfg: EngineConfig, route_id: str) -> None:
    if cfg.mirror:
        enqueue(session, JobKind.mirror_route, route_id)


# --------------------------------------------------------------------------- registration
def register_application(
    session: Session,
    cfg: EngineConfig,
    *,
    now: datetime,
    person_id: str,
    template_code: str,
    region: str | None = None,
    registered_at: datetime | None = None,
    coordinator_id: str | None = None,
    actor: str = SYSTEM,
) -> Route:
    """Register a person's application and start the route's first step.

    The application (298-п Регламент п.14; 363н п.12) starts the route; its first request is
    due within 1 working day of registration (298-п Порядок п.10).
    """
    template = get_template(template_code)
    person = session.get(Person, person_id)
    if person is None:
        raise NotFoundError(f"person_id: no person {person_id!r}")
    region = region or person.region
    calendars.get_calendar(region)  # unknown region -> CalendarError naming it
    reg_at = registered_at or now
    if reg_at.tzinfo is None:
        raise EngineError("registered_at: must carry a time zone")
    route = Route(
        id=new_id("rt"), person_id=person_id, region=region, template=template.code,
        registered_at=reg_at, coordinator_id=coordinator_id,
    )
    session.add(route)
    for seq, st in enumerate(template.steps):
        session.add(Step(
            id=f"{route.id}-s{seq}", route_id=route.id, seq=seq, kind=st.kind,
            role=st.role.value, optional=st.optional,
        ))
    session.flush()
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="registered",
                 after={"template": template.code, "region": region,
                        "registered_at": reg_at})
    first = _step(session, route.id, 0)
    _start_step(session, cfg, route, template, first, ready_at=reg_at, now=now, actor=actor)
    _mirror(session, cfg, route.id)
    return route


def _step(session: Session, route_id: str, seq: int) -> Step:
    step = session.exec(
        select(Step).where(Step.route_id == route_id, Step.seq == seq)
    ).one()
    return step


def pick_agency(session: Session, *, role: str, region: str, route_id: str,
                exclude: str | None = None) -> Agency:
    """A participant of ``role`` in ``region`` (spread over routes by a stable hash)."""
    with session.no_autoflush:
        rows = list(session.exec(
            select(Agency)
            .where(Agency.role == role, Agency.region == region, col(Agency.active).is_(True))
            .order_by(col(Agency.id))
        ))
    rows = [a for a in rows if a.id != exclude]
    if not rows:
        raise EngineError(f"agency: no active participant with role {role!r} in region {region}")
    h = int(hashlib.sha256(route_id.encode()).hexdigest()[:8], 16)
    return rows[h % len(rows)]


def _start_step(
    session: Session, cfg: EngineConfig, route: Route, template: RouteTemplate, step: Step,
    *, ready_at: datetime, now: datetime, actor: str, agency: Agency | None = None,
) -> None:
    """Make ``step`` ready: choose its agency, prepare the request, start the send-by timer.

    298-п Порядок п.10: the request is prepared and sent within 1 working day.
    """
    st = template.step(step.seq)
    agency = agency or pick_agency(session, role=step.role, region=route.region,
                                   route_id=route.id)
    send = calendars.deadline(ready_at, st.send_days, cfg.sender_region)
    before = {"status": step.status.value}
    step.agency_id = agency.id
    step.status = StepStatus.sending
    step.ready_at = ready_at
    step.send_by = send.due_at
    step.send_by_date = send.due_date
    step.deadline_provisional = send.provisional
    route.current_seq = step.seq
    session.add_all([route, step])
    timers.schedule_send_deadline(session, step, region=cfg.sender_region)
    if not agency.endpoint_url:
        session.flush()  # the send-by timer exists before the inbox delivery cancels it
    request = _new_request(session, cfg, route, template, step, agency, now=now)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="ready", before=before,
                 after={"status": step.status.value, "agency_id": agency.id,
                        "send_by": send.due_date, "request_id": request.id})


def _new_request(
    session: Session, cfg: EngineConfig, route: Route, template: RouteTemplate, step: Step,
    agency: Agency, *, now: datetime, extra: dict[str, Any] | None = None,
) -> AgencyRequest:
    """Prepare the step's request (it becomes the step's current one) and send it: over
    HTTP by a worker, or straight into the agency's inbox."""
    st = template.step(step.seq)
    with session.no_autoflush:
        person = session.get(Person, route.person_id)
    assert person is not None
    request_id = new_id("tk")
    expected = calendars.deadline(now, st.answer_days, agency.region)
    # 152-ФЗ: the agency gets only what its step needs to identify the person.
    body: dict[str, Any] = {
        "task_id": request_id,
        "idempotency_key": request_id,
        "route_id": route.id,
        "step": step.kind,
        "requested": st.requested,
        "basis": st.basis,
        "subject": {"snils": person.snils, "full_name": person.full_name,
                    "birth_date": person.birth_date.isoformat()},
        "answer_within_working_days": st.answer_days,
        "answer_by": expected.due_at.isoformat(),
        "answer_by_date": expected.due_date.isoformat(),
        "callback_url": f"{cfg.public_base_url}/webhooks/agencies/{agency.id}",
        **(extra or {}),
    }
    channel = RequestChannel.http if agency.endpoint_url else RequestChannel.inbox
    req = AgencyRequest(
        id=request_id, step_id=step.id, agency_id=agency.id, idempotency_key=request_id,
        channel=channel, body=body, created_at=now,
    )
    session.add(req)
    step.current_request_id = req.id
    session.add(step)
    audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                 route_id=route.id, action="prepared",
                 after={"agency_id": agency.id, "channel": channel.value})
    if channel is RequestChannel.http:
        enqueue(session, JobKind.send_request, req.id)
    else:
        # 298-п Регламент п.13: paper or electronic exchange; the inbox is the agency's desk.
        session.flush()
        mark_delivered(session, cfg, req, now=now)
    return req


# --------------------------------------------------------------------------- delivery
def mark_delivered(session: Session, cfg: EngineConfig, req: AgencyRequest, *,
                   now: datetime) -> None:
    """The agency received the request: the 5-working-day answer period starts the next
    day in the agency's time zone (298-п Порядок п.11, Регламент п.12)."""
    step = session.get(Step, req.step_id)
    agency = session.get(Agency, req.agency_id)
    assert step is not None and agency is not None
    route = session.get(Route, step.route_id)
    assert route is not None
    template = get_template(route.template)
    st = template.step(step.seq)
    req.state = RequestState.delivered
    req.delivered_at = now
    session.add(req)
    if step.current_request_id != req.id or step.status is not StepStatus.sending:
        return  # superseded meanwhile; the agency will be told of the cancel
    due = calendars.deadline(now, st.answer_days, agency.region)
    step.status = StepStatus.awaiting
    step.sent_at = now
    step.answer_by = due.due_at
    step.answer_by_date = due.due_date
    step.deadline_provisional = step.deadline_provisional or due.provisional
    session.add(step)
    timers.cancel_pending(session, step.id, reason="request delivered", now=now)
    version = _next_deadline_version(session, step.id)
    for t in timers.answer_timers(step, region=agency.region, anchor_at=now,
                                  answer_days=st.answer_days,
                                  ladder=template.ladder_for(step.seq, cfg.default_ladder),
                                  version=version):
        session.add(t)
    audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                 route_id=route.id, action="delivered",
                 after={"channel": req.channel.value, "attempts": req.attempts})
    audit.record(session, at=now, actor=SYSTEM, entity="step", entity_id=step.id,
                 route_id=route.id, action="awaiting_answer",
                 before={"status": StepStatus.sending.value},
                 after={"status": step.status.value, "answer_by": due.due_date,
                        "provisional": due.provisional})
    _mirror(session, cfg, route.id)


def _next_deadline_version(session: Session, step_id: str) -> int:
    from models.timers import Timer

    with session.no_autoflush:  # answer timers are always flushed by cancel_pending first
        versions = session.exec(
            select(Timer.deadline_version).where(Timer.step_id == step_id))
        return max([0, *[v + 1 for v in versions]])


def mark_failed(session: Session, cfg: EngineConfig, req: AgencyRequest, *, now: datetime,
                error: str) -> None:
    """The agency refused the request itself (a 4xx): recorded; a person must look."""
    req.state = RequestState.failed
    req.last_error = error[:500]
    session.add(req)
    step = session.get(Step, req.step_id)
    audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                 route_id=step.route_id if step else None, action="delivery_failed",
                 after={"error": error[:200]})


# --------------------------------------------------------------------------- answers
@dataclass(frozen=True)
class AnswerIn:
    """A verified answer from an agency."""

    task_id: str
    outcome: AnswerOutcome
    payload: dict[str, Any]
    comment: str | None
    channel: RequestChannel = RequestChannel.http


def record_answer(
    session: Session, *, agency: Agency, webhook_id: str, answer: AnswerIn, now: datetime,
) -> tuple[AgencyAnswer, bool]:
    """Store an answer durably before it is acknowledged; return (answer, created).

    An agency may answer only its own tasks (NotFoundError otherwise). A repeated
    ``webhook-id`` returns the stored answer and changes nothing. A late answer is still
    accepted and recorded with its lateness in working days (298-п п.11).
    """
    existing = session.exec(
        select(AgencyAnswer).where(AgencyAnswer.agency_id == agency.id,
                                   AgencyAnswer.webhook_id == webhook_id)
    ).first()
    if existing is not None:
        return existing, False
    req = session.get(AgencyRequest, answer.task_id)
    if req is None or req.agency_id != agency.id:
        raise NotFoundError(f"task_id: no task {answer.task_id!r} addressed to this agency")
    step = session.get(Step, req.step_id)
    assert step is not None
    late = 0
    if step.answer_by is not None and step.answer_by_date is not None and now >= step.answer_by:
        late = working_days_late(step, agency.region, now)
    row = AgencyAnswer(
        agency_id=agency.id, webhook_id=webhook_id, request_id=req.id,
        outcome=answer.outcome, payload=answer.payload, comment=answer.comment,
        channel=answer.channel, received_at=now, late_working_days=late,
    )
    session.add(row)
    session.flush()
    audit.record(session, at=now, actor=f"agency:{agency.id}", entity="answer",
                 entity_id=str(row.id), route_id=step.route_id, action="received",
                 after={"request_id": req.id, "outcome": answer.outcome.value,
                        "late_working_days": late, "webhook_id": webhook_id})
    enqueue(session, JobKind.apply_answer, str(row.id))
    return row, True


def working_days_late(step: Step, region: str, at: datetime) -> int:
    """Working days between the answer deadline's day and the day of ``at`` (local)."""
    assert step.answer_by is not None and step.answer_by_date is not None
    if at < step.answer_by:
        return 0
    due = calendars.Deadline(due_date=step.answer_by_date, due_at=step.answer_by,
                             region=region, timezone=calendars.get_calendar(region).timezone,
                             provisional=step.deadline_provisional)
    return calendars.working_days_late(due, at)


def apply_answer(session: Session, cfg: EngineConfig, answer_id: int, *,
                 now: datetime) -> AnswerEffect:
    """Move the route on a stored answer (exactly once: the answer's effect is recorded).

    provided -> step answered; absent -> step completed with the notice of absence
    (298-п Порядок п.11: a valid completion); rejected -> the coordinator must clarify.
    """
    from engine import ladder  # escalations resolved by the answer (issue: the ladder)

    ans = session.get(AgencyAnswer, answer_id)
    if ans is None or ans.effect is not AnswerEffect.pending:
        return ans.effect if ans else AnswerEffect.already_answered
    req = session.get(AgencyRequest, ans.request_id)
    assert req is not None
    step = session.get(Step, req.step_id)
    assert step is not None
    route = session.get(Route, step.route_id)
    assert route is not None
    if req.state is RequestState.cancelled or step.current_request_id != req.id:
        ans.effect = AnswerEffect.request_cancelled
    elif step.status not in (StepStatus.awaiting, StepStatus.sending):
        ans.effect = AnswerEffect.already_answered
    else:
        before = {"status": step.status.value}
        if req.state is RequestState.queued:  # answer overtook our delivery record
            req.state = RequestState.delivered
            req.delivered_at = now
            session.add(req)
        step.answered_at = now
        step.late_working_days = ans.late_working_days
        step.status = {
            AnswerOutcome.provided: StepStatus.answered,
            AnswerOutcome.absent: StepStatus.absent,
            AnswerOutcome.rejected: StepStatus.needs_clarification,
        }[ans.outcome]
        step.outcome_note = ans.comment
        session.add(step)
        timers.cancel_pending(session, step.id, reason=f"answer {ans.id} received", now=now)
        ladder.resolve_on_answer(session, step, now=now, late_days=ans.late_working_days)
        audit.record(session, at=now, actor=SYSTEM, entity="step", entity_id=step.id,
                     route_id=route.id, action=f"answer_{ans.outcome.value}", before=before,
                     after={"status": step.status.value, "answer_id": ans.id,
                            "late_working_days": ans.late_working_days})
        ans.effect = AnswerEffect.moved_route
        if step.status.terminal:
            advance_route(session, cfg, route, now=now)
    session.add(ans)
    _mirror(session, cfg, route.id)
    return ans.effect


def advance_route(session: Session, cfg: EngineConfig, route: Route, *, now: datetime,
                  actor: str = SYSTEM) -> None:
    """Start the next step after a terminal one, or complete the route (298-п Регламент
    п.16: the steps go in their mandatory order)."""
    template = get_template(route.template)
    with session.no_autoflush:
        steps = list(session.exec(select(Step).where(Step.route_id == route.id)
                                  .order_by(col(Step.seq))))
    nxt = next((s for s in steps if s.status is StepStatus.planned), None)
    if nxt is None:
        if all(s.status.terminal for s in steps) and route.status is RouteStatus.active:
            route.status = RouteStatus.completed
            route.completed_at = now
            session.add(route)
            audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                         route_id=route.id, action="completed",
                         before={"status": RouteStatus.active.value},
                         after={"status": RouteStatus.completed.value})
        return
    _start_step(session, cfg, route, template, nxt, ready_at=now, now=now, actor=actor)


def resend_after_clarification(
    session: Session, cfg: EngineConfig, *, step_id: str, clarification: str, now: datetime,
    actor: str,
) -> AgencyRequest:
    """The coordinator clarifies a rejected request: a new request (new key) goes out, the
    old one stays in the history."""
    step = session.get(Step, step_id)
    if step is None:
        raise NotFoundError(f"step_id: no step {step_id!r}")
    if step.status is not StepStatus.needs_clarification:
        raise EngineError(
            f"step: only a step that needs clarification can be resent (it is {step.status})"
        )
    if not clarification.strip():
        raise EngineError("clarification: must not be empty")
    route = session.get(Route, step.route_id)
    assert route is not None and step.agency_id is not None
    agency = session.get(Agency, step.agency_id)
    assert agency is not None
    template = get_template(route.template)
    step.status = StepStatus.sending
    step.outcome_note = None
    req = _new_request(session, cfg, route, template, step, agency, now=now,
                       extra={"clarification": clarification})
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="resent_with_clarification",
                 before={"status": StepStatus.needs_clarification.value},
                 after={"status": step.status.value, "request_id": req.id},
                 reason=clarification)
    _mirror(session, cfg, route.id)
    return req
