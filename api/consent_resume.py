"""A new consent after a withdrawal, and resuming a suspended route (152-ФЗ art. 9 ч.1, ч.2;
004 п.11, п.12).

``POST /api/persons/{id}/consent`` records a consent version (the ``ConsentRecord``
component); it makes the person's suspended routes of its purposes resumable and says which.
``POST /api/routes/{id}/resume`` resumes one of them — the coordinator's act on the person's
request (004 п.12), one transaction per route. Staff act in their own region; a person or
route of another region is 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.auth import require_role
from api.deps import CfgDep, ClockDep, EngineDep
from api.errors import ValidationErrorBody
from engine.persons.consent_renewal import ConsentInvalid, give_consent
from engine.persons.reads import get_person
from engine.routes.reads import get_route
from engine.routes.resume import ConsentNotInEffect, NotSuspended, resume_route
from models.staff import StaffRole, StaffUser

router = APIRouter(prefix="/api", tags=["person-file"])

Coordinator = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator,
                                                        StaffRole.admin))]
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "authorization: a staff bearer token is required"},
    403: {"description": "role: not permitted for this role"}}


def _sees(staff: StaffUser, region: str) -> bool:
    return staff.role is StaffRole.admin or staff.region == region


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # validated by the domain layer (every field's message in Russian, all at once)
    consent: dict[str, Any] = Field(description="a ConsentRecord version to append",
                                    json_schema_extra={"x-component": "ConsentRecord"})


class ConsentGivenOut(BaseModel):
    person_id: str
    consent: str
    resumable_routes: list[str]
    applications_unblocked: int
    processing_stopped: bool


@router.post("/persons/{person_id}/consent", response_model=ConsentGivenOut, status_code=201,
             responses={**AUTH, 400: {"description": "body: not valid JSON"},
                        404: {"description": "person_id: not found (or of another region)"},
                        422: {"model": ValidationErrorBody,
                              "description": "every invalid field of the consent; nothing "
                                             "stored"}})
def post_consent(person_id: Id, body: ConsentIn, staff: Coordinator, engine: EngineDep,
                 clock: ClockDep) -> Any:
    """Record a consent (152-ФЗ art. 9 ч.1): a new ``consent_id`` after a withdrawal, or the
    next version of one in effect. Lists the suspended routes it makes resumable; it resumes
    none of them (``POST /api/routes/{id}/resume``)."""
    with Session(engine, expire_on_commit=False) as s:
        p = get_person(s, person_id)
        if p is None or not _sees(staff, p.region):
            raise HTTPException(404, "person_id: no such person")
        try:
            out = give_consent(s, person_id=p.id, raw=body.consent, now=clock.now(),
                               actor=f"staff:{staff.id}")
        except ConsentInvalid as exc:
            s.rollback()
            return JSONResponse({"detail": str(exc), "errors": [
                {"field": e.field, "rule": e.rule, "message": e.message_ru}
                for e in exc.errors]}, status_code=422)
        s.commit()
        return ConsentGivenOut(person_id=out.person_id, consent=out.consent,
                               resumable_routes=out.resumable_routes,
                               applications_unblocked=out.applications_unblocked,
                               processing_stopped=out.processing_stopped)


class ResumedOut(BaseModel):
    route_id: str
    status: str
    steps: list[str]
    requests_resent: list[str]
    timers_armed: int


@router.post("/routes/{route_id}/resume", response_model=ResumedOut,
             responses={**AUTH,
                        404: {"description": "route_id: not found (or of another region)"},
                        409: {"description": "route: not suspended; or consent: no consent in "
                                             "effect for the route's purpose"}})
def post_resume(route_id: Id, staff: Coordinator, engine: EngineDep, clock: ClockDep,
                cfg: CfgDep) -> Any:
    """Resume a suspended route on the person's request (004 п.11, п.12): each open step
    continues with the working days it had left; its withdrawn request goes out again with
    its own idempotency key. Needs a consent in effect (152-ФЗ art. 9 ч.1). Audited."""
    with Session(engine, expire_on_commit=False) as s:
        route = get_route(s, route_id)
        if route is None or not _sees(staff, route.region):
            raise HTTPException(404, "route_id: no such route")
        try:
            out = resume_route(s, cfg, route_id=route.id, now=clock.now(),
                               actor=f"staff:{staff.id}")
        except (NotSuspended, ConsentNotInEffect) as exc:
            s.rollback()
            raise HTTPException(409, str(exc)) from None
        s.commit()
        return ResumedOut(route_id=out.route_id, status="active", steps=out.steps,
                          requests_resent=out.requests_resent, timers_armed=out.timers_armed)
