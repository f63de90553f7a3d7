"""The end of accompaniment (004 п.13), each in the caller's transaction.

004 п.13: accompaniment ends
- а) when the ИПРА's term ends — the route's ``ipra_expiry`` timer, armed on the ИПРА's last
  day (``engine.routes.ipra_term``) and fired by the sweeper (``fire_due_route_timers``);
- б) on the person's application to stop (004 п.12: paper or the Единый портал; its date is
  recorded) — ``terminate_route`` by a coordinator (API, CLI, the route's page);
- в) when the МСЭ changes its decision so that no limitation of degree 2 or 3 of the
  categories of 004 п.1 is left — checked on each new ИПРА import
  (``on_new_ipra``, called by ``engine.persons.ipra_import``).

The other route kinds end by their own grounds, not 004's: a new ИПРА is judged by each
kind's eligibility rule (``models.eligibility.ipra_grounds``; social employment: 001
Регламент п.3, degree-3 work limitation), and the ИПРА-expiry timer is armed only for the
kinds whose grounds are the ИПРА's (``models.route_life.IPRA_TERM_KINDS``). Early help (003)
is never ended by an ИПРА.

Each ends the route the same way: every open request withdrawn with a cancel notice to its
agency, every pending timer of its steps and of the route dropped, open escalations closed,
open steps ``cancelled``, the route ``terminated`` with ``end_reason``; one audit record
``terminated`` with ``details.reason``. A supervisor's close (``engine.supervisor.actions``)
stays for the other cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.escalations import ladder, timers
from engine.infra import audit
from engine.infra.locks import lock_route, lock_route_steps
from engine.routes.ipra_term import (
    arm_ipra_expiry,
    cancel_route_timers,
    check_application_date,
    ipra_in_force,
    local_day,
)
from engine.routes.transitions import EngineConfig, mirror_later, withdraw_request
from models.agencies import AgencyRequest
from models.eligibility import ipra_grounds
from models.ipra import Ipra
from models.route_life import (
    END_REASON_RU,
    IPRA_TERM_KINDS,
    EndReason,
    RouteTimer,
    RouteTimerKind,
    RouteTimerStatus,
    ended_by_ipra_text,
)
from models.routes import Route, RouteStatus, StepStatus
from models.timers import EscalationStatus, TimerKind

LIVE = (RouteStatus.active, RouteStatus.suspended)
"""Routes accompaniment can still end for (a suspended one too: consent withdrawn)."""


@dataclass
class Terminated:
    route_id: str
    reason: EndReason
    steps_cancelled: list[str] = field(default_factory=list)
    cancel_notices: list[str] = field(default_factory=list)
    timers_cancelled: int = 0


def terminate(session: Session, cfg: EngineConfig, route: Route, *, reason: EndReason,
              now: datetime, actor: str, details: dict[str, object] | None = None,
              text: str | None = None) -> Terminated:
    """End a live route for ``reason`` (004 п.13): requests withdrawn with notice, timers
    dropped, escalations closed, open steps cancelled, route ``terminated``. Audited, with
    ``text`` (Russian, with its clause; default: 004 п.13's wording of ``reason``)."""
    if route.status not in LIVE:
        raise EngineError(f"route: {route.id} is {route.status.value}; only an active or "
                          "suspended route can be terminated",
                          rule="route_not_open", params={"status": route.status.value})
    text = text or END_REASON_RU[reason]
    out = Terminated(route_id=route.id, reason=reason)
    # the route's timer row before the steps' rows: the sweeper locks in this order too
    cancel_route_timers(session, route, now=now, actor=actor, reason=text)
    route = lock_live(session, route.id)
    for step in lock_route_steps(session, route.id):  # seq order: no deadlock
        if step.status.terminal:  # a recurring check between occurrences: no next one
            out.timers_cancelled += timers.cancel_pending(
                session, step.id, reason=text, now=now, actor=actor,
                kinds=(TimerKind.recur_next,))
            continue
        before = step.status.value
        if step.current_request_id and step.status is not StepStatus.planned:
            req = session.get(AgencyRequest, step.current_request_id)
            if req is not None:
                notice = withdraw_request(session, req, now=now, actor=actor, reason=text)
                if notice is not None:
                    out.cancel_notices.append(notice.id)
        out.timers_cancelled += timers.cancel_pending(session, step.id, reason=text, now=now,
                                                      actor=actor)
        ladder.resolve_open(session, step, now=now, actor=actor, resolution=text,
                            action="closed_route_terminated", status=EscalationStatus.closed,
                            reason=text)
        step.status = StepStatus.cancelled
        step.outcome_note = f"маршрут прекращён: {text}"[:500]
        session.add(step)
        out.steps_cancelled.append(step.id)
        audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                     route_id=route.id, action="closed_route_terminated",
                     before={"status": before},
                     after={"status": StepStatus.cancelled.value}, reason=text)
    before_status = route.status.value
    route.status = RouteStatus.terminated
    route.end_reason = reason.value
    route.completed_at = now
    session.add(route)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="terminated", before={"status": before_status},
                 after={"status": RouteStatus.terminated.value, "reason": reason.value,
                        **(details or {}), "steps_cancelled": out.steps_cancelled,
                        "cancel_notices": len(out.cancel_notices),
                        "timers_cancelled": out.timers_cancelled},
                 reason=text)
    mirror_later(session, cfg, route.id)
    session.flush()
    return out


def lock_live(session: Session, route_id: str) -> Route:
    """Lock the route's steps, then the route (the order ``advance_route`` takes them: no
    deadlock), and return the route read afresh, still live: an answer applied meanwhile may
    have completed it (or a supervisor cancelled it), and a route read before the locks must
    not be overwritten as ``terminated``. Raises ``EngineError`` (rule ``route_not_open``)."""
    lock_route_steps(session, route_id)
    route = lock_route(session, route_id)
    if route is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    if route.status not in LIVE:
        raise EngineError(f"route: {route.id} is {route.status.value}; only an active or "
                          "suspended route can be terminated",
                          rule="route_not_open", params={"status": route.status.value})
    return route


def terminate_on_application(session: Session, cfg: EngineConfig, *, route_id: str,
                             application_date: date, now: datetime,
                             actor: str) -> Terminated:
    """004 п.13 б: the person's application to stop accompaniment, dated
    ``application_date`` (not in the future, not before the route's registration day)."""
    route = session.get(Route, route_id)
    if route is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    check_application_date(route, application_date, now=now)
    return terminate(session, cfg, route, reason=EndReason.person_request, now=now,
                     actor=actor, details={"application_date": application_date})


def on_new_ipra(session: Session, cfg: EngineConfig, *, person_id: str, now: datetime,
                actor: str) -> list[Terminated]:
    """A new ИПРА of the person was imported: if it is the one in force, each live route is
    judged by its own kind's grounds (``models.eligibility.ipra_grounds``):

    - accompaniment: no degree-2/3 limitation of 004 п.1's categories left → ends
      ``grounds_removed`` (004 п.13 в);
    - social employment: no longer a degree-3 limitation of the capacity to work with simple
      work only with significant help (001 Регламент п.3) → ends ``grounds_removed``, the
      clause and the rule that failed in the audit record;
    - supported living: no degree-2/3 limitation left (000 п.10, read as at the application)
      → ends likewise;
    - early help (003): its grounds are not the ИПРА's — untouched.

    A route whose grounds hold has its ИПРА-expiry timer moved to the new ИПРА's last day
    where its kind ends with the ИПРА's term (004 п.13 а; ``IPRA_TERM_KINDS``). Returns the
    routes terminated."""
    current = ipra_in_force(session, person_id)
    routes = list(session.exec(select(Route).where(
        Route.person_id == person_id, col(Route.status).in_(LIVE)).order_by(col(Route.id))))
    if current is None:
        return []
    row, ipra = current
    out = []
    for r in routes:
        grounds = ipra_grounds(r.template, ipra)
        if grounds is None:
            continue
        failed = [g for g in grounds if not g.passed]
        if not failed:
            arm_ipra_expiry(session, r, now=now, actor=actor)
            continue
        why = "; ".join(f"{g.reason_ru} ({g.clause})" for g in failed)
        out.append(terminate(
            session, cfg, r, reason=EndReason.grounds_removed, now=now, actor=actor,
            details={**_grounds_details(row.id, ipra),
                     "grounds": [{"rule": g.rule, "clause": g.clause} for g in failed]},
            text=None if r.template == "accompaniment" else ended_by_ipra_text(
                r.template, EndReason.grounds_removed, why)))
    return out


def _grounds_details(ipra_id: int | None, ipra: Ipra) -> dict[str, object]:
    return {"ipra_id": ipra_id, "limitations": {lim.category.value: lim.degree
                                                for lim in ipra.limitations}}


@dataclass
class RouteTimerSweep:
    fired: int = 0
    stale: int = 0


def fire_due_route_timers(session: Session, cfg: EngineConfig, *, now: datetime, actor: str,
                          batch_size: int = 200) -> RouteTimerSweep:
    """Fire the due route timers (in the caller's transaction, claimed with ``SKIP
    LOCKED``): an ``ipra_expiry`` timer ends its route (004 п.13 а) unless the route is no
    longer live or a newer ИПРА of the person is in force (then the timer is stale: the new
    ИПРА's own timer watches its term)."""
    out = RouteTimerSweep()
    due = list(session.exec(
        select(RouteTimer).where(RouteTimer.status == RouteTimerStatus.pending,
                                 col(RouteTimer.due_at) <= now)
        .order_by(col(RouteTimer.due_at), col(RouteTimer.id)).limit(batch_size)
        .with_for_update(skip_locked=True)))
    for t in due:
        # steps, then the route, locked and read afresh before its status is judged (as
        # ``terminate`` does): a route completed meanwhile makes the timer stale
        lock_route_steps(session, t.route_id)
        route = lock_route(session, t.route_id)
        assert route is not None
        current = ipra_in_force(session, route.person_id)
        stale = None
        if route.status not in LIVE:
            stale = f"route is {route.status.value}"
        elif route.template not in IPRA_TERM_KINDS:  # armed before IPRA_TERM_KINDS
            stale = f"a {route.template} route does not end with the ИПРА's term"
        elif t.kind is RouteTimerKind.ipra_expiry and current is not None and (
                current[0].id != t.ipra_id and current[1].in_force_on(local_day(now,
                                                                            route.region))):
            stale = "a newer ИПРА is in force"
        if stale is not None:
            t.status = RouteTimerStatus.cancelled
            t.cancelled_reason = f"stale: {stale}"
            session.add(t)
            audit.record(session, at=now, actor=actor, entity="route_timer",
                         entity_id=str(t.id), route_id=route.id, action="cancelled",
                         after={"kind": t.kind.value}, reason=t.cancelled_reason)
            out.stale += 1
            continue
        t.status = RouteTimerStatus.fired
        t.fired_at = now
        session.add(t)
        audit.record(session, at=now, actor=actor, entity="route_timer", entity_id=str(t.id),
                     route_id=route.id, action="fired",
                     after={"kind": t.kind.value, "due_date": t.due_date})
        clause = IPRA_TERM_KINDS[route.template]
        terminate(session, cfg, route, reason=EndReason.ipra_expired, now=now, actor=actor,
                  details={"ipra_id": t.ipra_id, "ipra_last_day": t.due_date,
                           "clause": clause},
                  text=None if route.template == "accompaniment" else ended_by_ipra_text(
                      route.template, EndReason.ipra_expired, f"нет ИПРА в силе ({clause})"))
        out.fired += 1
    return out
