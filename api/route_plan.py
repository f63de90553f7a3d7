"""Coordinator API: a route formed from the ИПРА re-planned on a new ИПРА (preview, then
apply: 004 п.10 пп.б), the person's choice of provider (001 Регламент п.15 пп.2), and a
supported-living route's branch decision (000 п.10, п.13–15).
Identifiers only; staff act in their own region (an administrator in any)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.auth import require_role
from api.deps import CfgDep, ClockDep, EngineDep
from api.errors import error_responses
from engine.agencies.providers import record_choice
from engine.persons.reads import get_person
from engine.routes.branches import record_branch_decision
from engine.routes.ipra_plan import apply_replan, replan_preview
from engine.routes.reads import get_route
from models.agencies import AgencyRole
from models.staff import StaffRole, StaffUser

router = APIRouter(prefix="/api", tags=["routes"])

Coordinator = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator,
                                                        StaffRole.admin))]
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
AUTH = error_responses(401, 403, 404, 422)


def _sees(staff: StaffUser, region: str) -> bool:
    return staff.role is StaffRole.admin or staff.region == region


class ReplanOut(BaseModel):
    route_id: str
    applied: bool
    from_ipra: str | None
    to_ipra: str
    added: list[dict[str, Any]]
    cancelled: list[dict[str, Any]]
    redated: list[dict[str, Any]]
    unchanged: list[str]


def _replan(route_id: str, staff: StaffUser, engine: Any, clock: Any, cfg: Any, *,
            apply: bool) -> ReplanOut:
    with Session(engine, expire_on_commit=False) as s:
        route = get_route(s, route_id)
        if route is None or not _sees(staff, route.region):
            raise HTTPException(404, "route_id: no such route")
        if apply:
            diff = apply_replan(s, cfg, route_id=route_id, now=clock.now(),
                                actor=f"staff:{staff.id}")
            s.commit()
        else:
            diff = replan_preview(s, route_id=route_id)
        return ReplanOut(route_id=route_id, applied=apply, **diff.as_dict())


@router.get("/routes/{route_id}/replan", response_model=ReplanOut, responses=AUTH)
def get_replan(route_id: Id, staff: Coordinator, engine: EngineDep, clock: ClockDep,
               cfg: CfgDep) -> Any:
    """What the person's current ИПРА would change in the route — steps added, cancelled
    (their agency told), re-dated — before it is applied (004 п.10 пп.б). Nothing changes."""
    return _replan(route_id, staff, engine, clock, cfg, apply=False)


@router.post("/routes/{route_id}/replan", response_model=ReplanOut, responses=AUTH)
def post_replan(route_id: Id, staff: Coordinator, engine: EngineDep, clock: ClockDep,
                cfg: CfgDep) -> Any:
    """Apply the re-plan: one transaction, audited (``replanned``), in the route's flow run.
    Applying it again changes nothing."""
    return _replan(route_id, staff, engine, clock, cfg, apply=True)


class ProviderChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: AgencyRole = Field(description="the participant role whose provider is chosen")
    agency_id: str = Field(min_length=1, max_length=40)


class ProviderChoiceOut(BaseModel):
    person_id: str
    role: str
    agency_id: str
    chosen_at: datetime


@router.put("/persons/{person_id}/providers", response_model=ProviderChoiceOut,
            responses=error_responses(400, 401, 403, 404, 422))
def put_provider(person_id: Id, body: ProviderChoiceIn, staff: Coordinator,
                 engine: EngineDep, clock: ClockDep) -> Any:
    """Record the person's choice of provider for a role (001 Регламент п.15 пп.2): an
    agency of that role in the person's region; refused (422) naming the field otherwise.
    The role's next requests go to it."""
    with Session(engine, expire_on_commit=False) as s:
        person = get_person(s, person_id)
        if person is None or not _sees(staff, person.region):
            raise HTTPException(404, "person_id: no such person")
        row = record_choice(s, person_id=person_id, role=body.role.value,
                            agency_id=body.agency_id, now=clock.now(),
                            actor=f"staff:{staff.id}")
        s.commit()
        return ProviderChoiceOut(person_id=person_id, role=row.role, agency_id=row.agency_id,
                                 chosen_at=row.chosen_at)


class BranchDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chosen: list[str] = Field(max_length=20, description="the branches the person chose "
                                                         "(e.g. education, employment)")
    assessment: str = Field(min_length=1, max_length=2000,
                            description="the need assessment's conclusion (000 п.10)")


class BranchDecisionOut(BaseModel):
    route_id: str
    chosen: list[str]
    closed: list[str]
    assessment: str
    decided_at: datetime


@router.post("/routes/{route_id}/branches", response_model=BranchDecisionOut,
             responses=error_responses(400, 401, 403, 404, 422))
def post_branches(route_id: Id, body: BranchDecisionIn, staff: Coordinator,
                  engine: EngineDep, clock: ClockDep, cfg: CfgDep) -> Any:
    """Record the route's branch decision — the person's choice together with the need
    assessment's conclusion (000 п.10, п.13–15): the branches not chosen are closed as not
    applicable, the chosen ones open when their turn comes. One transaction, audited
    (``branches_decided``), in the route's flow run. Refused (422) naming the field and the
    rule: two alternatives chosen (employment or social employment), a branch the route's
    template does not have, before the assessment is answered, a second decision, or a
    branch step already open."""
    with Session(engine, expire_on_commit=False) as s:
        route = get_route(s, route_id)
        if route is None or not _sees(staff, route.region):
            raise HTTPException(404, "route_id: no such route")
        decision = record_branch_decision(s, cfg, route_id=route_id, chosen=body.chosen,
                                          assessment=body.assessment, now=clock.now(),
                                          actor=f"staff:{staff.id}")
        s.commit()
        return BranchDecisionOut(**{**decision.as_dict(), "decided_at": decision.decided_at})
