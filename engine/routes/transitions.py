"""Use cases of the route engine, each in the caller's transaction.

A route is a row; a waiting route is a row and a few timers. Every change writes its audit
record and enqueues the route's Prefect mirror in the same transaction, so a crash at any
moment leaves either all of a transition or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pendulum
from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

import calendars
from engine.agencies.providers import pick_provider
from engine.answers.intake import AnswerIn as AnswerIn  # re-exported: the use cases' vocabulary
from engine.answers.intake import IncomingAnswer, late_working_days, record_answers
from engine.errors import EngineError, NotFoundError
from engine.escalations import ladder, recurrence, timers
from engine.infra import audit
from engine.infra.locks import lock_route, lock_step, reread
from engine.infra.queue import buffered as queue_buffered
from engine.infra.queue import enqueue
from engine.infra.row_writes import write_now
from engine.infra.settings import Settings
from engine.routes.ipra_term import arm_ipra_expiry
from engine.routes.refusal_hold import any_open_of as any_open_refusal
from engine.routes.refusal_hold import covering_refusal, hold_step
from models import regions
from models.agencies import (
    Agency,
    AgencyAnswer,
    AgencyRequest,
    AnswerEffect,
    AnswerOutcome,
    RequestChannel,
    RequestState,
)
from models.ipra_plan import measure_of
from models.jobs import JobKind
from models.persons import Person
from models.routes import CancelNotice, CancelState, Route, RouteStatus, Step, StepStatus
from models.templates import (
    Ladder,
    RouteTemplate,
    absent_completes,
    get_template,
    newest_version,
    template_of,
)
from models.timers import REQUEST_KINDS, DeadlineKind, EscalationStatus
from models.types import new_id, utcnow

SYSTEM = "system:engine"

# The hot path's statements, built once (building a statement and its cache key cost about
# as much as running it): a delivery's and an answer's rereads after the step's lock, the
# answer's step lock, and the route's steps read after the route's lock.
_DELIVERY_REREAD = (
    sa_select(AgencyRequest, Agency, Route, ladder.has_open_of(col(Step.id)),
              timers.latest_version_of(col(Step.id)))
    .join(Agency, col(Agency.id) == col(AgencyRequest.agency_id))
    .join(Step, col(Step.id) == col(AgencyRequest.step_id))
    .join(Route, col(Route.id) == col(Step.route_id))
    .where(col(AgencyRequest.id) == bindparam("request_id"))
    .execution_options(populate_existing=True))
_ANSWER_STEP_LOCK = (
    select(Step)
    .join(AgencyRequest, col(AgencyRequest.step_id) == col(Step.id))
    .join(AgencyAnswer, col(AgencyAnswer.request_id) == col(AgencyRequest.id))
    .where(col(AgencyAnswer.id) == bindparam("answer_id"),
           AgencyAnswer.effect == AnswerEffect.pending)
    .with_for_update(of=Step)
    .execution_options(populate_existing=True))
_ANSWER_REREAD = (
    sa_select(AgencyAnswer, AgencyRequest, Route, ladder.has_open_of(col(Step.id)))
    .join(AgencyRequest, col(AgencyRequest.id) == col(AgencyAnswer.request_id))
    .join(Step, col(Step.id) == col(AgencyRequest.step_id))
    .join(Route, col(Route.id) == col(Step.route_id))
    .where(col(AgencyAnswer.id) == bindparam("answer_id"))
    .with_for_update(of=Route, key_share=True)  # ``lock_route``'s lock, after the step's
    .execution_options(populate_existing=True))
_ROUTE_STEPS = (
    sa_select(Step, timers.latest_version_of(col(Step.id)), any_open_refusal(col(Step.route_id)))
    .where(col(Step.route_id) == bindparam("route_id")).order_by(col(Step.seq))
    .execution_options(populate_existing=True))


@dataclass(frozen=True)
class EngineConfig:
    """What the use cases need from the settings."""

    sender_region: str
    public_base_url: str
    default_ladder: Ladder
    mirror: bool
    #: the mirror job is due this many real seconds after the route's last transition
    mirror_delay_seconds: float = 0.0
    #: per region, how a provider is picked without the person's choice (models.providers)
    provider_rules: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, s: Settings) -> EngineConfig:
        return cls(
            sender_region=s.sender_region,
            public_base_url=s.effective_public_base_url,
            default_ladder=Ladder(s.reminder_days_before, s.escalate_after_days),
            mirror=s.prefect_mirror,
            mirror_delay_seconds=s.mirror_delay_seconds,
            provider_rules=tuple(sorted(s.provider_rules.items())),
        )


def mirror_later(session: Session, cfg: EngineConfig, route_id: str) -> None:
    """Have the route's Prefect flow run brought up to date (a coalesced job, in the
    caller's transaction; never a Prefect call on the route's path). With
    ``mirror_delay_seconds`` the job is due that long after the route's last transition
    (each transition pushes it back): a route that moves several times in a row —
    an answer, the next request, its delivery — is reconciled once, not each time."""
    if cfg.mirror:
        due = (utcnow() + timedelta(seconds=cfg.mirror_delay_seconds)
               if cfg.mirror_delay_seconds else None)
        enqueue(session, JobKind.mirror_route, route_id, due_at=due)


# --------------------------------------------------------------------------- registration
def register_application(
    session: Session, cfg: EngineConfig, *, now: datetime, person_id: str, template_code: str,
    region: str | None = None, registered_at: datetime | None = None,
    coordinator_id: str | None = None, actor: str = SYSTEM,
    ipra_deadlines: Mapping[str, date] | None = None, template_version: int | None = None,
    not_applicable: Mapping[str, str] | None = None, plan: Mapping[str, Any] | None = None,
    roles: Mapping[str, str] | None = None,
) -> Route:
    """Register a person's application and start the route's first step (see
    ``_register_application``; its audit records are written with one statement).
    ``template_version`` None: the newest data version (``engine.routes.forming.form_route``
    also reads its steps' conditions on the person's ИПРА: what a user-facing path calls)."""
    if template_version is None:
        template_version = newest_version(template_code)
    with audit.buffered(session), queue_buffered(session):
        return _register_application(
            session, cfg, now=now, person_id=person_id, template_code=template_code,
            region=region, registered_at=registered_at, coordinator_id=coordinator_id,
            actor=actor, ipra_deadlines=ipra_deadlines, template_version=template_version,
            not_applicable=not_applicable, plan=plan, roles=roles)


def _register_application(
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
    ipra_deadlines: Mapping[str, date] | None = None,
    template_version: int = 0,
    not_applicable: Mapping[str, str] | None = None,
    plan: Mapping[str, Any] | None = None,
    roles: Mapping[str, str] | None = None,
) -> Route:
    """Register a person's application and start the route's first step(s).

    The application (298-п Регламент п.14; 363н п.12) starts the route; its first request is
    due within 1 working day of registration (298-п Порядок п.10).

    ``ipra_deadlines``: per step kind, the execution deadline («срок исполнения») of the ИПРА
    measure that step carries out — the ИПРА form lists each measure with its executor and
    deadline (545н). Each becomes the step's complete-by deadline with its own ladder (the
    rehabilitation organisation ensures the route's deadlines, 363н п.10б); a template's
    ``deadline_days`` is used for steps the ИПРА gives no deadline for.

    ``template_version``: n >= 1 the data file (the route keeps it); 0 the built-in
    three-step template (``models.templates``: the engine's tests and benchmark only).
    ``not_applicable``: step kinds whose condition does not hold for the person (e.g. no
    technical aids in the ИПРА, 004 п.8), each with why: formed closed, never sent. Every
    step whose dependencies are met starts at once (parallel where the template allows).
    ``plan``: the route's own steps after the template's — the ИПРА's measures, each due by
    its deadline (004 п.10 пп.б; ``engine.routes.ipra_plan``).
    ``roles``: per step kind, the participant role taken from the application, for a step
    whose template allows several (003: the organisation that identified the child is a
    health, social or education one); EngineError naming ``roles.<kind>`` otherwise.
    """
    template = get_template(template_code, template_version)
    skipped = dict(not_applicable or {})
    unknown = sorted(set(skipped) - {st.kind for st in template.steps})
    if unknown:
        raise EngineError(f"not_applicable: {unknown[0]!r} is not a step of {template.code}")
    chosen_roles = dict(roles or {})
    for kind, role in chosen_roles.items():
        allowed = next((st.roles for st in template.steps if st.kind == kind), None)
        if not allowed:
            raise EngineError(f"roles.{kind}: not a step of {template.code} whose participant "
                              "role is chosen (template key `roles`)")
        if role not in {r.value for r in allowed}:
            raise EngineError(f"roles.{kind}: {role!r} is not one of the step's roles "
                              f"({', '.join(r.value for r in allowed)})")
    person = session.get(Person, person_id)
    if person is None:
        raise NotFoundError(f"person_id: no person {person_id!r}")
    region = region or person.region
    calendars.get_calendar(region)  # unknown region -> CalendarError naming it
    reg_at = registered_at or now
    if reg_at.tzinfo is None:
        raise EngineError("registered_at: must carry a time zone")
    ipra = check_ipra_deadlines(template, ipra_deadlines, region=region, registered_at=reg_at)
    route = Route(
        id=new_id("rt"), person_id=person_id, region=region, template=template.code,
        template_version=template_version, registered_at=reg_at, coordinator_id=coordinator_id,
        plan=dict(plan) if plan else None,
    )
    session.add(route)
    template = template_of(route)
    for seq, st in enumerate(template.steps):
        why = skipped.get(st.kind)
        measure = measure_of(route.plan, st.kind)
        session.add(Step(
            id=f"{route.id}-s{seq}", route_id=route.id, seq=seq, kind=st.kind,
            role=chosen_roles.get(st.kind, st.role.value), optional=st.optional,
            ipra_due_date=date.fromisoformat(measure["due"]) if measure else ipra.get(st.kind),
            status=StepStatus.cancelled if why else StepStatus.planned,
            outcome_note=f"не применяется: {why}"[:500] if why else None,
        ))
    session.flush()
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="registered",
                 after={"template": template.code, "region": region,
                        "registered_at": reg_at,
                        **({"template_version": template_version} if template_version else {}),
                        **({"not_applicable": sorted(skipped)} if skipped else {}),
                        **({"roles": chosen_roles} if chosen_roles else {}),
                        **({"ipra_measures": {e["kind"]: e["due"]
                                              for e in route.plan.get("measures", ())},
                            "ipra": route.plan.get("ipra")} if route.plan else {}),
                        **({"ipra_deadlines": {k: v.isoformat() for k, v in ipra.items()}}
                           if ipra else {})})
    with session.no_autoflush:
        steps = list(session.exec(select(Step).where(Step.route_id == route.id)
                                  .order_by(col(Step.seq))))
    for step in steps:
        if not step.status.terminal:
            _arm_complete_deadline(session, cfg, route, template, step, now=now, actor=actor)
    for step in ready_steps(template, steps):
        _start_step(session, cfg, route, template, step, ready_at=reg_at, now=now,
                    actor=actor)
    arm_ipra_expiry(session, route, now=now, actor=actor)  # 004 п.13 а
    mirror_later(session, cfg, route.id)
    return route


def ready_steps(template: RouteTemplate, steps: list[Step]) -> list[Step]:
    """The planned steps whose every dependency is done (terminal): they may be open at
    once. Without ``depends_on`` a step waits for the one before it (298-п Регламент п.16:
    the mandatory order), so a strict template has at most one. A branch step (000 п.13–15)
    waits, besides, for the route's branch decision (``engine.routes.branches``)."""
    by_seq = {s.seq: s for s in steps}
    return [s for s in steps if s.status is StepStatus.planned
            and not template.waits_for_decision(s.seq)  # 000 п.10–15: chosen branches only
            and all(by_seq[d].status.terminal for d in template.waits_for(s.seq))]


def check_ipra_deadlines(
    template: RouteTemplate, given: Mapping[str, date] | None, *, region: str,
    registered_at: datetime,
) -> dict[str, date]:
    """Validate the ИПРА deadlines of an application: a step kind of the template each, a
    date (the ИПРА's «срок исполнения», 545н) not before the registration day in the
    route's region and within the calendar data. EngineError naming the field otherwise."""
    if not given:
        return {}
    kinds = [st.kind for st in template.steps]
    cal = calendars.get_calendar(region)
    local = pendulum.instance(registered_at).in_timezone(cal.timezone)
    reg_day = date(local.year, local.month, local.day)
    out: dict[str, date] = {}
    for kind, day in given.items():
        field = f"ipra_deadlines.{kind}"
        if kind not in kinds:
            raise EngineError(f"{field}: {kind!r} is not a step of template {template.code} "
                              f"(its steps: {', '.join(kinds)})")
        if isinstance(day, datetime) or not isinstance(day, date):
            raise EngineError(f"{field}: must be a date (YYYY-MM-DD), got {day!r}")
        if day < reg_day:
            raise EngineError(f"{field}: {day.isoformat()} is before the application's "
                              f"registration day {reg_day.isoformat()}")
        try:
            timers.after_deadline(timers.end_of_day(day, region), 1)
        except calendars.CalendarError as exc:
            raise EngineError(f"{field}: {exc}") from None
        out[kind] = day
    return out


def _arm_complete_deadline(
    session: Session, cfg: EngineConfig, route: Route, template: RouteTemplate, step: Step,
    *, now: datetime, actor: str,
) -> None:
    """Give the step its complete-by deadline, if it has one, and that deadline's ladder:
    the ИПРА measure's execution deadline (545н), else the template's ``deadline_days``
    working days from registration (363н п.10б). Counted in the route's region: the step's
    agencies are always of that region (``pick_agency``; a reassignment keeps the region),
    so it is the acting agency's calendar and time zone."""
    st = template.step(step.seq)
    if step.ipra_due_date is not None:
        due = timers.end_of_day(step.ipra_due_date, route.region)
        days, source = 0, "ipra"
    elif st.deadline_days is not None:
        due = calendars.deadline(route.registered_at, st.deadline_days, route.region)
        days, source = st.deadline_days, "template"
    else:
        return
    step.complete_by_date = due.due_date
    step.complete_by_source = source
    session.add(step)
    timers.add_timers(session, timers.ladder_timers(
        DeadlineKind.complete_by, step, due=due, anchor_at=route.registered_at,
        working_days=days, ladder=template.ladder_for(step.seq, cfg.default_ladder),
        version=timers.next_version(session, step.id)), now=now, actor=actor)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="complete_by_set",
                 after={"complete_by": due.due_date, "source": source,
                        "ipra_due_date": step.ipra_due_date, "working_days": days or None})


def arm_complete_deadline(
    session: Session, cfg: EngineConfig, route: Route, template: RouteTemplate, step: Step,
    *, now: datetime, actor: str,
) -> None:
    """``_arm_complete_deadline`` for the use cases of other modules (a re-plan)."""
    _arm_complete_deadline(session, cfg, route, template, step, now=now, actor=actor)


def pick_agency(session: Session, *, role: str, region: str, route_id: str,
                exclude: str | None = None, person_id: str | None = None,
                rules: Mapping[str, str] | None = None) -> Agency:
    """A participant of ``role`` in ``region``: the person's choice, else the region's rule
    (``engine.agencies.providers``: 001 Регламент п.15 пп.2; nearest or least loaded)."""
    return pick_provider(session, role=role, region=region, person_id=person_id,
                         rules=rules or {}, exclude=exclude)


def _start_step(
    session: Session, cfg: EngineConfig, route: Route, template: RouteTemplate, step: Step,
    *, ready_at: datetime, now: datetime, actor: str, agency: Agency | None = None,
    steps: list[Step] | None = None, version: int | None = None,
) -> None:
    """Make ``step`` ready: choose its agency, prepare the request, start the send-by timer.

    298-п Порядок п.10: the request is prepared and sent within 1 working day. A step is
    never opened before the steps it waits for are done (001 Регламент п.16: the six actions
    of social employment are mandatory and in this order): EngineError naming them.
    ``steps``: the route's steps as the caller read them after the route's lock (their
    statuses are not read again); ``version``: the step's next deadline version, read with
    them (default: read now).
    """
    _check_order(session, route, template, step, steps=steps)
    pinned = measure_of(route.plan, step.kind)
    if agency is None and pinned and pinned.get("agency_id"):
        named = session.get(Agency, pinned["agency_id"])  # the ИПРА names the executor
        agency = named if named is not None and named.active else None
    agency = agency or pick_agency(session, role=step.role, region=route.region,
                                   route_id=route.id, person_id=route.person_id,
                                   rules=dict(cfg.provider_rules))
    before = {"status": step.status.value}
    step.agency_id = agency.id
    step.status = StepStatus.sending
    route.current_seq = step.seq
    session.add_all([route, step])
    send = arm_send_deadline(session, cfg, template, step, ready_at=ready_at, now=now,
                             actor=actor, version=version)
    request = _new_request(session, cfg, route, template, step, agency, now=now)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="ready", before=before,
                 after={"status": step.status.value, "agency_id": agency.id,
                        "send_by": send.due_date, "request_id": request.id})


def _check_order(session: Session, route: Route, template: RouteTemplate, step: Step, *,
                 steps: list[Step] | None = None) -> None:
    """Refuse to open ``step`` while a step it waits for is not done (its template's
    ``depends_on``, else the one before it), naming the rule and the steps. ``steps``: the
    route's steps read after its lock (default: their statuses are read now)."""
    if template.waits_for_decision(step.seq):
        raise EngineError(
            f"step: {step.kind} is a branch step ({template.step(step.seq).branch}): it opens "
            "only after the route's branch decision chooses it (000 п.10–15: the person's "
            "choice and the need assessment decide)")
    waits = template.waits_for(step.seq)
    if not waits:
        return
    status: dict[int, str]
    if steps is not None:
        status = {s.seq: s.status.value for s in steps if s.seq in waits}
    else:
        with session.no_autoflush:
            status = dict(session.exec(select(Step.seq, Step.status).where(
                Step.route_id == route.id, col(Step.seq).in_(waits))).all())
    open_ = [template.step(q).kind for q in waits if not StepStatus(status[q]).terminal]
    if open_:
        raise EngineError(
            f"step: {step.kind} cannot start before {', '.join(open_)} is done "
            f"({template.step(step.seq).basis}; 001 Регламент п.16: the actions go in "
            f"their mandatory order)")


def arm_send_deadline(
    session: Session, cfg: EngineConfig, template: RouteTemplate, step: Step, *,
    ready_at: datetime, now: datetime, actor: str, version: int | None = None,
) -> calendars.Deadline:
    """The step's (new) send-by deadline — ``send_days`` (1) working day from ``ready_at`` in
    the sender's region (298-п Порядок п.10) — and its timers: level 1 at the deadline,
    level 2 some working days later (a new deadline version: ``version``, or read now)."""
    st = template.step(step.seq)
    route = session.get(Route, step.route_id)
    assert route is not None
    # the route's region's act and calendar (models/regions.py; default: 298-п)
    days = regions.send_days(route.region, st.send_days)
    send = calendars.deadline(ready_at, days,
                              regions.send_calendar(route.region, cfg.sender_region))
    step.ready_at = ready_at
    step.send_by, step.send_by_date = send.due_at, send.due_date
    step.deadline_provisional = send.provisional
    session.add(step)
    timers.add_timers(session, timers.ladder_timers(
        DeadlineKind.send_by, step, due=send, anchor_at=ready_at, working_days=days,
        ladder=template.ladder_for(step.seq, cfg.default_ladder),
        version=timers.next_version(session, step.id) if version is None else version),
        now=now, actor=actor)
    return send


def _new_request(
    session: Session, cfg: EngineConfig, route: Route, template: RouteTemplate, step: Step,
    agency: Agency, *, now: datetime, extra: dict[str, Any] | None = None,
) -> AgencyRequest:
    """Prepare the step's request (it becomes the step's current one) and send it: over
    HTTP by a worker, or straight into the agency's inbox."""
    st = template.step(step.seq)
    if route.status is RouteStatus.suspended:  # 152-ФЗ art. 9 ч.2: consent withdrawn
        raise EngineError(f"route: {route.id} is suspended (consent withdrawn): no request")
    request_id = new_id("tk")
    answer_days = regions.answer_days(route.region, st.answer_days)  # the region's act
    expected = calendars.deadline(now, answer_days, agency.region)
    # 152-ФЗ: the stored body carries identifiers only; the subject's identifying data is
    # taken from ``person`` when the request is sent (``request_body``).
    body: dict[str, Any] = {
        "task_id": request_id,
        "idempotency_key": request_id,
        "route_id": route.id,
        "step": step.kind,
        "requested": st.requested,
        "basis": st.basis,
        "answer_within_working_days": answer_days,
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
        # It is put there now; the answer period starts on its receipt (Порядок п.11):
        # when the agency opens it, or staff record a paper delivery (engine.routes.receipt).
        req.state = RequestState.delivered
        req.delivered_at = now
        audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                     route_id=route.id, action="placed_in_inbox",
                     after={"agency_id": agency.id, "awaiting_receipt": True})
    return req


# --------------------------------------------------------------------------- delivery
def request_subjects(session: Session, step_ids: list[str]) -> dict[str, dict[str, str]]:
    """The ``subject`` of each step's requests, by step id: the person's identifying data
    (SNILS, full name, birth date) read from ``person`` — one query for a batch of sends.

    152-ФЗ: personal data lives only in ``person``; a request row stores identifiers and the
    agency receives the subject's data only in the request addressed to it."""
    if not step_ids:
        return {}
    rows = session.execute(
        select(col(Step.id), col(Person.snils), col(Person.full_name), col(Person.birth_date))
        .join(Route, col(Route.id) == col(Step.route_id))
        .join(Person, col(Person.id) == col(Route.person_id))
        .where(col(Step.id).in_(set(step_ids)))
    ).all()
    return {sid: {"snils": snils, "full_name": name, "birth_date": born.isoformat()}
            for sid, snils, name, born in rows}


def request_body(stored: Mapping[str, Any], subject: Mapping[str, str]) -> dict[str, Any]:
    """The body a request is sent with: its stored body (identifiers only) plus the
    subject's data. Built the same way on every attempt and serialised canonically
    (``tasks.signing.canonical_json``), so a resend under the same idempotency key sends the
    same bytes (``person`` rows are never changed in place)."""
    body = {k: v for k, v in stored.items() if k != "subject"}
    body["subject"] = dict(subject)
    return body


def mark_delivered(session: Session, cfg: EngineConfig, req: AgencyRequest, *,
                   now: datetime, received_at: datetime | None = None) -> None:
    """``_mark_delivered``, its audit records written with one statement."""
    with audit.buffered(session), queue_buffered(session):
        _mark_delivered(session, cfg, req, now=now, received_at=received_at)


def _mark_delivered(session: Session, cfg: EngineConfig, req: AgencyRequest, *,
                    now: datetime, received_at: datetime | None = None) -> None:
    """The agency received the request: the 5-working-day answer period starts the next
    day in the agency's time zone (298-п Порядок п.11, Регламент п.12: «со дня получения»).
    The send-by ladder stops: its open escalations are resolved with the send's lateness in
    working days (298-п Порядок п.10). ``received_at``: when the receipt happened, if before
    ``now`` (a paper delivery recorded later, ``engine.routes.receipt``); default ``now``
    (a webhook agency's 2xx)."""
    step = lock_step(session, req.step_id)
    assert step is not None
    # after the lock, in one statement: the request, its agency and the route read afresh,
    # whether the step has open escalations, and its latest deadline version
    agency: Agency
    route: Route
    req, agency, route, escalated, latest = session.execute(
        _DELIVERY_REREAD, {"request_id": req.id}).one()
    template = template_of(route)
    st = template.step(step.seq)
    withdrawn = req.state is RequestState.cancelled
    if not withdrawn:
        req.state = RequestState.delivered
    req.delivered_at = now
    session.add(req)
    if withdrawn or step.current_request_id != req.id or step.status is not StepStatus.sending:
        # superseded meanwhile (reassigned, closed, answered): the agency got it all the
        # same; a withdrawn request's agency is sent a cancel notice
        again = (not withdrawn and step.current_request_id == req.id
                 and step.status is StepStatus.awaiting)  # re-sent on a route's resume
        audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                     route_id=route.id,
                     action="redelivered" if again else "delivered_superseded",
                     after={"channel": req.channel.value, "state": req.state.value,
                            "step_status": step.status.value,
                            "current_request_id": step.current_request_id})
        write_now(session, req)
        return
    answer_days = regions.answer_days(route.region, st.answer_days)  # the region's act
    received = min(received_at or now, now)
    due = calendars.deadline(received, answer_days, agency.region)
    step.status = StepStatus.awaiting
    step.sent_at = received
    step.answer_by = due.due_at
    step.answer_by_date = due.due_date
    step.deadline_provisional = step.deadline_provisional or due.provisional
    session.add(step)
    write_now(session, step, req)
    timers.cancel_pending(session, step.id, reason="request delivered", now=now,
                          kinds=REQUEST_KINDS)
    if step.send_by_date is not None and escalated:
        late = ladder.days_late(step.send_by_date, step.send_by,
                                regions.send_calendar(route.region, cfg.sender_region),
                                received)
        ladder.resolve_open(
            session, step, now=now, actor=SYSTEM, action="resolved_by_delivery",
            resolution=(f"request delivered {late} working day(s) late" if late
                        else "request delivered on time"),
            extra={"late_working_days": late}, kinds=(DeadlineKind.send_by,))
    timers.add_timers(session, timers.answer_timers(
        step, region=agency.region, anchor_at=received, answer_days=answer_days,
        ladder=template.ladder_for(step.seq, cfg.default_ladder),
        version=latest + 1), now=now)
    audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                 route_id=route.id, action="delivered",
                 after={"channel": req.channel.value, "attempts": req.attempts})
    audit.record(session, at=now, actor=SYSTEM, entity="step", entity_id=step.id,
                 route_id=route.id, action="awaiting_answer",
                 before={"status": StepStatus.sending.value},
                 after={"status": step.status.value, "answer_by": due.due_date,
                        "provisional": due.provisional})
    mirror_later(session, cfg, route.id)


def mark_failed(session: Session, cfg: EngineConfig, req: AgencyRequest, *, now: datetime,
                error: str) -> None:
    """The agency refused the request itself (a 4xx). A person must look, so it is made
    visible at once: the step waits for the coordinator's clarification
    (``needs_clarification``: the agency refused the request as it is, see
    ``resend_after_clarification``) and a level-2 escalation goes to the region's
    supervisors with the reason "agency refused the request" (298-п Порядок п.10, п.13).
    The request's timers stop: the refusal is already at the top of the ladder."""
    step = lock_step(session, req.step_id)
    fresh = reread(session, AgencyRequest, req.id)
    assert step is not None and fresh is not None
    req = fresh
    if req.state is not RequestState.queued:
        audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                     route_id=step.route_id, action="delivery_failed_ignored",
                     after={"error": error[:200], "state": req.state.value})
        return
    req.state = RequestState.failed
    req.last_error = error[:500]
    session.add(req)
    audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=req.id,
                 route_id=step.route_id, action="delivery_failed",
                 before={"state": RequestState.queued.value},
                 after={"state": req.state.value, "error": error[:200]})
    if step.current_request_id != req.id or step.status is not StepStatus.sending:
        return
    step.status = StepStatus.needs_clarification
    step.outcome_note = f"{ladder.REFUSED}: {error}"[:500]
    session.add(step)
    timers.cancel_pending(session, step.id, reason="request refused by the agency", now=now,
                          kinds=REQUEST_KINDS)
    ladder.refuse(session, step.id, now=now, error=error[:200])
    audit.record(session, at=now, actor=SYSTEM, entity="step", entity_id=step.id,
                 route_id=step.route_id, action="request_refused",
                 before={"status": StepStatus.sending.value},
                 after={"status": step.status.value, "request_id": req.id},
                 reason=ladder.REFUSED)
    mirror_later(session, cfg, step.route_id)


def withdraw_request(session: Session, req: AgencyRequest, *, now: datetime, actor: str,
                     reason: str) -> CancelNotice | None:
    """Cancel a request (its step was reassigned or closed) and tell its agency: a
    ``CancelNotice`` POSTed to the agency's endpoint by a worker (``send_cancel``, signed,
    idempotency key ``<request key>:cancel``, retried like a request), or — for an agency
    working from its inbox — shown in its inbox at once (the request is ``cancelled`` there).
    The caller holds the step's lock. Returns the notice (None: nothing to withdraw)."""
    if req.state is RequestState.cancelled:
        return None
    before = {"state": req.state.value}
    refused = req.state is RequestState.failed
    req.state = RequestState.cancelled
    req.cancelled_at = now
    session.add(req)
    with session.no_autoflush:
        route_id = session.exec(select(Step.route_id).where(Step.id == req.step_id)).one()
    audit.record(session, at=now, actor=actor, entity="request", entity_id=req.id,
                 route_id=route_id, action="cancelled", before=before,
                 after={"state": req.state.value}, reason=reason)
    if refused:
        return None  # the agency never took it: nothing to withdraw from its system
    agency = session.get(Agency, req.agency_id)
    assert agency is not None
    http = req.channel is RequestChannel.http and bool(agency.endpoint_url)
    notice = session.get(CancelNotice, f"{req.idempotency_key}:cancel")
    if notice is None:
        notice = CancelNotice(id=f"{req.idempotency_key}:cancel", request_id=req.id,
                              agency_id=agency.id, channel=RequestChannel.inbox,
                              reason=reason, created_at=now)
    # withdrawn again after a resume (engine.route_resume): the same notice, sent again
    notice.channel = RequestChannel.http if http else RequestChannel.inbox
    notice.state = CancelState.queued if http else CancelState.delivered
    notice.reason, notice.created_at = reason, now
    notice.delivered_at, notice.attempts, notice.last_error = (None if http else now), 0, None
    session.add(notice)
    session.flush()
    if http:
        enqueue(session, JobKind.send_cancel, notice.id)
    audit.record(session, at=now, actor=actor, entity="request", entity_id=req.id,
                 route_id=route_id,
                 action="cancel_notice_queued" if http else "cancel_notice_delivered",
                 after={"agency_id": agency.id, "channel": notice.channel.value,
                        "notice_id": notice.id}, reason=reason)
    return notice


def cancel_notice_body(notice: CancelNotice) -> dict[str, Any]:
    """What the agency's endpoint receives (docs/agencies.md, "Withdrawn requests")."""
    return {"task_id": notice.request_id, "cancelled": True, "reason": notice.reason}


def record_cancel_outcome(session: Session, notice_id: str, *, now: datetime,
                          delivered: bool, error: str | None = None,
                          count_attempt: bool = True) -> None:
    """Record a cancel notice's final delivery attempt: taken (2xx) or refused (4xx).
    ``count_attempt=False``: the worker counted the attempt before its POST."""
    notice = session.get(CancelNotice, notice_id)
    if notice is None or notice.state is not CancelState.queued:
        return
    if count_attempt:
        notice.attempts += 1
    notice.state = CancelState.delivered if delivered else CancelState.failed
    notice.delivered_at = now if delivered else None
    notice.last_error = None if delivered else (error or "")[:500]
    session.add(notice)
    with session.no_autoflush:
        route_id = session.exec(select(Step.route_id).join(
            AgencyRequest, col(AgencyRequest.step_id) == col(Step.id))
            .where(AgencyRequest.id == notice.request_id)).one()
    audit.record(session, at=now, actor=SYSTEM, entity="request", entity_id=notice.request_id,
                 route_id=route_id,
                 action="cancel_notice_delivered" if delivered else "cancel_notice_refused",
                 after={"agency_id": notice.agency_id, "channel": notice.channel.value,
                        "attempts": notice.attempts,
                        **({} if delivered else {"error": (error or "")[:200]})})


# --------------------------------------------------------------------------- answers
def record_answer(
    session: Session, *, agency: Agency, webhook_id: str, answer: AnswerIn, now: datetime,
) -> tuple[AgencyAnswer, bool]:
    """Store one answer durably before it is acknowledged; return (answer, created).

    ``engine.answers.intake.record_answers`` for one answer (its rules: only the agency's own tasks,
    NotFoundError otherwise; a repeated ``webhook-id`` returns the stored answer; a late
    answer is stored with its lateness in working days, 298-п п.11)."""
    (res,) = record_answers(session, [IncomingAnswer(agency.id, webhook_id, answer)], now=now)
    if isinstance(res, EngineError):
        raise res
    row = session.get(AgencyAnswer, res.answer_id)
    assert row is not None
    return row, res.created


def working_days_late(step: Step, region: str, at: datetime) -> int:
    """Working days between the answer deadline's day and the day of ``at`` (local)."""
    return late_working_days(step.answer_by, step.answer_by_date, region,
                             step.deadline_provisional, at)


def apply_answer(session: Session, cfg: EngineConfig, answer_id: int, *,
                 now: datetime) -> AnswerEffect:
    """``_apply_answer``, its audit records written with one statement."""
    with audit.buffered(session), queue_buffered(session):
        return _apply_answer(session, cfg, answer_id, now=now)


def _apply_answer(session: Session, cfg: EngineConfig, answer_id: int, *,
                  now: datetime) -> AnswerEffect:
    """Move the route on a stored answer (exactly once: the answer's effect is recorded).

    provided -> step answered; absent -> step completed with the notice of absence
    (298-п Порядок п.11: a valid completion) — except a mandatory action of a template whose
    every action must be done (001 Регламент п.16, ``models.templates.absent_completes``):
    then it needs clarification, audited with that reason; rejected -> the coordinator must
    clarify.
    The step's row is locked first and everything is read again after the lock, so a sweeper
    firing the step's timers or a supervisor acting on it at the same moment is either seen
    whole or waits (engine/infra/locks.py). An answer that changes nothing (its request was
    withdrawn, or the step was answered already) is recorded as ignored.
    """
    # the step of a pending answer, locked and read afresh, in one statement
    with session.no_autoflush:
        step = session.exec(_ANSWER_STEP_LOCK, params={"answer_id": answer_id}).first()
    if step is None:  # no such answer, or applied already: nothing to lock
        with session.no_autoflush:
            effect = session.exec(select(AgencyAnswer.effect)
                                  .where(AgencyAnswer.id == answer_id)).first()
        return AnswerEffect(effect) if effect is not None else AnswerEffect.already_answered
    # after the lock, in one statement: the answer, its request and the route read afresh,
    # whether the step has open escalations — and the route's row locked, as
    # ``advance_route`` would lock it (step first, then route: engine/infra/locks.py)
    ans: AgencyAnswer
    req: AgencyRequest
    route: Route
    ans, req, route, escalated = session.execute(
        _ANSWER_REREAD, {"answer_id": answer_id}).one()
    if ans.effect is not AnswerEffect.pending:  # applied by another worker meanwhile
        return ans.effect
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
        step.answered_at = ans.received_at  # when the agency answered, not when applied
        step.late_working_days = ans.late_working_days
        template = template_of(route)  # pure: no statement
        st = template.step(step.seq)
        step.status = {
            AnswerOutcome.provided: StepStatus.answered,
            AnswerOutcome.absent: StepStatus.absent,
            AnswerOutcome.rejected: StepStatus.needs_clarification,
        }[ans.outcome]
        step.outcome_note = ans.comment
        not_done: str | None = None
        if ans.outcome is AnswerOutcome.absent:
            completes, clause = absent_completes(template, step.seq)
            if not completes:
                # 001 Регламент п.16: every action must be done — a notice of absence does
                # not do it; the coordinator clarifies and asks again
                not_done = (f"{clause}: уведомление об отсутствии сведений не завершает "
                            f"обязательное действие; требуется уточнение и повторный запрос")
                step.status = StepStatus.needs_clarification
                step.outcome_note = (f"{ans.comment} — {not_done}" if ans.comment
                                     else not_done)[:500]
        session.add(step)
        # a rejection leaves the step open: its complete-by ladder goes on
        timers.cancel_pending(session, step.id, reason=f"answer {ans.id} received", now=now,
                              kinds=None if step.status.terminal else REQUEST_KINDS)
        if escalated:  # most answers find none: no SELECT for them
            ladder.resolve_on_answer(session, step, now=now, late_days=ans.late_working_days,
                                     received_at=ans.received_at)
        audit.record(session, at=now, actor=SYSTEM, entity="step", entity_id=step.id,
                     route_id=route.id, action=f"answer_{ans.outcome.value}", before=before,
                     after={"status": step.status.value, "answer_id": ans.id,
                            "late_working_days": ans.late_working_days,
                            **({"absent_not_done": True} if not_done else {})},
                     reason=not_done)
        ans.effect = AnswerEffect.moved_route
        write_now(session, step, req, ans)
        if step.status.terminal and st.period_days is not None:
            # 001 Регламент п.6 пп.8: the next check, N working days after this one opened
            recurrence.schedule_next(session, step, period_days=st.period_days,
                                     region=route.region, now=now)
        if step.status.terminal:
            # the next step's period starts when the answer came (298-п Порядок п.10), even
            # if it is applied later (a worker that was down)
            advance_route(session, cfg, route, now=now, ready_at=ans.received_at,
                          route_locked=True)
    if ans.effect is not AnswerEffect.moved_route:
        audit.record(session, at=now, actor=SYSTEM, entity="answer", entity_id=str(ans.id),
                     route_id=route.id, action="ignored",
                     after={"effect": ans.effect.value, "request_id": req.id,
                            "request_state": req.state.value, "step_status": step.status.value,
                            "current_request_id": step.current_request_id})
    session.add(ans)
    write_now(session, ans)
    mirror_later(session, cfg, route.id)
    return ans.effect


def advance_route(session: Session, cfg: EngineConfig, route: Route, *, now: datetime,
                  actor: str = SYSTEM, ready_at: datetime | None = None,
                  route_locked: bool = False) -> None:
    """Start the next step after a terminal one, or complete the route (298-п Регламент
    п.16: the steps go in their mandatory order). ``ready_at``: when the previous step
    ended (default ``now``): the next step's send-by period counts from it.
    ``route_locked``: the caller holds the route's row lock and read ``route`` after it
    (default: it is locked and read again here)."""
    ready_at = min(ready_at or now, now)
    if route_locked:
        session.flush()  # as the lock's statement would
    else:
        route = lock_route(session, route.id) or route  # parallel answers: one at a time
    template = template_of(route)
    with session.no_autoflush:  # flushed by the lock; read afresh after it, in one
        # statement with each step's latest deadline version and whether a refusal is open
        rows = session.execute(_ROUTE_STEPS, {"route_id": route.id}).all()
    steps = [step for step, _, _ in rows]
    if route.status is not RouteStatus.active:
        return
    latest = {step.id: int(v) for step, v, _ in rows}
    refused = any(r for _, _, r in rows)
    started: list[Step] = []
    for nxt in ready_steps(template, steps):  # none: the steps it waits for are still open
        refusal = covering_refusal(session, route.id, nxt) if refused else None
        if refusal is not None:  # 004 п.11: nothing goes out to a refused participant
            hold_step(session, route, nxt, refusal, now=now, actor=actor)
            continue
        _start_step(session, cfg, route, template, nxt, ready_at=ready_at, now=now,
                    actor=actor, steps=steps, version=latest[nxt.id] + 1)
        started.append(nxt)
    write_now(session, route, *started)  # their requests are inserted by the flush
    # done when every step that ends is done: a recurring one (001 Регламент п.6 пп.8)
    # ends with the route, it is not waited for
    if all(s.status.terminal for s in steps if not template.step(s.seq).recurring):
        route.status = RouteStatus.completed
        route.completed_at = ready_at
        session.add(route)
        write_now(session, route)
        audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                     route_id=route.id, action="completed",
                     before={"status": RouteStatus.active.value},
                     after={"status": RouteStatus.completed.value})
        _end_recurring(session, template, steps, route_id=route.id, now=now, actor=actor)


def _end_recurring(session: Session, template: RouteTemplate, steps: list[Step], *,
                   route_id: str, now: datetime, actor: str) -> None:
    """The route is done: its recurring steps end with it. An open occurrence is withdrawn
    (its agency gets a cancel notice) and the step closed; the next occurrence's timer and
    every other timer of the step are cancelled."""
    for step in steps:
        if not template.step(step.seq).recurring:
            continue
        reason = "route completed: the recurring check ends with it"
        if not step.status.terminal:
            if step.current_request_id:
                req = session.get(AgencyRequest, step.current_request_id)
                if req is not None:
                    withdraw_request(session, req, now=now, actor=actor, reason=reason)
            ladder.resolve_open(session, step, now=now, actor=actor, resolution=reason,
                                action="closed_with_step",
                                status=EscalationStatus.closed, reason=reason)
            before = {"status": step.status.value}
            step.status = StepStatus.cancelled
            step.outcome_note = "повторяющаяся проверка завершена вместе с маршрутом"
            session.add(step)
            audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                         route_id=route_id, action="closed_with_route", before=before,
                         after={"status": step.status.value}, reason=reason)
        timers.cancel_pending(session, step.id, reason=reason, now=now, actor=actor)


def resend_after_clarification(
    session: Session, cfg: EngineConfig, *, step_id: str, clarification: str, now: datetime,
    actor: str,
) -> AgencyRequest:
    """The coordinator clarifies a rejected (or refused) request: a new request (new key)
    goes out with a new send-by deadline and its timers — 1 working day from now (298-п
    Порядок п.10), as a reassignment does; the old request stays in the history and the
    escalations of its send-by deadline (a refusal) are resolved."""
    if not clarification.strip():
        raise EngineError("clarification: must not be empty")
    step = lock_step(session, step_id)
    if step is None:
        raise NotFoundError(f"step_id: no step {step_id!r}")
    if step.status is not StepStatus.needs_clarification:
        raise EngineError(
            f"step: only a step that needs clarification can be resent (it is {step.status})"
        )
    route = session.get(Route, step.route_id)
    assert route is not None and step.agency_id is not None
    agency = session.get(Agency, step.agency_id)
    assert agency is not None
    template = template_of(route)
    step.status = StepStatus.sending
    step.outcome_note = None
    session.add(step)
    timers.cancel_pending(session, step.id, reason="resent with clarification", now=now,
                          actor=actor, kinds=REQUEST_KINDS)
    send = arm_send_deadline(session, cfg, template, step, ready_at=now, now=now, actor=actor)
    ladder.resolve_open(session, step, now=now, actor=actor, action="resolved_by_resend",
                        resolution="request resent with clarification",
                        kinds=(DeadlineKind.send_by, DeadlineKind.answer_by))
    req = _new_request(session, cfg, route, template, step, agency, now=now,
                       extra={"clarification": clarification})
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="resent_with_clarification",
                 before={"status": StepStatus.needs_clarification.value},
                 after={"status": StepStatus.sending.value, "send_by": send.due_date,
                        "request_id": req.id}, reason=clarification)
    mirror_later(session, cfg, route.id)
    return req
