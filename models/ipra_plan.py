"""A route formed from the ИПРА (004 п.10 пп.б), and its re-plan on a new ИПРА (pure rules).

004 п.10 пп.б: the rehabilitation organisation forms the individual rehabilitation route to
carry out the ИПРА and ensures its deadlines and completeness. Each measure of the ИПРА
(545н: direction, executor, execution deadline) becomes a step addressed to its executor,
due by the measure's deadline (the step's complete-by deadline, watched by the ladder).

A route's plan is stored on the route (``Route.plan``, JSON) so that ``template_of(route)``
stays a pure function of the route row::

    {"ipra": "1234.5.39/2025",                  # the ИПРА the measures come from
     "retired": [{kind, role, requested, basis}],  # steps a template migration dropped
     "measures": [{kind, key, role, agency_id, requested, basis, due, direction}]}

A route's steps are the template's steps, then the retired ones, then the measures (a step's
``seq`` is its index in that list). Measures of different executors run in parallel; the
measures of one executor go one after another, earliest deadline first (one request at a
time to an agency for one person).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from models.agencies import AgencyRole
from models.ipra import Ipra, Measure, MeasureDirection
from models.routes import StepStatus
from models.templates import RouteTemplate, StepTemplate

MEASURE_BASIS = "004 п.10 пп.б (мероприятие ИПРА)"

DIRECTION_RU: dict[MeasureDirection, str] = {
    MeasureDirection.medical: "медицинская реабилитация",
    MeasureDirection.professional: "профессиональная реабилитация",
    MeasureDirection.social: "социальная реабилитация",
    MeasureDirection.psycho_pedagogical: "психолого-педагогическая реабилитация",
    MeasureDirection.physical_culture_sport: "адаптивная физическая культура и спорт",
    MeasureDirection.technical_aids: "технические средства реабилитации",
}


def measure_key(m: Measure) -> str:
    """A measure's identity across ИПРА of one person: its direction, executor and title
    (the deadline is not part of it: a new deadline re-dates the same measure)."""
    who = m.executor.role.value if m.executor.role else f"agency:{m.executor.agency}"
    raw = f"{m.direction.value}|{who}|{' '.join(m.title.split()).casefold()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class PlannedMeasure:
    """One measure as a step: its key, executor (a role, or an agency by name) and deadline."""

    key: str
    direction: MeasureDirection
    title: str
    role: AgencyRole | None
    agency_name: str | None
    due: date

    @property
    def base_kind(self) -> str:
        return f"ipra_{self.direction.value}_{self.key[:8]}"

    @property
    def requested(self) -> str:
        return f"Мероприятие ИПРА ({DIRECTION_RU[self.direction]}): {self.title}"[:500]


def planned_measures(ipra: Ipra) -> list[PlannedMeasure]:
    """The ИПРА's measures as steps to be, in the ИПРА's order (a measure listed twice with
    the same direction, executor and title is one measure: the earlier deadline holds)."""
    out: dict[str, PlannedMeasure] = {}
    for m in ipra.measures:
        key = measure_key(m)
        pm = PlannedMeasure(key=key, direction=m.direction, title=m.title,
                            role=m.executor.role, agency_name=m.executor.agency, due=m.due)
        if key not in out or pm.due < out[key].due:
            out[key] = pm
    return list(out.values())


def unique_kind(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base_2``, ``base_3`` … when taken (a measure cancelled by one re-plan
    and back in a later ИПРА is a new step)."""
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}_{n}" in used:
        n += 1
    return f"{base}_{n}"


def measure_entry(pm: PlannedMeasure, *, kind: str, role: AgencyRole,
                  agency_id: str | None) -> dict[str, Any]:
    """The plan's JSON entry of a measure step."""
    return {"kind": kind, "key": pm.key, "role": role.value, "agency_id": agency_id,
            "requested": pm.requested, "basis": MEASURE_BASIS, "due": pm.due.isoformat(),
            "direction": pm.direction.value}


def _executor_of(entry: Mapping[str, Any]) -> str:
    return str(entry.get("agency_id") or entry["role"])


def extend_template(template: RouteTemplate, plan: Mapping[str, Any] | None, *,
                    parallel: bool) -> RouteTemplate:
    """The route's own template: the template's steps, then the retired steps, then the
    ИПРА's measures. ``parallel``: a measure waits only for the previous measure of the same
    executor (measures of different executors run in parallel); otherwise strict order."""
    if not plan:
        return template
    extra: list[StepTemplate] = [
        StepTemplate(kind=r["kind"], role=AgencyRole(r["role"]), requested=r["requested"],
                     basis=r["basis"], optional=True, depends_on=())
        for r in plan.get("retired", ())]
    last_of: dict[str, str] = {}
    after: dict[str, str | None] = {}
    for e in sorted(plan.get("measures", ()), key=lambda e: (e["due"], e["kind"])):
        who = _executor_of(e)
        after[e["kind"]] = last_of.get(who)
        last_of[who] = e["kind"]
    for e in plan.get("measures", ()):
        prev = after[e["kind"]]
        extra.append(StepTemplate(
            kind=e["kind"], role=AgencyRole(e["role"]), requested=e["requested"],
            basis=e["basis"],
            depends_on=((prev,) if prev else ()) if parallel else None))
    return replace(template, steps=template.steps + tuple(extra))


def measure_of(plan: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    """The plan's measure entry of step ``kind`` (None: not a measure step)."""
    if not plan:
        return None
    return next((e for e in plan.get("measures", ()) if e["kind"] == kind), None)


# ------------------------------------------------------------------------------- re-plan
@dataclass(frozen=True)
class CurrentMeasure:
    """A measure step of the running route: its kind, key, deadline and status."""

    kind: str
    key: str
    due: date
    status: StepStatus


@dataclass(frozen=True)
class Redated:
    kind: str
    old_due: date
    new_due: date


@dataclass(frozen=True)
class PlanDiff:
    """What a new ИПРА changes in a running route (shown before it is applied)."""

    from_ipra: str | None
    to_ipra: str
    added: tuple[PlannedMeasure, ...]
    cancelled: tuple[CurrentMeasure, ...]
    redated: tuple[Redated, ...]
    unchanged: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.cancelled or self.redated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from_ipra": self.from_ipra, "to_ipra": self.to_ipra,
            "added": [{"key": a.key, "direction": a.direction.value, "title": a.title,
                       "executor": a.role.value if a.role else a.agency_name,
                       "due": a.due.isoformat()} for a in self.added],
            "cancelled": [{"kind": c.kind, "status": c.status.value} for c in self.cancelled],
            "redated": [{"kind": r.kind, "from": r.old_due.isoformat(),
                         "to": r.new_due.isoformat()} for r in self.redated],
            "unchanged": list(self.unchanged),
        }


def diff_plan(current: Sequence[CurrentMeasure], new: Sequence[PlannedMeasure], *,
              from_ipra: str | None, to_ipra: str) -> PlanDiff:
    """The running route against the new ИПРА's measures (004 п.10 пп.б):

    - a measure of the new ИПРА without an open or done step: **added**;
    - an open step whose measure is not in the new ИПРА: **cancelled** (its agency is told);
    - an open step whose measure has another deadline: **re-dated**;
    - a done step (answered, information absent) stays done either way; a step cancelled
      before stays cancelled (its measure, back again, is added anew).
    """
    live = {c.key: c for c in current if c.status is not StepStatus.cancelled}
    wanted = {m.key: m for m in new}
    added = tuple(m for m in new if m.key not in live)
    cancelled = tuple(c for c in current if c.key not in wanted and not c.status.terminal)
    redated = tuple(Redated(c.kind, c.due, wanted[c.key].due) for c in live.values()
                    if c.key in wanted and not c.status.terminal
                    and wanted[c.key].due != c.due)
    moved = {r.kind for r in redated}
    unchanged = tuple(c.kind for c in live.values() if c.key in wanted and c.kind not in moved)
    return PlanDiff(from_ipra=from_ipra, to_ipra=to_ipra, added=added, cancelled=cancelled,
                    redated=redated, unchanged=unchanged)
