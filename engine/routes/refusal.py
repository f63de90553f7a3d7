"""The person refuses a participant's accompaniment, or all of it, and resumes it (004 п.11,
п.12), each in the caller's transaction.

004 п.11: the person may refuse the accompaniment of the rehabilitation organisation, the
МСЭ bureau and the СФР's territorial body, and resume it, at any time during the whole term
of their ИПРА; п.12: both are the person's application (its date is recorded). Outside the
ИПРА's term a refusal or a resumption is refused (``OutsideIpraTerm``).

A refusal pauses the affected steps — of one participant (the agency's open steps, and the
planned steps of its role, which would be addressed to it), or of every participant — with
the machinery of a consent withdrawal (``engine.persons.consent_withdrawal``): what each
step had left is stored (``StepSuspension``, pointing to the ``ParticipantRefusal``), its
open request is withdrawn with a cancel notice to the agency
(``engine.routes.transitions.withdraw_request``), its timers stop and its open escalations
are closed; the step is ``paused``. Nothing goes out to that participant while it is. Other
participants' steps go on where the template lets them (a strict order waits).

A resumption (of one participant or of all) gives each paused step back the working days
it had left on each deadline and re-sends its withdrawn request under its own idempotency
key (``engine.routes.resume.resume_step``, as a consent resume does); planned steps become
planned again and the route moves on. Audit: ``participant_refused`` /
``participant_resumed`` on the route, ``paused`` / ``resumed`` on each step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.escalations import ladder, timers
from engine.infra import audit
from engine.infra.locks import lock_route_steps
from engine.routes.ipra_term import check_application_date, ipra_in_force
from engine.routes.refusal_hold import REFUSED_RU as REFUSED_RU  # re-exported
from engine.routes.resume import Resumed, days_left, record_remaining, resume_step
from engine.routes.transitions import EngineConfig, advance_route, mirror_later, withdraw_request
from models.agencies import Agency, AgencyRequest
from models.route_life import ParticipantRefusal
from models.routes import Route, RouteStatus, Step, StepStatus
from models.suspension import StepSuspension
from models.templates import template_of
from models.timers import EscalationStatus

RESUMED_RU = "возобновление сопровождения по заявлению (363н п.11, п.12)"


class OutsideIpraTerm(EngineError):
    """004 п.11: refusing and resuming are possible only during the ИПРА's term."""


class NothingToChange(EngineError):
    """No step of the route is affected (all done, or already paused / not paused)."""


@dataclass
class Refused:
    route_id: str
    refusal_id: int
    agency_id: str | None
    steps: list[str] = field(default_factory=list)
    cancel_notices: list[str] = field(default_factory=list)
    timers_cancelled: int = 0


def _route(session: Session, route_id: str) -> Route:
    route = session.get(Route, route_id)
    if route is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    if route.status is not RouteStatus.active:
        raise EngineError(f"route: {route.id} is {route.status.value}; only an active route's "
                          "accompaniment can be refused or resumed",
                          rule="route_not_active", params={"status": route.status.value})
    return route


def _agency(session: Session, agency_id: str | None) -> Agency | None:
    if agency_id is None:
        return None
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFoundError(f"agency_id: no participant {agency_id!r}")
    return agency


def check_in_term(session: Session, route: Route, *, application_date: date,
                  now: datetime) -> None:
    """004 п.11: the application's date and today fall within the term of the person's ИПРА
    in force; the date is not in the future nor before the route's registration day."""
    today = check_application_date(route, application_date, now=now)
    current = ipra_in_force(session, route.person_id)
    if current is None:
        raise OutsideIpraTerm("ipra: the person has no ИПРА on file; accompaniment is refused "
                              "and resumed during the ИПРА's term (004 п.11)", rule="no_ipra")
    ipra = current[1]
    for name, day in (("application_date", application_date), ("today", today)):
        if not ipra.in_force_on(day):
            end = ipra.last_day.isoformat() if ipra.last_day else "indefinite"
            raise OutsideIpraTerm(
                f"{name}: {day.isoformat()} is outside the term of ИПРА {ipra.number} "
                f"({ipra.valid_from.isoformat()} – {end}); accompaniment is refused and "
                "resumed only during the ИПРА's term (004 п.11)", field="application_date",
                rule="outside_ipra_term", params={"number": ipra.number,
                                                  "start": f"{ipra.valid_from:%d.%m.%Y}",
                                                  "end": f"{ipra.last_day:%d.%m.%Y}"
                                                  if ipra.last_day else "бессрочно"})


def _affected(step: Step, agency: Agency | None) -> bool:
    """A step the refusal pauses: any open or planned step (all), or the participant's."""
    if step.status.terminal or step.status is StepStatus.paused:
        return False
    if agency is None:
        return True
    if step.agency_id is not None:
        return step.agency_id == agency.id
    return step.status is StepStatus.planned and step.role == agency.role.value


def refuse_participant(session: Session, cfg: EngineConfig, *, route_id: str,
                       agency_id: str | None, application_date: date, now: datetime,
                       actor: str) -> Refused:
    """The person refuses ``agency_id``'s accompaniment (None: every participant's) on an
    application of ``application_date`` (004 п.11, п.12): the affected steps pause, their
    agencies are told, their timers stop. One transaction, audited, mirrored."""
    route = _route(session, route_id)
    agency = _agency(session, agency_id)
    check_in_term(session, route, application_date=application_date, now=now)
    steps = lock_route_steps(session, route.id)  # seq order: no deadlock
    if agency is not None and not any(
            s.agency_id == agency.id or s.role == agency.role.value for s in steps):
        raise EngineError(f"agency_id: {agency.id} is not a participant of route {route.id}",
                          rule="not_participant")
    targets = [s for s in steps if _affected(s, agency)]
    if not targets:
        raise NothingToChange("route: no open or planned step to pause (its steps are done "
                              "or paused already)", rule="nothing_to_pause")
    refusal = ParticipantRefusal(route_id=route.id, agency_id=agency_id,
                                 application_date=application_date, refused_at=now,
                                 refused_by=actor)
    session.add(refusal)
    session.flush()
    assert refusal.id is not None
    out = Refused(route_id=route.id, refusal_id=refusal.id, agency_id=agency_id)
    for step in targets:
        out.timers_cancelled += _pause_step(session, cfg, route, step, refusal, out,
                                            now=now, actor=actor)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="participant_refused",
                 after={"agency_id": agency_id, "scope": "participant" if agency else "all",
                        "application_date": application_date, "refusal_id": refusal.id,
                        "steps": out.steps, "cancel_notices": len(out.cancel_notices),
                        "timers_cancelled": out.timers_cancelled},
                 reason=REFUSED_RU)
    mirror_later(session, cfg, route.id)
    session.flush()
    return out


def _pause_step(session: Session, cfg: EngineConfig, route: Route, step: Step,
                refusal: ParticipantRefusal, out: Refused, *, now: datetime,
                actor: str) -> int:
    """Pause one step: store what it had left, withdraw its request (cancel notice), stop its
    timers, close its escalations. Returns the timers cancelled."""
    before = step.status
    if before is StepStatus.planned:
        row: StepSuspension | None = StepSuspension(
            step_id=step.id, route_id=route.id, status=before.value,
            complete_days_left=days_left(step.complete_by_date, route.region, now),
            complete_by_date=step.complete_by_date, suspended_at=now, reason=REFUSED_RU)
        session.add(row)
    else:
        row = record_remaining(session, cfg, route, step, now=now, reason=REFUSED_RU)
    assert row is not None
    row.refusal_id = refusal.id
    session.add(row)
    if step.current_request_id and before is not StepStatus.planned:
        req = session.get(AgencyRequest, step.current_request_id)
        if req is not None:
            notice = withdraw_request(session, req, now=now, actor=actor, reason=REFUSED_RU)
            if notice is not None:
                out.cancel_notices.append(notice.id)
    n = timers.cancel_pending(session, step.id, reason=REFUSED_RU, now=now, actor=actor)
    ladder.resolve_open(session, step, now=now, actor=actor, resolution=REFUSED_RU,
                        action="closed_participant_refused", status=EscalationStatus.closed,
                        reason=REFUSED_RU)
    step.status = StepStatus.paused
    session.add(step)
    out.steps.append(step.id)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="paused", before={"status": before.value},
                 after={"status": StepStatus.paused.value, "refusal_id": refusal.id,
                        "send_days_left": row.send_days_left,
                        "answer_days_left": row.answer_days_left,
                        "complete_days_left": row.complete_days_left},
                 reason=REFUSED_RU)
    return n


def resume_participant(session: Session, cfg: EngineConfig, *, route_id: str,
                       agency_id: str | None, application_date: date, now: datetime,
                       actor: str) -> Resumed:
    """The person resumes ``agency_id``'s accompaniment (None: every paused participant's)
    on an application of ``application_date`` (004 п.11, п.12): each paused step continues
    with the working days it had left; its withdrawn request goes out again under its own
    idempotency key; planned steps start when their turn comes. One transaction, audited."""
    route = _route(session, route_id)
    agency = _agency(session, agency_id)
    check_in_term(session, route, application_date=application_date, now=now)
    steps = {s.id: s for s in lock_route_steps(session, route.id)}
    rows = list(session.exec(select(StepSuspension).where(
        StepSuspension.route_id == route.id, col(StepSuspension.resumed_at).is_(None),
        col(StepSuspension.refusal_id).is_not(None)).order_by(col(StepSuspension.id))))

    def mine(row: StepSuspension) -> bool:
        step = steps[row.step_id]
        if step.status is not StepStatus.paused:
            return False
        if agency is None:
            return True
        if step.agency_id is not None and row.status != StepStatus.planned.value:
            return step.agency_id == agency.id
        return step.role == agency.role.value

    chosen = [r for r in rows if mine(r)]
    if not chosen:
        raise NothingToChange("route: no step paused by a refusal"
                              + (f" of {agency.id}" if agency else ""), rule="nothing_to_pause")
    template = template_of(route)
    out = Resumed(route_id=route.id)
    refusals: set[int] = set()
    for row in chosen:
        step = steps[row.step_id]
        row.resumed_at = now
        session.add(row)
        assert row.refusal_id is not None
        refusals.add(row.refusal_id)
        step.status = StepStatus(row.status)
        resume_step(session, cfg, route, template, row, step, now=now, actor=actor,
                    reason=RESUMED_RU, out=out)
    session.flush()
    for rid in sorted(refusals):
        still = session.exec(select(StepSuspension.id).where(
            StepSuspension.refusal_id == rid,
            col(StepSuspension.resumed_at).is_(None)).limit(1)).first()
        refusal = session.get(ParticipantRefusal, rid)
        if still is None and refusal is not None:
            refusal.resumed_at, refusal.resumed_by = now, actor
            refusal.resume_application_date = application_date
            session.add(refusal)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="participant_resumed",
                 after={"agency_id": agency_id, "scope": "participant" if agency else "all",
                        "application_date": application_date, "steps": out.steps,
                        "requests_resent": out.requests_resent,
                        "timers_armed": out.timers_armed},
                 reason=RESUMED_RU)
    advance_route(session, cfg, route, now=now, actor=actor)  # planned steps whose turn came
    mirror_later(session, cfg, route.id)
    session.flush()
    return out
