"""Forming a new route the way the regulations describe it: from the newest data template.

Every path that forms a route for a person — a 363н application (``engine.persons
.applications``), a coordinator's ``POST /api/applications``, ``rehab import`` — forms it
from the newest version of the template's data file (``models/route_templates``; the route
keeps that version), with each step's condition read on the person's ИПРА in force (e.g. the
СФР's technical-aid steps only when the ИПРА has technical aids, 004 п.8) and, for a template
``from_ipra``, each measure of that ИПРА a step for its executor (004 п.10 пп.б).
The built-in three-step templates (version 0, ``models.templates``) form no new route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from engine.routes.ipra_plan import build_plan
from engine.routes.transitions import SYSTEM, EngineConfig, register_application
from models.ipra import Ipra
from models.routes import Route
from models.template_files import TemplateSpec, latest, version_of


@dataclass(frozen=True)
class Forming:
    """What a new route of one template is formed of, for one person."""

    spec: TemplateSpec
    not_applicable: dict[str, str]
    """Step kinds whose condition does not hold for the person's ИПРА, each with the
    condition (formed closed, never sent)."""
    plan: dict[str, Any] | None
    """The ИПРА's measures as the route's own steps (``from_ipra``), else None."""


def spec_for(code: str, version: int | None = None) -> TemplateSpec:
    """The template's data file: ``version``, or the newest (ValueError naming the field)."""
    try:
        return version_of(code, version) if version else latest(code)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None


def forming(session: Session, *, code: str, region: str, ipra: Ipra | None,
            version: int | None = None) -> Forming:
    """The template version (default: the newest), its steps that do not apply for ``ipra``
    (the person's ИПРА in force, or None: only unconditional steps apply, 004 п.8), and the
    plan of its measures when the template is ``from_ipra`` (004 п.10 пп.б)."""
    spec = spec_for(code, version)
    plan = (build_plan(session, region=region, ipra=ipra,
                       taken=tuple(s.kind for s in spec.steps))
            if spec.from_ipra and ipra is not None else None)
    return Forming(spec=spec,
                   not_applicable={s.kind: s.when.describe() for s in spec.steps
                                   if not s.when.holds(ipra)},
                   plan=plan)


def form_route(
    session: Session, cfg: EngineConfig, *, now: datetime, person_id: str, template_code: str,
    region: str, ipra: Ipra | None, version: int | None = None,
    registered_at: datetime | None = None, coordinator_id: str | None = None,
    actor: str = SYSTEM, ipra_deadlines: Mapping[str, date] | None = None,
    roles: Mapping[str, str] | None = None,
) -> Route:
    """Register the person's route from the template's newest data version (``version``:
    another published one), its conditions read on ``ipra`` (``forming``), in the caller's
    transaction (``engine.routes.transitions.register_application``; ``roles``: per step
    kind, the participant role the application names, 003)."""
    f = forming(session, code=template_code, region=region, ipra=ipra, version=version)
    return register_application(
        session, cfg, now=now, person_id=person_id, template_code=f.spec.code,
        region=region, registered_at=registered_at, coordinator_id=coordinator_id,
        actor=actor, ipra_deadlines=ipra_deadlines, template_version=f.spec.version,
        not_applicable=f.not_applicable, plan=f.plan, roles=roles)
