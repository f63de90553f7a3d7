"""The ИПРА a route works under, its term, and the route's timer at the term's end.

004 п.11: refusing and resuming are possible during the whole term of the ИПРА; 004 п.13 а:
accompaniment ends when the ИПРА's term ends. The person's ИПРА in force is the latest one
on file that no other supersedes and whose copy was not destroyed (``engine.persons``
keeps the history, ``IpraRecord.superseded_by_id``). The expiry timer is a ``RouteTimer``
due at the end of the ИПРА's last day in the route's region; an indefinite ИПРА has none.
"""

from __future__ import annotations

from datetime import date, datetime

import pendulum
from sqlmodel import Session, col, select

import calendars
from engine.errors import EngineError
from engine.escalations import timers
from engine.infra import audit
from models.ipra import Ipra
from models.person_file import IpraRecord
from models.route_life import IPRA_TERM_KINDS, RouteTimer, RouteTimerKind, RouteTimerStatus
from models.routes import Route


def local_day(at: datetime, region: str) -> date:
    """The calendar day of ``at`` in ``region``'s time zone."""
    local = pendulum.instance(at).in_timezone(calendars.get_calendar(region).timezone)
    return date(local.year, local.month, local.day)


def ipra_in_force(session: Session, person_id: str) -> tuple[IpraRecord, Ipra] | None:
    """The person's current ИПРА (not superseded, not destroyed), with its row; None: none."""
    with session.no_autoflush:
        rows = list(session.exec(
            select(IpraRecord).where(IpraRecord.person_id == person_id,
                                     col(IpraRecord.superseded_by_id).is_(None))
            .order_by(col(IpraRecord.issued_on).desc(), col(IpraRecord.id).desc())))
    for row in rows:
        if "destroyed_at" not in row.document:
            return row, Ipra.model_validate(row.document)
    return None


def pending_expiry(session: Session, route_id: str) -> list[RouteTimer]:
    return list(session.exec(select(RouteTimer).where(
        RouteTimer.route_id == route_id, RouteTimer.kind == RouteTimerKind.ipra_expiry,
        RouteTimer.status == RouteTimerStatus.pending)))


def cancel_route_timers(session: Session, route: Route, *, now: datetime, actor: str,
                        reason: str) -> int:
    """Cancel the route's pending route timers (audited); how many."""
    n = 0
    for t in pending_expiry(session, route.id):
        t.status = RouteTimerStatus.cancelled
        t.cancelled_reason = reason[:300]
        session.add(t)
        audit.record(session, at=now, actor=actor, entity="route_timer", entity_id=str(t.id),
                     route_id=route.id, action="cancelled",
                     after={"kind": t.kind.value, "due_date": t.due_date}, reason=reason)
        n += 1
    return n


def arm_ipra_expiry(session: Session, route: Route, *, now: datetime,
                    actor: str) -> RouteTimer | None:
    """(Re)arm the route's ИПРА-expiry timer on the person's current ИПРА (004 п.13 а): due
    at the end of its last day in the route's region. A pending timer on another day is
    cancelled; None when the person has no ИПРА or an indefinite one — or when the route's
    kind does not end with the ИПРА's term (``models.route_life.IPRA_TERM_KINDS``:
    accompaniment, 004 п.13 а, and social employment, 001 Регламент п.3; not supported
    living, 000 п.10, nor early help, 003: no query then)."""
    clause = IPRA_TERM_KINDS.get(route.template)
    if clause is None:
        return None
    current = ipra_in_force(session, route.person_id)
    last = current[1].last_day if current else None
    for t in pending_expiry(session, route.id):
        if last is not None and t.due_date == last and current and t.ipra_id == current[0].id:
            return t
    cancel_route_timers(session, route, now=now, actor=actor,
                        reason="the ИПРА in force changed")
    if current is None or last is None:
        return None
    due = timers.end_of_day(last, route.region)
    timer = RouteTimer(route_id=route.id, kind=RouteTimerKind.ipra_expiry, due_at=due.due_at,
                       due_date=last, ipra_id=current[0].id, created_at=now)
    session.add(timer)
    session.flush()
    audit.record(session, at=now, actor=actor, entity="route_timer", entity_id=str(timer.id),
                 route_id=route.id, action="created",
                 after={"kind": timer.kind.value, "due_date": last, "ipra_id": current[0].id},
                 reason=f"{clause}: the route ends with the ИПРА's term")
    return timer


def check_application_date(route: Route, application_date: date, *, now: datetime) -> date:
    """The date of a person's application about their route (a refusal or its resumption,
    004 п.11; a stop, п.13 б): not in the future, not before the route's registration day,
    both in the route's region. Returns today there."""
    today = local_day(now, route.region)
    if application_date > today:
        raise EngineError(f"application_date: {application_date.isoformat()} is in the "
                          f"future (today is {today.isoformat()})", rule="future_date")
    registered = local_day(route.registered_at, route.region)
    if application_date < registered:
        raise EngineError(f"application_date: {application_date.isoformat()} is before the "
                          f"route's registration day {registered.isoformat()}",
                          rule="before_registration", params={"day": f"{registered:%d.%m.%Y}"})
    return today
