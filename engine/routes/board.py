"""The coordinator's board: a region's routes with where each stands now — the step it waits
on, the agency, the deadline and how many working days it is late, its open escalation —
filtered and sorted overdue first; and counts by agency of what is late. The rehabilitation
organisation ensures the route's deadlines and completeness (363н п.10б); answers are due
within 5 working days (298-п Порядок п.11), requests sent within 1 (п.10).

Shared by the pages (``api/web``) and ``rehab routes list``. Identifiers only: no person's
data is read here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from engine.escalations import ladder
from models.agencies import Agency
from models.routes import Route, RouteStatus, Step, StepStatus
from models.timers import Escalation, EscalationLevel

OPEN_STEP = (StepStatus.sending, StepStatus.awaiting, StepStatus.needs_clarification)


@dataclass(frozen=True)
class Filters:
    """What the board shows: each None / False means "any"."""

    kind: str | None = None  # route template
    state: RouteStatus | None = None
    agency_id: str | None = None  # waiting on this agency
    overdue: bool = False
    escalated: bool = False


@dataclass(frozen=True)
class OpenStep:
    """One open step of a route (parallel steps: a route has several)."""

    seq: int
    kind: str
    agency_id: str | None
    agency_name: str | None
    late_working_days: int


@dataclass(frozen=True)
class RouteRow:
    """One route as the board lists it."""

    id: str
    template: str
    region: str
    status: str
    registered_at: datetime
    step_seq: int | None = None
    step_kind: str | None = None
    step_status: str | None = None
    agency_id: str | None = None
    agency_name: str | None = None
    due_date: date | None = None
    late_working_days: int = 0
    escalation_level: int | None = None  # highest open level
    open_escalations: int = 0
    #: every open step, in order (parallel steps: several)
    open_steps: tuple[OpenStep, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def waiting_on(self) -> frozenset[str]:
        """The agencies the route waits on: those of its open steps."""
        return frozenset(o.agency_id for o in self.open_steps if o.agency_id)

    @property
    def overdue(self) -> bool:
        return self.late_working_days > 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["overdue"] = self.overdue
        return d


def step_due(step: Step) -> tuple[date | None, datetime | None]:
    """The deadline the step runs against now: send-by while it is being sent, answer-by
    while it waits for the answer (or clarification)."""
    if step.status is StepStatus.sending:
        return step.send_by_date, step.send_by
    if step.status in (StepStatus.awaiting, StepStatus.needs_clarification):
        return step.answer_by_date, step.answer_by
    return None, None


def step_late(step: Step, region: str, now: datetime) -> int:
    """Working days the step is late now (an open step) or was (a finished one)."""
    if step.status in OPEN_STEP:
        due_date, due_at = step_due(step)
        return ladder.days_late(due_date, due_at, region, now) if due_date else 0
    return step.late_working_days or 0


def board(session: Session, *, region: str | None, now: datetime,
          filters: Filters) -> list[RouteRow]:
    """Routes of ``region`` (None: all) of ``filters.kind`` and ``filters.state``, the
    overdue first (most working days late first), then the newest (``matching`` applies
    the other filters)."""
    q = select(Route)
    if region is not None:
        q = q.where(Route.region == region)
    if filters.kind:
        q = q.where(Route.template == filters.kind)
    if filters.state is not None:
        q = q.where(Route.status == filters.state)
    routes = list(session.exec(q.order_by(col(Route.registered_at).desc(),
                                           col(Route.created_at).desc(), col(Route.id))
                                .limit(5000)))
    ids = [r.id for r in routes]
    open_by_route: dict[str, list[tuple[Step, int]]] = {}
    for st in session.exec(select(Step).where(col(Step.route_id).in_(ids),
                                              col(Step.status).in_(OPEN_STEP))
                           .order_by(col(Step.seq))):
        open_by_route.setdefault(st.route_id, []).append((st, 0))
    regions = {r.id: r.region for r in routes}
    steps: dict[str, Step] = {}
    for route_id, found in open_by_route.items():
        rated = [(st, step_late(st, regions[route_id], now)) for st, _ in found]
        open_by_route[route_id] = rated
        # the step the row shows: the latest past its deadline, else the first open one
        steps[route_id] = min(rated, key=lambda x: (-x[1], x[0].seq))[0]
    escalations: dict[str, list[Escalation]] = {}
    for e in session.exec(select(Escalation).where(
            col(Escalation.route_id).in_(ids),
            col(Escalation.status).in_(ladder.OPEN_STATES))):
        escalations.setdefault(e.route_id, []).append(e)
    names = {a.id: a.short_name for a in session.exec(select(Agency))}
    rows = []
    for r in routes:
        s = steps.get(r.id)
        esc = escalations.get(r.id, [])
        level = max((int(e.level) for e in esc), default=None)
        row = RouteRow(
            id=r.id, template=r.template, region=r.region, status=r.status.value,
            registered_at=r.registered_at,
            step_seq=s.seq if s else None, step_kind=s.kind if s else None,
            step_status=s.status.value if s else None,
            agency_id=s.agency_id if s else None,
            agency_name=names.get(s.agency_id or "") if s else None,
            due_date=step_due(s)[0] if s else None,
            late_working_days=step_late(s, r.region, now) if s else 0,
            escalation_level=level, open_escalations=len(esc),
            open_steps=tuple(OpenStep(st.seq, st.kind, st.agency_id,
                                      names.get(st.agency_id or ""), late)
                             for st, late in open_by_route.get(r.id, ())))
        rows.append(row)
    rows.sort(key=lambda x: (-x.late_working_days, -x.registered_at.timestamp()))
    return rows


def matching(rows: list[RouteRow], filters: Filters, *, limit: int = 500) -> list[RouteRow]:
    """The rows waiting on ``filters.agency_id`` (any of their open steps), overdue,
    escalated (level 2), as asked."""
    out = [r for r in rows
           if (not filters.agency_id or filters.agency_id in r.waiting_on)
           and (not filters.overdue or r.overdue)
           and (not filters.escalated or (r.escalation_level or 0) >= EscalationLevel.escalated)]
    return out[:limit]


def late_by_agency(rows: list[RouteRow]) -> list[tuple[str, str, int]]:
    """(agency id, name, how many routes wait on it past their deadline), most first."""
    counts = Counter(a for r in rows for a in {o.agency_id for o in r.open_steps
                                               if o.agency_id and o.late_working_days > 0})
    names = {o.agency_id: o.agency_name or o.agency_id for r in rows for o in r.open_steps
             if o.agency_id}
    return [(a, names[a], n) for a, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]
