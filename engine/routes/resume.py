"""Suspended routes resumed on a new consent, with the working days they had left.

152-ФЗ art. 9 ч.2: a withdrawal stops processing; ч.1: a new consent — specific, informed,
for its purposes — allows it again. 004 п.11: the person may refuse accompaniment and resume
it at any time during the ИПРА's term; п.12: to resume is the person's application. So a new
consent does **not** resume anything by itself: it makes resuming possible, and a coordinator
resumes each route on the person's request (``resume_route``, ``POST
/api/routes/{id}/resume``), one transaction per route.

At suspension (``record_remaining``, called by ``engine.consent_withdrawal.suspend_route``
before the timers stop) each open step's remaining working days of its send-by, answer-by and
complete-by deadlines are stored (``models.suspension.StepSuspension``). On resume each
deadline is set that many working days after the instant of resume (a deadline with no day
left is due at the end of the resume day), its ladder re-armed, and the withdrawn request is
sent again **with its own idempotency key** — the same request, so an agency that kept it
recognises it (``docs/agencies.md``: one key for the life of a request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import pendulum
from sqlmodel import Session, col, select

import calendars
from engine.errors import EngineError, NotFoundError
from engine.escalations import recurrence, timers
from engine.infra import audit
from engine.infra.locks import lock_step
from engine.infra.queue import enqueue
from engine.routes.refusal_hold import days_left as days_left  # re-exported
from engine.routes.transitions import EngineConfig, mirror_later
from models import regions
from models.agencies import Agency, AgencyRequest, RequestChannel, RequestState
from models.consent import ConsentPurpose, ConsentRecord, consent_status
from models.jobs import JobKind
from models.person_file import ConsentVersion
from models.routes import Route, RouteStatus, Step, StepStatus
from models.suspension import StepSuspension
from models.templates import RouteTemplate, template_of
from models.timers import DeadlineKind, Timer, TimerKind, TimerStatus


class NotSuspended(EngineError):
    """Only a suspended route can be resumed."""


class ConsentNotInEffect(EngineError):
    """The person has no consent in effect for the route's purpose (152-ФЗ art. 9 ч.1)."""


@dataclass
class Resumed:
    route_id: str
    steps: list[str] = field(default_factory=list)
    requests_resent: list[str] = field(default_factory=list)
    timers_armed: int = 0


def _local_day(at: datetime, region: str) -> date:
    cal = calendars.get_calendar(region)
    local = pendulum.instance(at).in_timezone(cal.timezone)
    return date(local.year, local.month, local.day)


def due_after(at: datetime, days: int, region: str) -> calendars.Deadline:
    """``days`` working days after ``at`` (298-п п.10–12 counting); 0: the end of that day."""
    if days >= 1:
        return calendars.deadline(at, days, region)
    return timers.end_of_day(_local_day(at, region), region)


def record_remaining(session: Session, cfg: EngineConfig, route: Route, step: Step, *,
                     now: datetime, reason: str) -> StepSuspension | None:
    """Store what an open step had left at the route's suspension (before its timers stop);
    None for a step that is done or not started."""
    if step.status.terminal or step.status in (StepStatus.planned, StepStatus.paused):
        return None  # a paused step keeps the row of its refusal (engine.routes.refusal)
    answer_region = route.region
    if step.agency_id is not None:
        agency = session.get(Agency, step.agency_id)
        answer_region = agency.region if agency is not None else route.region
    sending = step.status is StepStatus.sending
    awaiting = step.status is StepStatus.awaiting
    row = StepSuspension(
        step_id=step.id, route_id=route.id, status=step.status.value,
        request_id=step.current_request_id,
        send_days_left=days_left(step.send_by_date,
                                 regions.send_calendar(route.region, cfg.sender_region),
                                 now) if sending else None,
        send_by_date=step.send_by_date if sending else None,
        answer_days_left=days_left(step.answer_by_date, answer_region, now) if awaiting
        else None,
        answer_by_date=step.answer_by_date if awaiting else None,
        complete_days_left=days_left(step.complete_by_date, route.region, now),
        complete_by_date=step.complete_by_date, suspended_at=now, reason=reason[:500])
    session.add(row)
    return row


def consent_in_effect(session: Session, person_id: str, purpose: ConsentPurpose,
                      at: datetime) -> bool:
    """Whether one of the person's consents allows processing for ``purpose`` at ``at``
    (152-ФЗ art. 9: given, not withdrawn, not expired, covering the purpose and its data)."""
    rows = session.exec(select(ConsentVersion).where(ConsentVersion.person_id == person_id)
                        .order_by(col(ConsentVersion.consent_id), col(ConsentVersion.version)))
    by_id: dict[str, list[ConsentRecord]] = {}
    for r in rows:
        by_id.setdefault(r.consent_id, []).append(ConsentRecord.model_validate(r.record))
    return any(consent_status(h, purpose=purpose, at=at).valid for h in by_id.values())


def route_purpose(route: Route) -> ConsentPurpose:
    """The purpose a route's data are processed for: its kind (``models.consent``)."""
    try:
        return ConsentPurpose(route.template)
    except ValueError:
        raise EngineError(f"route: template {route.template!r} has no consent purpose") from None


def resume_route(session: Session, cfg: EngineConfig, *, route_id: str, now: datetime,
                 actor: str, reason: str = "возобновление по заявлению (363н п.11, п.12)",
                 ) -> Resumed:
    """Resume a suspended route in the caller's transaction (one route, one transaction).

    Requires a consent in effect for the route's purpose (``ConsentNotInEffect`` otherwise:
    152-ФЗ art. 9 ч.1). Each step open at the suspension gets back the working days it had
    left on each deadline, with its ladder; its withdrawn request goes out again under its
    own idempotency key (HTTP: queued for a worker; inbox: shown in the agency's inbox). The
    route is ``active`` again; audited; the Prefect mirror is told (identifiers only)."""
    route = session.get(Route, route_id)
    if route is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    if route.status is not RouteStatus.suspended:
        raise NotSuspended(f"route: {route.id} is {route.status.value}, not suspended")
    purpose = route_purpose(route)
    if not consent_in_effect(session, route.person_id, purpose, now):
        raise ConsentNotInEffect(f"consent: no consent in effect for {purpose.value}; "
                                 "record a new consent first")
    template = template_of(route)
    out = Resumed(route_id=route.id)
    rows = list(session.exec(select(StepSuspension).where(
        StepSuspension.route_id == route.id, col(StepSuspension.resumed_at).is_(None),
        col(StepSuspension.refusal_id).is_(None))
        .order_by(col(StepSuspension.id))))
    route.status = RouteStatus.active
    session.add(route)
    for row in rows:
        step = lock_step(session, row.step_id)
        assert step is not None
        row.resumed_at = now
        session.add(row)
        if step.status.terminal:
            continue
        resume_step(session, cfg, route, template, row, step, now=now, actor=actor,
                    reason=reason, out=out)
    out.timers_armed += _restart_recurrences(session, route, template, now=now, actor=actor)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="resumed",
                 before={"status": RouteStatus.suspended.value},
                 after={"status": RouteStatus.active.value, "steps": out.steps,
                        "requests_resent": out.requests_resent,
                        "timers_armed": out.timers_armed}, reason=reason)
    mirror_later(session, cfg, route.id)
    session.flush()
    return out


def _restart_recurrences(session: Session, route: Route, template: RouteTemplate, *,
                         now: datetime, actor: str) -> int:
    """The suspension cancelled the next occurrence of each recurring check between
    occurrences (001 Регламент п.6 пп.8; 000 п.10): schedule it again
    (``recurrence.schedule_next``: ``period_days`` working days after the last occurrence
    opened — at once if that day has passed). Returns the timers armed."""
    with session.no_autoflush:
        candidates = list(session.exec(select(Step.id).where(
            Step.route_id == route.id,
            col(Step.status).in_([StepStatus.answered, StepStatus.absent]))
            .order_by(col(Step.seq))))
    armed = 0
    for step_id in candidates:
        step = lock_step(session, step_id)
        assert step is not None
        if step.seq >= len(template.steps):
            continue
        period = template.step(step.seq).period_days
        if period is None or not step.status.terminal or step.status is StepStatus.cancelled:
            continue
        pending = session.exec(select(Timer.id).where(
            Timer.step_id == step.id, Timer.kind == TimerKind.recur_next,
            Timer.status == TimerStatus.pending).limit(1)).first()
        if pending is None:
            recurrence.schedule_next(session, step, period_days=period, region=route.region,
                                     now=now, actor=actor)
            armed += 1
    return armed


def _resend(session: Session, req: AgencyRequest, *, now: datetime, actor: str,
            route_id: str) -> None:
    """The withdrawn request goes out again under its own idempotency key (the stored body,
    identifiers only, is sent as it was: the same key, the same bytes)."""
    agency = session.get(Agency, req.agency_id)
    assert agency is not None
    before = {"state": req.state.value}
    req.cancelled_at = None
    if req.channel is RequestChannel.http and agency.endpoint_url:
        req.state = RequestState.queued
        enqueue(session, JobKind.send_request, req.id)
    else:  # the agency's inbox shows it again at once
        req.state = RequestState.delivered
        req.delivered_at = now
    session.add(req)
    audit.record(session, at=now, actor=actor, entity="request", entity_id=req.id,
                 route_id=route_id, action="resent_on_resume", before=before,
                 after={"state": req.state.value, "idempotency_key": req.idempotency_key})


def resume_step(session: Session, cfg: EngineConfig, route: Route, template: RouteTemplate,
                row: StepSuspension, step: Step, *, now: datetime, actor: str, reason: str,
                out: Resumed) -> None:
    """Give one stopped step back what ``row`` says it had left (the caller locked the step
    and set its status back): each deadline that many working days after ``now`` with its
    ladder, and its withdrawn request sent again under its own idempotency key. Audited
    (``resumed``); shared by the consent resume and the participant's resume (004 п.11)."""
    out.steps.append(step.id)
    ladder = template.ladder_for(step.seq, cfg.default_ladder)
    version = timers.next_version(session, step.id)
    specs: list[timers.TimerSpec] = []
    after: dict[str, object] = {"status": step.status.value}
    if step.status is StepStatus.sending and row.send_days_left is not None:
        due = due_after(now, row.send_days_left,
                        regions.send_calendar(route.region, cfg.sender_region))
        step.send_by, step.send_by_date = due.due_at, due.due_date
        specs += timers.ladder_timers(DeadlineKind.send_by, step, due=due, anchor_at=now,
                                      working_days=row.send_days_left, ladder=ladder,
                                      version=version)
        after |= {"send_by": due.due_date, "send_days_left": row.send_days_left}
    if step.status is StepStatus.awaiting and row.answer_days_left is not None:
        region = route.region
        if step.agency_id is not None:
            agency = session.get(Agency, step.agency_id)
            region = agency.region if agency is not None else region
        due = due_after(now, row.answer_days_left, region)
        step.answer_by, step.answer_by_date = due.due_at, due.due_date
        step.deadline_provisional = due.provisional
        specs += timers.answer_timers(step, region=region, anchor_at=now,
                                      answer_days=row.answer_days_left, ladder=ladder,
                                      version=version)
        after |= {"answer_by": due.due_date, "answer_days_left": row.answer_days_left}
    if step.complete_by_date is not None and row.complete_days_left is not None:
        if step.complete_by_source == "ipra" and step.ipra_due_date is not None:
            # the ИПРА's «срок исполнения» is the МСЭ's date: a suspension does not move it
            due = timers.end_of_day(step.ipra_due_date, route.region)
            days = 0
        else:
            days = row.complete_days_left
            due = due_after(now, days, route.region)
        step.complete_by_date = due.due_date
        specs += timers.ladder_timers(DeadlineKind.complete_by, step, due=due,
                                      anchor_at=now, working_days=days, ladder=ladder,
                                      version=version)
        after |= {"complete_by": due.due_date}
    session.add(step)
    out.timers_armed += len(timers.add_timers(session, specs, now=now, actor=actor,
                                              reason="route resumed"))
    req = session.get(AgencyRequest, row.request_id) if row.request_id else None
    if req is not None and req.id == step.current_request_id and \
            req.state is RequestState.cancelled and step.status in (
                StepStatus.sending, StepStatus.awaiting):
        _resend(session, req, now=now, actor=actor, route_id=route.id)
        out.requests_resent.append(req.id)
        after["request_id"] = req.id
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="resumed", after=after, reason=reason)
