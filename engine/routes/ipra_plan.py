"""A route formed from the ИПРА, and its re-plan on a new ИПРА (004 п.10 пп.б).

The rehabilitation organisation forms the route to carry out the ИПРА and ensures its
deadlines and completeness (004 п.10 пп.б). A template asks for it with ``from_ipra = true``
(docs/route-templates.md): each measure of the person's current ИПРА becomes a step for its
executor (a participant role, or the agency the ИПРА names), due by the measure's deadline —
the step's complete-by deadline, on the escalation ladder. Measures of different executors
run in parallel (``models.ipra_plan``).

A new ИПРА re-plans a running route: ``replan(apply=False)`` shows the difference (steps
added, cancelled, re-dated) and ``replan(apply=True)`` applies it in one transaction,
audited (``replanned``) and mirrored to the route's flow run; a cancelled step's agency gets
a cancel notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.escalations import ladder, timers
from engine.infra import audit
from engine.infra.locks import lock_route_steps, reread
from engine.routes.resume import days_left
from engine.routes.step_stop import cancel_step
from engine.routes.transitions import (
    EngineConfig,
    advance_route,
    arm_complete_deadline,
    mirror_later,
)
from models.agencies import Agency, AgencyRole
from models.ipra import Ipra, IpraOrderError, MeasureDirection, latest_ipra
from models.ipra_plan import (
    CurrentMeasure,
    PlanDiff,
    PlannedMeasure,
    diff_plan,
    measure_entry,
    measure_key,
    planned_measures,
    unique_kind,
)
from models.person_file import IpraRecord
from models.routes import Route, RouteStatus, Step, StepStatus
from models.suspension import StepSuspension
from models.templates import template_of
from models.timers import KINDS_OF, DeadlineKind, EscalationStatus
from models.types import new_id

SYSTEM = "system:ipra_plan"
COMPLETE_KINDS = KINDS_OF[DeadlineKind.complete_by]


def free_step_id(session: Session, route_id: str, seq: int) -> str:
    """``<route>-s<seq>``, or a fresh id when a renumbered step holds it (a migration)."""
    sid = f"{route_id}-s{seq}"
    return sid if session.get(Step, sid) is None else new_id("st")


def current_ipra(session: Session, person_id: str) -> Ipra | None:
    """The person's ИПРА in force: the one that supersedes every other (docs/ipra.md)."""
    return current_ipras(session, [person_id]).get(person_id)


def current_ipras(session: Session, person_ids: Sequence[str]) -> dict[str, Ipra]:
    """Each person's ИПРА in force (``current_ipra``), read for all of them at once (a
    person without one is left out): ``rehab import`` forms thousands of routes."""
    docs: dict[str, list[Ipra]] = {}
    ids = sorted(set(person_ids))
    with session.no_autoflush:
        for i in range(0, len(ids), 1000):
            for r in session.exec(select(IpraRecord)
                                  .where(col(IpraRecord.person_id).in_(ids[i:i + 1000]))
                                  .order_by(col(IpraRecord.issued_on), col(IpraRecord.id))):
                if "destroyed_at" not in r.document:
                    docs.setdefault(r.person_id, []).append(Ipra.model_validate(r.document))
    out: dict[str, Ipra] = {}
    for pid, history in docs.items():
        try:
            found = latest_ipra(history)
        except IpraOrderError as exc:
            raise EngineError(f"ipra: {exc}") from None
        if found is not None:
            out[pid] = found
    return out


DIRECTION_ROLE: dict[MeasureDirection, AgencyRole] = {
    MeasureDirection.medical: AgencyRole.health,
    MeasureDirection.professional: AgencyRole.social_policy,
    MeasureDirection.social: AgencyRole.provider,
    MeasureDirection.psycho_pedagogical: AgencyRole.education,
    MeasureDirection.physical_culture_sport: AgencyRole.sport,
    MeasureDirection.technical_aids: AgencyRole.sfr,
}
"""The participant role of a direction's measures when the ИПРА names an executor agency
that is not a participant of the route's region (the step then goes to a provider of that
role; the coordinator may reassign it)."""


def _resolve(session: Session, pm: PlannedMeasure, region: str) -> tuple[AgencyRole, str | None]:
    """The step's role and, when the ИПРА names the executor agency and it is an active
    participant of the route's region (by its full name), that agency; a named agency we do
    not know: the direction's role (``DIRECTION_ROLE``)."""
    if pm.role is not None:
        return pm.role, None
    with session.no_autoflush:
        agency = session.exec(select(Agency).where(Agency.name == pm.agency_name,
                                                   Agency.region == region,
                                                   col(Agency.active).is_(True))
                              .order_by(col(Agency.id))).first()
    if agency is None:
        return DIRECTION_ROLE[pm.direction], None
    return AgencyRole(agency.role), agency.id


def build_plan(session: Session, *, region: str, ipra: Ipra,
               taken: tuple[str, ...] = ()) -> dict[str, Any]:
    """The route's plan from the ИПРА's measures (``Route.plan``); ``taken``: step kinds
    already in the route (a measure's kind is unique in it)."""
    used = list(taken)
    measures = []
    for pm in planned_measures(ipra):
        role, agency_id = _resolve(session, pm, region)
        kind = unique_kind(pm.base_kind, used)
        used.append(kind)
        measures.append(measure_entry(pm, kind=kind, role=role, agency_id=agency_id))
    return {"ipra": ipra.number, "retired": [], "measures": measures}


# --------------------------------------------------------------------------- re-plan
def _current(route: Route, steps: list[Step]) -> list[CurrentMeasure]:
    by_kind = {s.kind: s for s in steps}
    plan = route.plan or {}
    return [CurrentMeasure(kind=e["kind"], key=e["key"], due=date.fromisoformat(e["due"]),
                           status=by_kind[e["kind"]].status)
            for e in plan.get("measures", ())]


def _route(session: Session, route_id: str) -> Route:
    route = session.get(Route, route_id)
    if route is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    if route.plan is None or set(route.plan) <= {"branches"}:  # a branch decision only
        raise EngineError(f"route: {route_id} was not formed from the ИПРА (its template "
                            f"{route.template} v{route.template_version} has no from_ipra)")
    return route


def replan_preview(session: Session, *, route_id: str) -> PlanDiff:
    """What the person's current ИПРА would change in the route (nothing is written)."""
    route = _route(session, route_id)
    ipra = current_ipra(session, route.person_id)
    if ipra is None:
        raise EngineError(f"ipra: person of route {route_id} has no ИПРА")
    with session.no_autoflush:
        steps = list(session.exec(select(Step).where(Step.route_id == route.id)))
    return diff_plan(_current(route, steps), planned_measures(ipra),
                     from_ipra=(route.plan or {}).get("ipra"), to_ipra=ipra.number)


def apply_replan(session: Session, cfg: EngineConfig, *, route_id: str, now: datetime,
                 actor: str = SYSTEM) -> PlanDiff:
    """Apply the re-plan in the caller's transaction (one transaction, audited): added
    measures become steps (open at once when nothing holds them), cancelled ones are
    withdrawn (their agency is told), re-dated ones get their new complete-by deadline and
    ladder. Applying the same ИПРА again changes nothing (an empty difference)."""
    _route(session, route_id)
    steps = lock_route_steps(session, route_id)
    route = reread(session, Route, route_id)
    assert route is not None and route.plan is not None
    if route.status is not RouteStatus.active:
        raise EngineError(f"route: a {route.status.value} route cannot be re-planned")
    ipra = current_ipra(session, route.person_id)
    if ipra is None:
        raise EngineError(f"ipra: person of route {route_id} has no ИПРА")
    new = planned_measures(ipra)
    diff = diff_plan(_current(route, steps), new, from_ipra=route.plan.get("ipra"),
                     to_ipra=ipra.number)
    plan: dict[str, Any] = {**route.plan, "ipra": ipra.number,
                            "measures": [dict(e) for e in route.plan.get("measures", ())]}
    by_kind = {s.kind: s for s in steps}
    reason = f"новая ИПРА {ipra.number}"
    for c in diff.cancelled:
        cancel_step(session, by_kind[c.kind], now=now, actor=actor, reason=reason,
                    note=f"отменено: мероприятия нет в ИПРА {ipra.number}",
                    action="cancelled_by_replan")
    for r in diff.redated:
        entry = next(e for e in plan["measures"] if e["kind"] == r.kind)
        entry["due"] = r.new_due.isoformat()
    added: list[str] = []
    if diff.added:
        wanted = {a.key for a in diff.added}
        more = build_plan(session, region=route.region,
                          ipra=ipra.model_copy(update={"measures": tuple(
                              m for m in ipra.measures if measure_key(m) in wanted)}),
                          taken=tuple(by_kind))
        plan["measures"] += more["measures"]
        added = [e["kind"] for e in more["measures"]]
    route.plan = plan
    session.add(route)
    session.flush()
    template = template_of(route)
    kinds = [st.kind for st in template.steps]
    for r in diff.redated:
        step = by_kind[r.kind]
        step.ipra_due_date = r.new_due
        if step.status is StepStatus.paused:
            _redate_paused(session, route, step, now=now, actor=actor)
            continue
        ladder.cancel_timers(session, step, now=now, actor=actor, reason=reason,
                             kinds=COMPLETE_KINDS)
        ladder.resolve_open(session, step, now=now, actor=actor, action="resolved_by_replan",
                            resolution=f"срок мероприятия изменён: {r.new_due.isoformat()}",
                            kinds=(DeadlineKind.complete_by,),
                            status=EscalationStatus.resolved)
        arm_complete_deadline(session, cfg, route, template, step, now=now, actor=actor)
    for kind in added:
        seq = kinds.index(kind)
        entry = next(e for e in plan["measures"] if e["kind"] == kind)
        step = Step(id=free_step_id(session, route.id, seq), route_id=route.id, seq=seq, kind=kind,
                    role=entry["role"], ipra_due_date=date.fromisoformat(entry["due"]))
        session.add(step)
        session.flush()
        arm_complete_deadline(session, cfg, route, template, step, now=now, actor=actor)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="replanned",
                 before={"ipra": diff.from_ipra}, after={**diff.as_dict(), "added_steps": added})
    advance_route(session, cfg, route, now=now, actor=actor)
    mirror_later(session, cfg, route.id)
    return diff


def _redate_paused(session: Session, route: Route, step: Step, *, now: datetime,
                   actor: str) -> None:
    """A re-dated measure whose step is paused by a refusal (004 п.11): its new complete-by
    deadline (the ИПРА's «срок исполнения», 545н) is recorded on the step and on its open
    suspension, and no timer is armed — the resume (``resume_step``) arms the ladder on it,
    once. Audited (``complete_by_set``, ``paused``)."""
    assert step.ipra_due_date is not None
    due = timers.end_of_day(step.ipra_due_date, route.region)
    step.complete_by_date = due.due_date
    step.complete_by_source = "ipra"
    session.add(step)
    row = session.exec(select(StepSuspension).where(
        StepSuspension.step_id == step.id, col(StepSuspension.resumed_at).is_(None))
        .order_by(col(StepSuspension.id).desc())).first()
    if row is not None:
        row.complete_by_date = due.due_date
        row.complete_days_left = days_left(due.due_date, route.region, now)
        session.add(row)
    audit.record(session, at=now, actor=actor, entity="step", entity_id=step.id,
                 route_id=route.id, action="complete_by_set",
                 after={"complete_by": due.due_date, "source": "ipra",
                        "ipra_due_date": step.ipra_due_date, "paused": True})
