"""Migrating running routes to a new template version (issue 11, "Templates are data,
versioned"): the mapping of old steps to new and what it changes in one route (pure).

A route keeps the version it started with; publishing a new version changes no route until
it is migrated. The mapping says, per old step kind, which new step carries it on (``""``:
none — the step is dropped); an old kind the mapping does not name goes on as the new step
of the same kind, or is dropped when the new version has none. A mapping file (TOML)::

    # accompaniment v1 -> v2
    [steps]
    rehabilitation_route = "rehabilitation_route"   # the same step (the default)
    situational_help = ""                           # dropped

What one route's migration does (``plan_route``): kept steps (renamed when mapped to another
kind) keep their state, requests and deadlines; steps of the new version that no old step
carries are added (planned, or closed as not applicable when their ``when`` does not hold);
dropped steps that are open are cancelled (their agency is told), done ones stay in the
route's history as retired steps.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.ipra import Ipra
from models.routes import StepStatus
from models.template_files import StepSpec, TemplateSpec, Terms
from models.templates import TEMPLATES, RouteTemplate


def builtin_spec(code: str) -> TemplateSpec | None:
    """The built-in three-step template (version 0, ``models.templates``) of ``code`` as a
    template version a migration starts from (None: the code has none). The routes
    registered before the data templates keep it until they are migrated."""
    t = TEMPLATES.get(code)
    if t is None:
        return None
    return TemplateSpec(
        code=t.code, version=0, title=t.title, basis=t.basis, terms=Terms(),
        steps=tuple(StepSpec(kind=s.kind, role=s.role, requested=s.requested, basis=s.basis,
                             send_days=s.send_days, answer_days=s.answer_days,
                             optional=s.optional, period_days=s.period_days,
                             deadline_days=s.deadline_days,
                             depends_on=tuple(x.kind for x in t.steps[:i]))
                    for i, s in enumerate(t.steps)),
        file="models/templates.py (built-in, version 0)")


class MappingError(ValueError):
    """A mapping breaks a rule: the message names the field (``steps.<kind>``) and the rule."""


def parse_mapping(text: str, *, file: str = "mapping") -> dict[str, str | None]:
    """``[steps] old = "new" | ""`` as {old: new or None}; MappingError otherwise."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{file}: toml: {exc}") from None
    extra = sorted(set(raw) - {"steps"})
    if extra:
        raise MappingError(f"{file}: {extra[0]}: unknown key (allowed: steps)")
    steps = raw.get("steps", {})
    if not isinstance(steps, dict):
        raise MappingError(f"{file}: steps: must be a table ([steps])")
    out: dict[str, str | None] = {}
    for old, new in steps.items():
        if not isinstance(new, str):
            raise MappingError(f"{file}: steps.{old}: must be a step kind of the new version "
                               f"or \"\" (dropped)")
        out[old] = new or None
    return out


def parse_pairs(pairs: Sequence[str]) -> dict[str, str | None]:
    """``old=new`` / ``old=`` command-line pairs as a mapping."""
    out: dict[str, str | None] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip():
            raise MappingError(f"--map {pair!r}: must be OLD=NEW or OLD= (dropped)")
        out[old.strip()] = new.strip() or None
    return out


def check_mapping(mapping: Mapping[str, str | None], olds: Sequence[TemplateSpec],
                  new: TemplateSpec) -> None:
    """Each key an old step kind (of some older version), each value a step of the new
    version with the same participant role, no new step carried by two old ones."""
    old_roles = {s.kind: s.role for spec in olds for s in spec.steps}
    new_roles = {s.kind: s.role for s in new.steps}
    for old, target in mapping.items():
        if old not in old_roles:
            raise MappingError(f"steps.{old}: not a step of {new.code} before v{new.version} "
                               f"(known: {', '.join(sorted(old_roles))})")
        if target is None:
            continue
        if target not in new_roles:
            raise MappingError(f"steps.{old}: {target!r} is not a step of {new.code} "
                               f"v{new.version} ({', '.join(new_roles)})")
        if new_roles[target] != old_roles[old]:
            raise MappingError(f"steps.{old}: {target!r} is addressed to "
                               f"{new_roles[target].value}, {old!r} to "
                               f"{old_roles[old].value}: a step keeps its participant role")
    for spec in olds:
        targets = [_target(mapping, s.kind, new) for s in spec.steps]
        seen = [t for t in targets if t is not None]
        dup = next((t for t in seen if seen.count(t) > 1), None)
        if dup is not None:
            raise MappingError(f"steps: two steps of v{spec.version} go on as {dup!r}")


def _target(mapping: Mapping[str, str | None], kind: str, new: TemplateSpec) -> str | None:
    if kind in mapping:
        return mapping[kind]
    return kind if any(s.kind == kind for s in new.steps) else None


@dataclass(frozen=True)
class RouteMigration:
    """What migrating one route does; the dry run prints it, the migration audits it."""

    route_id: str
    from_version: int
    to_version: int
    kept: tuple[tuple[str, str], ...]  # (old kind, new kind)
    added: tuple[str, ...]  # new steps, planned
    not_applicable: tuple[str, ...]  # new steps formed closed (their `when` does not hold)
    cancelled: tuple[str, ...]  # dropped open steps: withdrawn, their agency told
    retired: tuple[str, ...]  # dropped done steps: kept in the history
    measures_added: tuple[str, ...] = ()  # the ИПРА's measures (a from_ipra version)
    #: recurring steps between checks whose period the new version changes: the next check
    #: is moved to the new period (engine.routes.template_migration._reschedule_check)
    checks_redated: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"route_id": self.route_id, "from_version": self.from_version,
                "to_version": self.to_version,
                "kept": [list(k) for k in self.kept], "added": list(self.added),
                "not_applicable": list(self.not_applicable),
                "cancelled": list(self.cancelled), "retired": list(self.retired),
                "measures_added": list(self.measures_added),
                "checks_redated": list(self.checks_redated)}


def plan_route(*, route_id: str, from_version: int, old: RouteTemplate, new: TemplateSpec,
               statuses: Mapping[str, StepStatus], mapping: Mapping[str, str | None],
               ipra: Ipra | None, measures_added: Sequence[str] = ()) -> RouteMigration:
    """One route's migration from its template's steps (``old``, without the route's own
    plan) and their ``statuses`` (by kind) to ``new``."""
    kept: list[tuple[str, str]] = []
    cancelled: list[str] = []
    retired: list[str] = []
    carried: set[str] = set()
    for st in old.steps:
        target = _target(mapping, st.kind, new)
        if target is not None:
            kept.append((st.kind, target))
            carried.add(target)
        elif statuses[st.kind].terminal:
            retired.append(st.kind)
        else:
            cancelled.append(st.kind)
    fresh = [s for s in new.steps if s.kind not in carried]
    periods = {s.kind: s.period_days for s in new.steps}
    old_periods = {st.kind: st.period_days for st in old.steps}
    redated = tuple(target for kind, target in kept
                    if periods[target] is not None
                    and periods[target] != old_periods[kind]
                    and statuses.get(kind) in (StepStatus.answered, StepStatus.absent))
    return RouteMigration(
        route_id=route_id, from_version=from_version, to_version=new.version,
        kept=tuple(kept), added=tuple(s.kind for s in fresh if s.when.holds(ipra)),
        not_applicable=tuple(s.kind for s in fresh if not s.when.holds(ipra)),
        cancelled=tuple(cancelled), retired=tuple(retired),
        measures_added=tuple(measures_added), checks_redated=redated)
