"""Coordinator API: register a person's application, read routes (identifiers only).

The application (298-п Регламент п.14; 363н п.12) starts the route; its first request is
due within 1 working day of registration (298-п Порядок п.10). Staff act only in their own
region (an administrator in any).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

import calendars
from api.auth import require_role
from api.deps import CfgDep, ClockDep, EngineDep
from api.errors import error_responses
from engine.errors import NotFoundError
from engine.persons.applications import PersonConflict, person_for_basic_application
from engine.persons.reads import record_route_reads
from engine.routes.branches import decision_of, pending_branches
from engine.routes.forming import form_route
from engine.routes.ipra_plan import current_ipra
from engine.routes.reads import get_route, routes_newest_first, steps_of, steps_of_routes
from engine.routes.transitions import EngineConfig
from models.basic_application import ApplicationIn, date_problems
from models.routes import Route, RouteStatus, Step
from models.staff import StaffRole, StaffUser

router = APIRouter(prefix="/api", tags=["routes"])

Staff = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator, StaffRole.supervisor,
                                                  StaffRole.admin))]
Coordinator = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator,
                                                        StaffRole.admin))]


class StepPublic(BaseModel):
    seq: int
    kind: str
    status: str
    agency_id: str | None
    send_by_date: date | None
    answer_by_date: date | None
    deadline_provisional: bool
    answered_at: datetime | None
    late_working_days: int | None
    ipra_due_date: date | None = None
    complete_by_date: date | None = None
    complete_by_source: str | None = None


class RoutePublic(BaseModel):
    id: str
    person_id: str
    region: str
    template: str
    status: str
    registered_at: datetime
    prefect_flow_run_id: str | None
    steps: list[StepPublic] = Field(default_factory=list)
    awaiting_branch_decision: list[str] = Field(
        default_factory=list, description="branches the route waits to have decided (000 "
                                          "п.13–15; POST /api/routes/{id}/branches)")
    branch_decision: dict[str, Any] | None = Field(
        default=None, description="the recorded decision: branches chosen, the assessment's "
                                  "conclusion, when and by whom")


def _public(route: Route, steps: list[Step]) -> RoutePublic:
    return RoutePublic(
        id=route.id, person_id=route.person_id, region=route.region, template=route.template,
        status=route.status.value, registered_at=route.registered_at,
        prefect_flow_run_id=route.prefect_flow_run_id,
        awaiting_branch_decision=pending_branches(route),
        branch_decision=decision_of(route),
        steps=[StepPublic(seq=s.seq, kind=s.kind, status=s.status.value, agency_id=s.agency_id,
                          send_by_date=s.send_by_date, answer_by_date=s.answer_by_date,
                          deadline_provisional=s.deadline_provisional,
                          answered_at=s.answered_at, late_working_days=s.late_working_days,
                          ipra_due_date=s.ipra_due_date, complete_by_date=s.complete_by_date,
                          complete_by_source=s.complete_by_source)
               for s in sorted(steps, key=lambda x: x.seq)],
    )


def _own_region(staff: StaffUser, region: str) -> None:
    if staff.role is not StaffRole.admin and staff.region != region:
        raise HTTPException(403, f"region: you act in region {staff.region}, not {region}")


def _check_dates(app_in: ApplicationIn, now: datetime, cfg: EngineConfig) -> None:
    """registered_at not after now (business clock) and inside the production calendar;
    birth_date before the registration day (in the region's time zone)."""
    for field, rule in date_problems(app_in, now, cfg.sender_region):
        raise HTTPException(422, f"{field}: {rule}")


@router.post("/applications", response_model=RoutePublic, status_code=201,
             responses=error_responses(400, 401, 403, 409, 422))
def register(app_in: ApplicationIn, staff: Coordinator, engine: EngineDep, clock: ClockDep,
             cfg: CfgDep) -> Any:
    """Register an application: the person (if new, by SNILS) and their route, formed from
    the newest version of the template's data file (``engine.routes.forming``)."""
    calendars.get_calendar(app_in.region)  # unknown region -> 422 naming it
    _own_region(staff, app_in.region)
    now = clock.now()
    _check_dates(app_in, now, cfg)
    actor = f"staff:{staff.id}"
    with Session(engine, expire_on_commit=False) as s:
        try:
            person = person_for_basic_application(s, app_in, staff, now=now, actor=actor)
        except PersonConflict as exc:
            raise HTTPException(409, str(exc)) from None
        try:
            # the newest data template, its conditions read on the person's ИПРА
            # (engine.routes.forming; 004 п.8, п.10 пп.б)
            route = form_route(
                s, cfg, now=now, person_id=person.id, template_code=app_in.template,
                region=app_in.region, ipra=current_ipra(s, person.id),
                registered_at=app_in.registered_at,
                coordinator_id=staff.id if staff.role is StaffRole.coordinator else None,
                actor=actor, ipra_deadlines=app_in.ipra_deadlines)
        except calendars.CalendarError as exc:  # the region was checked: it is the date
            raise HTTPException(422, f"registered_at: {exc}") from None
        s.commit()
        steps = steps_of(s, route.id)
        return _public(route, steps)


@router.get("/routes", response_model=list[RoutePublic],
            responses=error_responses(401, 403, 422))
def list_routes(staff: Staff, engine: EngineDep, clock: ClockDep,
                status: RouteStatus | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """Routes of the caller's region, newest first (identifiers only; each read audited)."""
    with Session(engine, expire_on_commit=False) as s:
        routes = routes_newest_first(
            s, region=None if staff.role is StaffRole.admin else staff.region,
            status=status, limit=limit)
        steps = steps_of_routes(s, [r.id for r in routes])
        record_route_reads(s, actor=f"staff:{staff.id}", now=clock.now(), what="route",
                           routes=[(r.id, r.person_id) for r in routes])
        s.commit()
    by: dict[str, list[Step]] = {}
    for st in steps:
        by.setdefault(st.route_id, []).append(st)
    return [_public(r, by.get(r.id, [])) for r in routes]


@router.get("/routes/{route_id}", response_model=RoutePublic,
            responses=error_responses(401, 403, 404, 422))
def read_route(route_id: Annotated[str, Path(max_length=40)], staff: Staff,
               engine: EngineDep, clock: ClockDep) -> Any:
    with Session(engine, expire_on_commit=False) as s:
        route = get_route(s, route_id)
        if route is None:
            raise NotFoundError(f"route_id: no route {route_id!r}")
        _own_region(staff, route.region)
        steps = steps_of(s, route_id)
        record_route_reads(s, actor=f"staff:{staff.id}", now=clock.now(), what="route",
                           routes=[(route.id, route.person_id)])
        s.commit()
        return _public(route, steps)
