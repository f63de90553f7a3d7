"""Migrating running routes to a new template version: a dry run, then one transaction per
route, audited (``migrated``, from/to version) and mirrored to the route's flow run.

A route keeps the template version it started with (issue 11); publishing a new version
migrates nothing by itself. ``plan_migration`` lists, route by route, what the migration
would do (``models.template_migration.RouteMigration``); ``migrate_route`` does exactly
that to one route in the caller's transaction. A route already at the target version is
left alone (the migration is idempotent); only active routes migrate — a finished route
keeps the version it ran under, a suspended one (consent withdrawn) is left until it
resumes.

The routes registered before the data templates, at version 0 (the built-in three-step
templates, ``models.templates``), migrate like any other: version 0 is an older version of
each of their codes (``models.template_migration.builtin_spec``), so ``rehab template
migrate CODE --to N`` moves them to a data version with the mapping of their steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.escalations import timers
from engine.escalations.recurrence import schedule_next
from engine.infra import audit
from engine.infra.locks import lock_route_steps, reread
from engine.routes.ipra_plan import build_plan, current_ipra, free_step_id
from engine.routes.step_stop import cancel_step
from engine.routes.transitions import (
    EngineConfig,
    advance_route,
    arm_complete_deadline,
    mirror_later,
)
from models.ipra import Ipra
from models.routes import Route, RouteStatus, Step, StepStatus
from models.template_files import TemplateSpec
from models.template_migration import RouteMigration, builtin_spec, check_mapping, plan_route
from models.templates import get_template, template_of
from models.timers import TimerKind

SYSTEM = "system:template_migration"
_SHIFT = 1_000_000  # renumbering goes through seqs no route has (the (route, seq) key)


def _versions(versions: Mapping[int, TemplateSpec], code: str,
              to_version: int) -> tuple[TemplateSpec, list[TemplateSpec]]:
    """The target version and the older ones a route may be at: the built-in version 0
    (when the code has one) and the data versions before ``to_version``."""
    if to_version not in versions:
        raise EngineError(f"--to: {code} has versions {sorted(versions)}, not {to_version}")
    builtin = builtin_spec(code)
    olds = ([builtin] if builtin is not None and 0 not in versions else []) + [
        versions[v] for v in sorted(versions) if v < to_version]
    if not olds:
        raise EngineError(f"--to: v{to_version} is the first version of {code}: nothing to "
                          f"migrate from")
    return versions[to_version], olds


def _one(session: Session, route: Route, steps: list[Step], new: TemplateSpec,
         mapping: Mapping[str, str | None], ipra: Ipra | None,
         ) -> tuple[RouteMigration, dict[str, Any] | None]:
    """The route's migration and, for a from_ipra version on a route without measures, the
    plan of the ИПРА's measures it adds."""
    old = get_template(route.template, route.template_version)
    base_kinds = {st.kind for st in old.steps}
    statuses = {s.kind: s.status for s in steps if s.kind in base_kinds}
    measures = (route.plan or {}).get("measures") or []
    more: dict[str, Any] | None = None
    if new.from_ipra and not measures and ipra is not None:
        taken = tuple({s.kind for s in steps} | {s.kind for s in new.steps})
        more = build_plan(session, region=route.region, ipra=ipra, taken=taken)
    return plan_route(route_id=route.id, from_version=route.template_version, old=old,
                      new=new, statuses=statuses, mapping=mapping, ipra=ipra,
                      measures_added=[e["kind"] for e in (more or {}).get("measures", ())]
                      ), more


def plan_migration(session: Session, *, code: str, versions: Mapping[int, TemplateSpec],
                   to_version: int, mapping: Mapping[str, str | None]) -> list[RouteMigration]:
    """The dry run: route by route (by id), what migrating to ``to_version`` would do.
    Nothing is written."""
    new, olds = _versions(versions, code, to_version)
    check_mapping(mapping, olds, new)
    with session.no_autoflush:
        routes = list(session.exec(
            select(Route).where(Route.template == code, Route.status == RouteStatus.active,
                                col(Route.template_version) < to_version)
            .order_by(col(Route.id))))
        out = []
        for route in routes:
            steps = list(session.exec(select(Step).where(Step.route_id == route.id)))
            out.append(_one(session, route, steps, new, mapping,
                            current_ipra(session, route.person_id))[0])
    return out


def _reschedule_check(session: Session, step: Step, period: int, *, region: str,
                      reason: str, now: datetime, actor: str) -> None:
    """A recurring step between checks whose period the new version changes, or which it
    makes recurring (``RouteMigration.checks_redated``): its next check follows the new
    period from the current occurrence's opening (001 Регламент п.6 пп.8; 000 п.10) — the
    pending next-check timer replaced, or written if the step did not recur before. An open
    occurrence writes its next one with the new period when answered
    (``engine.escalations.recurrence``); a step that never opened has none yet."""
    timers.cancel_pending(session, step.id, reason=reason, now=now, actor=actor,
                          kinds=(TimerKind.recur_next,))
    schedule_next(session, step, period_days=period, region=region, now=now, actor=actor)


def migrate_route(session: Session, cfg: EngineConfig, *, route_id: str, code: str,
                  versions: Mapping[int, TemplateSpec], to_version: int,
                  mapping: Mapping[str, str | None], now: datetime,
                  actor: str = SYSTEM) -> RouteMigration | None:
    """Migrate one route in the caller's transaction (None: already at ``to_version``, or
    no longer active — nothing done). Its steps are renumbered to the new version's order,
    then the retired ones, then the ИПРА's measures (``models.ipra_plan``)."""
    new, olds = _versions(versions, code, to_version)
    check_mapping(mapping, olds, new)
    if session.get(Route, route_id) is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    steps = lock_route_steps(session, route_id)
    route = reread(session, Route, route_id)
    assert route is not None
    if route.template != code:
        raise EngineError(f"route_id: {route_id} is a {route.template} route, not {code}")
    if route.status is not RouteStatus.active or not 0 <= route.template_version < to_version:
        return None
    ipra = current_ipra(session, route.person_id)
    mig, more = _one(session, route, steps, new, mapping, ipra)
    old = get_template(route.template, route.template_version)
    by_kind = {s.kind: s for s in steps}
    reason = f"шаблон {code}: версия {route.template_version} → {to_version}"
    for kind in mig.cancelled:
        cancel_step(session, by_kind[kind], now=now, actor=actor, reason=reason,
                    note=f"отменено: шага нет в версии {to_version} шаблона",
                    action="cancelled_by_migration")
    plan: dict[str, Any] = dict(route.plan or {"ipra": None, "retired": [], "measures": []})
    old_specs = {st.kind: st for st in old.steps}
    plan["retired"] = [*plan.get("retired", []), *(
        {"kind": k, "role": old_specs[k].role.value, "requested": old_specs[k].requested,
         "basis": old_specs[k].basis} for k in (*mig.cancelled, *mig.retired))]
    if more:
        plan["ipra"] = more["ipra"]
        plan["measures"] = [*plan.get("measures", []), *more["measures"]]
    # renumber: every step out of the way first (unique route+seq), then its new place
    for s in steps:
        s.seq += _SHIFT
        session.add(s)
    session.flush()
    renamed = dict(mig.kept)
    for s in steps:
        if s.kind in renamed:
            s.kind = renamed[s.kind]
    route.template_version = to_version
    route.plan = (plan if (plan.get("retired") or plan.get("measures")
                           or plan.get("branches")) else None)
    session.add(route)
    template = template_of(route)
    order = [st.kind for st in template.steps]
    specs = {s.kind: s for s in new.steps}
    current = {s.kind: s for s in steps}
    for s in steps:
        s.seq = order.index(s.kind)
        if s.kind in specs:
            s.optional = specs[s.kind].optional
        session.add(s)
        period = specs[s.kind].period_days if s.kind in specs else None
        if period is None:
            # retired, or no longer recurring: its next check is not asked (001 п.6 пп.8)
            timers.cancel_pending(session, s.id, reason=reason, now=now, actor=actor,
                                  kinds=(TimerKind.recur_next,))
        elif s.kind in mig.checks_redated:
            _reschedule_check(session, s, period, region=route.region, reason=reason,
                              now=now, actor=actor)
    session.flush()
    fresh: list[Step] = []
    for kind in (*mig.added, *mig.not_applicable, *mig.measures_added):
        seq = order.index(kind)
        closed = kind in mig.not_applicable
        entry = next((e for e in plan.get("measures", ()) if e["kind"] == kind), None)
        step = Step(
            id=free_step_id(session, route.id, seq), route_id=route.id, seq=seq, kind=kind,
            role=template.steps[seq].role.value, optional=template.steps[seq].optional,
            status=StepStatus.cancelled if closed else StepStatus.planned,
            ipra_due_date=date.fromisoformat(entry["due"]) if entry else None,
            outcome_note=(f"не применяется: {specs[kind].when.describe()}"[:500]
                          if closed else None))
        session.add(step)
        session.flush()
        current[kind] = step
        if not closed:
            fresh.append(step)
    for step in fresh:
        arm_complete_deadline(session, cfg, route, template, step, now=now, actor=actor)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="migrated",
                 before={"template_version": mig.from_version},
                 after={"template_version": to_version, **mig.as_dict()}, reason=reason)
    advance_route(session, cfg, route, now=now, actor=actor)
    mirror_later(session, cfg, route.id)
    return mig
