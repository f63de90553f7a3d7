"""Coordinator API: register a person's application, read routes (identifiers only).

The application (298-п Регламент п.14; 363н п.12) starts the route; its first request is
due within 1 working day of registration (298-п Порядок п.10). Staff act only in their own
region (an administrator in any).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import pendulum
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

import calendars
from api.auth import require_role
from api.deps import CfgDep, ClockDep, EngineDep
from engine import audit
from engine.person_reads import record_route_reads
from engine.routes import EngineConfig, NotFoundError, register_application
from models.persons import Person, SnilsError, normalize_snils
from models.routes import Route, RouteStatus, Step
from models.staff import StaffRole, StaffUser
from models.templates import TEMPLATES
from models.types import new_id

router = APIRouter(prefix="/api", tags=["routes"])

Staff = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator, StaffRole.supervisor,
                                                  StaffRole.admin))]
Coordinator = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator,
                                                        StaffRole.admin))]


class ApplicationIn(BaseModel):
    """A person's application (the person's data is stored only in our database).

    Unknown fields are refused; text is stripped before its length is checked.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str = Field(min_length=3, max_length=300,
                           description="3-300 characters with letters (spaces are trimmed)")
    snils: str = Field(description="XXX-XXX-XXX YY with a valid check number")
    birth_date: date = Field(description="before the day of registration")
    region: str = Field(default=calendars.DEFAULT_REGION, max_length=8)
    representative: str | None = Field(default=None, max_length=300)
    template: str = Field(description=f"one of: {', '.join(sorted(TEMPLATES))}")
    registered_at: datetime | None = Field(
        default=None, description="when the application was registered, with a time zone; "
        "not later than now (business clock); default: now")
    ipra_deadlines: dict[str, date] | None = Field(
        default=None, description="per step kind of the template, the execution deadline "
        "(«срок исполнения») of the ИПРА measure that step carries out (545н), YYYY-MM-DD, "
        "not before the registration day; the step is overdue when not done by then")

    @field_validator("full_name")
    @classmethod
    def _full_name(cls, v: str) -> str:
        if not any(ch.isalpha() for ch in v):
            raise ValueError("must contain letters")
        return " ".join(v.split())

    @field_validator("representative")
    @classmethod
    def _representative(cls, v: str | None) -> str | None:
        return (" ".join(v.split()) or None) if v is not None else None

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
        # compared with the registration date (business clock) in the handler
        if v.year < 1900:
            raise ValueError("must be a real date (year 1900 or later)")
        return v

    @field_validator("registered_at")
    @classmethod
    def _registered_at(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-01-12T10:00:00+02:00")
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


def _public(route: Route, steps: list[Step]) -> RoutePublic:
    return RoutePublic(
        id=route.id, person_id=route.person_id, region=route.region, template=route.template,
        status=route.status.value, registered_at=route.registered_at,
        prefect_flow_run_id=route.prefect_flow_run_id,
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


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold().replace("ё", "е") == \
        " ".join(b.split()).casefold().replace("ё", "е")


def _check_dates(app_in: ApplicationIn, now: datetime, cfg: EngineConfig) -> None:
    """registered_at not after now (business clock) and inside the production calendar;
    birth_date before the registration day (in the region's time zone)."""
    reg = app_in.registered_at or now
    if reg > now:
        raise HTTPException(422, "registered_at: must not be later than now (business clock "
                                 f"{now.isoformat()})")
    try:
        # the first request's send-by deadline (298-п п.10) must be computable
        calendars.deadline(reg, 1, cfg.sender_region)
        tz = calendars.get_calendar(app_in.region).timezone
    except calendars.CalendarError as exc:
        raise HTTPException(422, f"registered_at: {exc}") from None
    reg_day = pendulum.instance(reg).in_timezone(tz).date()
    if app_in.birth_date >= reg_day:
        raise HTTPException(422, "birth_date: must be before the registration date "
                                 f"({reg_day.isoformat()})")


def _find_person(s: Session, snils: str) -> Person | None:
    return s.exec(select(Person).where(Person.snils == snils)).first()


def _person_for(s: Session, app_in: ApplicationIn, *, now: datetime, actor: str) -> Person:
    """The person with this SNILS, created if new. The same SNILS with another name or
    birth date is a conflict (409), never a silent merge. Two registrations of the same new
    person at once create one person: SNILS is unique, the loser re-reads the winner's."""
    person = _find_person(s, app_in.snils)
    if person is None:
        candidate = Person(id=new_id("pn"), full_name=app_in.full_name, snils=app_in.snils,
                           birth_date=app_in.birth_date, region=app_in.region,
                           representative=app_in.representative)
        try:
            with s.begin_nested():
                s.add(candidate)
                s.flush()
        except IntegrityError:
            # a concurrent registration created them meanwhile
            person = s.exec(select(Person).where(Person.snils == app_in.snils)).first()
            if person is None:
                raise
        else:
            audit.record(s, at=now, actor=actor, entity="person", entity_id=candidate.id,
                         action="created", after={"region": candidate.region})
            return candidate
    if not _same_name(person.full_name, app_in.full_name) or \
            person.birth_date != app_in.birth_date:
        raise HTTPException(409, "snils: already registered for a person with another "
                                 "full_name or birth_date; check the data")
    return person


@router.post("/applications", response_model=RoutePublic, status_code=201,
             responses={400: {"description": "body: not valid JSON"},
                        409: {"description": "snils: registered with other data"},
                        422: {"description": "'<field>: <rule>'"}})
def register(app_in: ApplicationIn, staff: Coordinator, engine: EngineDep, clock: ClockDep,
             cfg: CfgDep) -> Any:
    """Register an application: the person (if new, by SNILS) and their route."""
    calendars.get_calendar(app_in.region)  # unknown region -> 422 naming it
    _own_region(staff, app_in.region)
    now = clock.now()
    _check_dates(app_in, now, cfg)
    actor = f"staff:{staff.id}"
    with Session(engine, expire_on_commit=False) as s:
        person = _person_for(s, app_in, now=now, actor=actor)
        try:
            route = register_application(
                s, cfg, now=now, person_id=person.id, template_code=app_in.template,
                region=app_in.region, registered_at=app_in.registered_at,
                coordinator_id=staff.id if staff.role is StaffRole.coordinator else None,
                actor=actor, ipra_deadlines=app_in.ipra_deadlines)
        except calendars.CalendarError as exc:  # the region was checked: it is the date
            raise HTTPException(422, f"registered_at: {exc}") from None
        s.commit()
        steps = list(s.exec(select(Step).where(col(Step.route_id) == route.id)))
        return _public(route, steps)


@router.get("/routes", response_model=list[RoutePublic])
def list_routes(staff: Staff, engine: EngineDep, clock: ClockDep,
                status: RouteStatus | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """Routes of the caller's region, newest first (identifiers only; each read audited)."""
    with Session(engine, expire_on_commit=False) as s:
        q = select(Route).order_by(col(Route.created_at).desc()).limit(limit)
        if staff.role is not StaffRole.admin:
            q = q.where(Route.region == staff.region)
        if status is not None:
            q = q.where(col(Route.status) == status)
        routes = list(s.exec(q))
        steps = list(s.exec(select(Step).where(col(Step.route_id).in_([r.id for r in routes]))))
        record_route_reads(s, actor=f"staff:{staff.id}", now=clock.now(), what="route",
                           routes=[(r.id, r.person_id) for r in routes])
        s.commit()
    by: dict[str, list[Step]] = {}
    for st in steps:
        by.setdefault(st.route_id, []).append(st)
    return [_public(r, by.get(r.id, [])) for r in routes]


@router.get("/routes/{route_id}", response_model=RoutePublic)
def read_route(route_id: str, staff: Staff, engine: EngineDep, clock: ClockDep) -> Any:
    with Session(engine, expire_on_commit=False) as s:
        route = s.get(Route, route_id)
        if route is None:
            raise NotFoundError(f"route_id: no route {route_id!r}")
        _own_region(staff, route.region)
        steps = list(s.exec(select(Step).where(col(Step.route_id) == route_id)))
        record_route_reads(s, actor=f"staff:{staff.id}", now=clock.now(), what="route",
                           routes=[(route.id, route.person_id)])
        s.commit()
        return _public(route, steps)
