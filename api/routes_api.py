"""Coordinator API: register a person's application, read routes (identifiers only).

The application (298-п Регламент п.14; 363н п.12) starts the route; its first request is
due within 1 working day of registration (298-п Порядок п.10). Staff act only in their own
region (an administrator in any).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field, field_validator
from sqlmodel import Session, col, select

import calendars
from api.auth import require_role
from api.deps import CfgDep, ClockDep, EngineDep
from engine import audit
from engine.routes import NotFoundError, register_application
from models.persons import Person, SnilsError, normalize_snils
from models.routes import Route, Step
from models.staff import StaffRole, StaffUser
from models.templates import TEMPLATES
from models.types import new_id

router = APIRouter(prefix="/api", tags=["routes"])

Staff = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator, StaffRole.supervisor,
                                                  StaffRole.admin))]
Coordinator = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator,
                                                        StaffRole.admin))]


class ApplicationIn(BaseModel):
    """A person's application (the person's data is stored only in our database)."""

    full_name: str = Field(min_length=3, max_length=300)
    snils: str = Field(description="XXX-XXX-XXX YY with a valid check number")
    birth_date: date
    region: str = Field(default=calendars.DEFAULT_REGION, max_length=8)
    representative: str | None = Field(default=None, max_length=300)
    template: str = Field(description=f"one of: {', '.join(sorted(TEMPLATES))}")
    registered_at: datetime | None = Field(
        default=None, description="when the application was registered; default: now")

    @field_validator("snils")
    @classmethod
    def _snils(cls, v: str) -> str:
        try:
            return normalize_snils(v)
        except SnilsError as exc:
            raise ValueError(str(exc).removeprefix("snils: ")) from None

    @field_validator("template")
    @classmethod
    def _template(cls, v: str) -> str:
        if v not in TEMPLATES:
            raise ValueError(f"unknown route template; known: {', '.join(sorted(TEMPLATES))}")
        return v

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, v: date) -> date:
        if v > date.today() or v.year < 1900:
            raise ValueError("must be a real date in the past")
        return v


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


class RoutePublic(BaseModel):
    id: str
    person_id: str
    region: str
    template: str
    status: str
    registered_at: datetime
    prefect_flow_run_id: str | None
    steps: list[StepPublic] = Field(default_factory=list)


def _public(route: Route, steps: list[Step]) -> RoutePublic:
    return RoutePublic(
        id=route.id, person_id=route.person_id, region=route.region, template=route.template,
        status=route.status.value, registered_at=route.registered_at,
        prefect_flow_run_id=route.prefect_flow_run_id,
        steps=[StepPublic(seq=s.seq, kind=s.kind, status=s.status.value, agency_id=s.agency_id,
                          send_by_date=s.send_by_date, answer_by_date=s.answer_by_date,
                          deadline_provisional=s.deadline_provisional,
                          answered_at=s.answered_at, late_working_days=s.late_working_days)
               for s in sorted(steps, key=lambda x: x.seq)],
    )


def _own_region(staff: StaffUser, region: str) -> None:
    if staff.role is not StaffRole.admin and staff.region != region:
        raise HTTPException(403, f"region: you act in region {staff.region}, not {region}")


@router.post("/applications", response_model=RoutePublic, status_code=201)
def register(app_in: ApplicationIn, staff: Coordinator, engine: EngineDep, clock: ClockDep,
             cfg: CfgDep) -> Any:
    """Register an application: the person (if new, by SNILS) and their route."""
    calendars.get_calendar(app_in.region)  # unknown region -> 422 naming it
    _own_region(staff, app_in.region)
    if app_in.registered_at is not None and app_in.registered_at.tzinfo is None:
        raise HTTPException(422, "registered_at: must carry a time zone")
    now = clock.now()
    actor = f"staff:{staff.id}"
    with Session(engine, expire_on_commit=False) as s:
        person = s.exec(select(Person).where(Person.snils == app_in.snils)).first()
        if person is None:
            person = Person(id=new_id("pn"), full_name=app_in.full_name, snils=app_in.snils,
                            birth_date=app_in.birth_date, region=app_in.region,
                            representative=app_in.representative)
            s.add(person)
            s.flush()
            audit.record(s, at=now, actor=actor, entity="person", entity_id=person.id,
                         action="created", after={"region": person.region})
        route = register_application(
            s, cfg, now=now, person_id=person.id, template_code=app_in.template,
            region=app_in.region, registered_at=app_in.registered_at,
            coordinator_id=staff.id if staff.role is StaffRole.coordinator else None,
            actor=actor)
        s.commit()
        steps = list(s.exec(select(Step).where(col(Step.route_id) == route.id)))
        return _public(route, steps)


@router.get("/routes", response_model=list[RoutePublic])
def list_routes(staff: Staff, engine: EngineDep, status: str | None = None,
                limit: int = 100) -> Any:
    """Routes of the caller's region, newest first (identifiers only)."""
    if limit < 1 or limit > 1000:
        raise HTTPException(422, "limit: must be between 1 and 1000")
    with Session(engine) as s:
        q = select(Route).order_by(col(Route.created_at).desc()).limit(limit)
        if staff.role is not StaffRole.admin:
            q = q.where(Route.region == staff.region)
        if status is not None:
            q = q.where(col(Route.status) == status)
        routes = list(s.exec(q))
        steps = list(s.exec(select(Step).where(col(Step.route_id).in_([r.id for r in routes]))))
    by: dict[str, list[Step]] = {}
    for st in steps:
        by.setdefault(st.route_id, []).append(st)
    return [_public(r, by.get(r.id, [])) for r in routes]


@router.get("/routes/{route_id}", response_model=RoutePublic)
def read_route(route_id: str, staff: Staff, engine: EngineDep) -> Any:
    with Session(engine) as s:
        route = s.get(Route, route_id)
        if route is None:
            raise NotFoundError(f"route_id: no route {route_id!r}")
        _own_region(staff, route.region)
        steps = list(s.exec(select(Step).where(col(Step.route_id) == route_id)))
        return _public(route, steps)
