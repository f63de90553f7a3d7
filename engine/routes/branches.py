"""The route's branch decision: which branches of a supported-living route apply.

000 п.10–15: after the need is assessed (п.10: identification and monitoring of need), the
person living with support may get education or vocational training (п.13), help to find
work, supported employment included (п.14), or social employment (п.15). The regulations
name the directions; the person's choice and the assessment decide which of them a person's
route takes. A coordinator records that decision once — the branches chosen and the
assessment's conclusion — in one transaction, audited (``branches_decided``) and mirrored
to the route's flow run:

- refused (``EngineError`` naming the field and the rule, nothing written) when the route's
  template has no branches or no such branch, when two alternatives are chosen (employment
  or social employment: one at most), before the assessment step is done, when a decision is
  recorded already, or when a branch step it would open or close has opened already;
- every branch step not chosen is closed as not applicable (``closed_not_chosen``, audited);
- the chosen branch steps open as soon as the steps they wait for are done (until the
  decision they wait, visibly: ``decision_pending``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from engine.errors import EngineError, NotFoundError
from engine.infra import audit
from engine.infra.locks import lock_route, lock_route_steps
from engine.routes.step_stop import cancel_step
from engine.routes.transitions import EngineConfig, advance_route, mirror_later
from models.routes import Route, RouteStatus, Step, StepStatus
from models.template_files import Branching, StepSpec, TemplateSpec, version_of

ASSESSMENT_MAX = 2000


@dataclass(frozen=True)
class BranchDecision:
    """A recorded decision: the branches chosen and the ones closed, with the conclusion."""

    route_id: str
    chosen: tuple[str, ...]
    closed: tuple[str, ...]
    assessment: str
    decided_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"route_id": self.route_id, "chosen": list(self.chosen),
                "closed": list(self.closed), "assessment": self.assessment,
                "decided_at": self.decided_at.isoformat()}


def branches_of(route: Route) -> TemplateSpec | None:
    """The route's template version if it has branches (None: it has none)."""
    if route.template_version < 1:
        return None
    spec = version_of(route.template, route.template_version)
    return spec if spec.branching is not None else None


def decision_of(route: Route) -> dict[str, Any] | None:
    """The route's recorded branch decision (None: not recorded)."""
    found = (route.plan or {}).get("branches")
    return dict(found) if found else None


def pending_branches(route: Route) -> list[str]:
    """The branches a route waits to have decided (empty: decided, or none to decide)."""
    spec = branches_of(route)
    if spec is None or decision_of(route) is not None:
        return []
    return list(spec.branches)


def _assessment_answered(branching: Branching, steps: Sequence[Step]) -> bool:
    """The step the decision follows (the need assessment, 000 п.10) is done: answered or
    answered that there is no information — not cancelled, not waiting."""
    after = next((s for s in steps if s.kind == branching.after), None)
    return (after is not None and after.status.terminal
            and after.status is not StepStatus.cancelled)


def _opened_branch_step(spec: TemplateSpec, steps: Sequence[Step]
                        ) -> tuple[StepSpec, Step] | None:
    """A branch step that has left ``planned`` (a decision comes before it opens)."""
    by_kind = {s.kind: s for s in steps}
    for st in spec.steps:
        step = by_kind.get(st.kind)
        if st.branch is not None and step is not None and step.status is not StepStatus.planned:
            return st, step
    return None


def decision_readiness(route: Route, steps: Sequence[Step]) -> str | None:
    """Whether a branch decision can be recorded on the route now, by the same rules as
    :func:`record_branch_decision` (000 п.10, п.13–15) — for a page to offer its form only
    when it can be accepted: None (nothing to decide: no branches, decided already, or the
    route is not active), ``"ready"``, ``"assessment_pending"`` (the need assessment is not
    answered yet) or ``"branch_opened"`` (a branch step has opened already)."""
    spec = branches_of(route)
    if spec is None or spec.branching is None or decision_of(route) is not None \
            or route.status is not RouteStatus.active:
        return None
    if not _assessment_answered(spec.branching, steps):
        return "assessment_pending"
    if _opened_branch_step(spec, steps) is not None:
        return "branch_opened"
    return "ready"


def _check(spec: TemplateSpec, route: Route, steps: list[Step], chosen: Sequence[str],
           assessment: str) -> None:
    """Every rule of the decision, in the order a coordinator would fix them."""
    assert spec.branching is not None
    branching = spec.branching
    known = spec.branches
    for i, name in enumerate(chosen):
        if name not in known:
            raise EngineError(f"chosen[{i}]: {name!r} is not a branch of template "
                              f"{spec.code} v{spec.version} (its branches: "
                              f"{', '.join(known)})", field="chosen", rule="not_a_branch",
                              params={"kinds": list(known)})
    if len(set(chosen)) != len(chosen):
        raise EngineError("chosen: a branch is listed twice", rule="listed_twice")
    for group in branching.alternatives:
        both = [b for b in chosen if b in group]
        if len(both) > 1:
            raise EngineError(f"chosen: {' and '.join(both)} are alternatives — choose one "
                              f"at most ({branching.basis})", rule="alternatives",
                              params={"kinds": both})
    if not assessment.strip():
        raise EngineError("assessment: the need assessment's conclusion must not be empty "
                          "(000 п.10: the decision rests on the assessment)", rule="blank")
    if len(assessment) > ASSESSMENT_MAX:
        raise EngineError(f"assessment: at most {ASSESSMENT_MAX} characters",
                          rule="max_length", params={"max": ASSESSMENT_MAX})
    if route.status is not RouteStatus.active:
        raise EngineError(f"route: {route.id} is {route.status.value}: a branch decision is "
                          "recorded on an active route only", rule="route_not_active",
                          params={"status": route.status.value})
    found = decision_of(route)
    if found is not None:
        raise EngineError(f"route: the branch decision was recorded already at "
                          f"{found.get('decided_at')} (chosen: "
                          f"{', '.join(found.get('chosen', ())) or 'none'}); it is recorded "
                          "once", rule="decided_already")
    if not _assessment_answered(branching, steps):
        raise EngineError(f"route: the decision records the conclusion of "
                          f"{branching.after}, which is not answered yet "
                          f"({spec.step(branching.after).basis})", rule="assessment_pending",
                          params={"kinds": [branching.after]})
    opened = _opened_branch_step(spec, steps)
    if opened is not None:
        st, step = opened
        raise EngineError(f"chosen: the branch step {st.kind} ({st.branch}) has opened "
                          f"already (it is {step.status.value}): a decision comes before "
                          "a branch step opens", rule="branch_opened",
                          params={"kinds": [st.kind], "status": step.status.value})


def record_branch_decision(
    session: Session, cfg: EngineConfig, *, route_id: str, chosen: Sequence[str],
    assessment: str, now: datetime, actor: str,
) -> BranchDecision:
    """Record the person's choice of branches together with the need assessment's conclusion
    (000 п.10, п.13–15) in the caller's transaction: the branch steps not chosen are closed
    as not applicable, the chosen ones open when the steps they wait for are done (or the
    route completes). ``EngineError`` naming the field and the rule otherwise (nothing is
    written)."""
    with session.no_autoflush:
        route = session.get(Route, route_id)
    if route is None:
        raise NotFoundError(f"route_id: no route {route_id!r}")
    spec = branches_of(route)
    if spec is None:
        raise EngineError(f"route: template {route.template} v{route.template_version} has no "
                          "branches to decide (000 п.13–15 branches: supported_living v2 and "
                          "later)", rule="no_branches")
    steps = lock_route_steps(session, route_id)  # steps first, then the route (locks.py)
    route = lock_route(session, route_id) or route
    chosen = tuple(chosen)
    _check(spec, route, steps, chosen, assessment)
    reason = "направление не выбрано (решение по выбору инвалида и оценке нуждаемости)"
    closed: list[str] = []
    branch_of = {st.kind: st.branch for st in spec.steps}
    for step in steps:
        branch = branch_of.get(step.kind)
        if branch is None or branch in chosen:
            continue
        cancel_step(session, step, now=now, actor=actor, reason=reason,
                    note=f"не применяется: {reason}", action="closed_not_chosen")
        closed.append(step.kind)
    decision = BranchDecision(route_id=route.id, chosen=chosen, closed=tuple(closed),
                              assessment=assessment.strip(), decided_at=now)
    route.plan = {**(route.plan or {}),
                  "branches": {"chosen": list(chosen), "assessment": decision.assessment,
                               "decided_at": now.isoformat(), "by": actor}}
    session.add(route)
    audit.record(session, at=now, actor=actor, entity="route", entity_id=route.id,
                 route_id=route.id, action="branches_decided",
                 after={"chosen": list(chosen), "closed": closed,
                        "assessment": decision.assessment},
                 reason=spec.branching.basis if spec.branching else None)
    session.flush()
    advance_route(session, cfg, route, now=now, actor=actor)
    mirror_later(session, cfg, route.id)
    return decision
