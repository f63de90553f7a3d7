"""The route's life (004 п.11–13) and a request's receipt (298-п Порядок п.11), for a
coordinator acting on the person's application or recording a paper delivery.

- ``POST /api/routes/{id}/refuse`` — the person refuses one participant's accompaniment
  (``agency_id``) or all of it (``agency_id`` null) on an application of
  ``application_date`` (004 п.11, п.12): the affected steps pause.
- ``POST /api/routes/{id}/resume-participant`` — the person resumes it: the paused steps go
  on with the working days they had left.
- ``POST /api/routes/{id}/terminate`` — the person's application to stop (004 п.13 б).
- ``POST /api/requests/{id}/receipt`` — staff record that a paper request was delivered
  (``received_at``, default now): its answer period starts (298-п Порядок п.11).

Each is one transaction, audited, mirrored. Staff act in their own region (an
administrator in any); a route or request of another region is 404. A refusal names the
field and the rule (422) and changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.auth import require_role
from api.deps import CfgDep, ClockDep, EngineDep
from api.errors import error_responses
from engine.routes.reads import get_route
from engine.routes.receipt import confirm_receipt, route_of_request
from engine.routes.refusal import refuse_participant, resume_participant
from engine.routes.termination import terminate_on_application
from models.routes import Route
from models.staff import StaffRole, StaffUser

router = APIRouter(prefix="/api", tags=["route-life"])

Coordinator = Annotated[StaffUser, Depends(require_role(StaffRole.coordinator,
                                                        StaffRole.admin))]
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
RESPONSES = error_responses(400, 401, 403, 404, 422)


def _route(s: Session, staff: StaffUser, route_id: str) -> Route:
    route = get_route(s, route_id)
    if route is None or not (staff.role is StaffRole.admin or staff.region == route.region):
        raise HTTPException(404, "route_id: no such route")
    return route


def _actor(staff: StaffUser) -> str:
    return f"staff:{staff.id}"


class ParticipantApplication(BaseModel):
    """The person's application to refuse or resume accompaniment (004 п.11, п.12)."""

    model_config = ConfigDict(extra="forbid")

    agency_id: str | None = Field(default=None, min_length=1, max_length=40,
                                  description="the participant; null: every participant")
    application_date: date = Field(description="the date of the person's application")


class RefusedOut(BaseModel):
    route_id: str
    refusal_id: int
    agency_id: str | None
    steps_paused: list[str]
    cancel_notices: int
    timers_cancelled: int


class ParticipantResumedOut(BaseModel):
    route_id: str
    steps: list[str]
    requests_resent: list[str]
    timers_armed: int


class StopApplication(BaseModel):
    """The person's application to stop accompaniment (004 п.13 б)."""

    model_config = ConfigDict(extra="forbid")

    application_date: date = Field(description="the date of the person's application")


class TerminatedOut(BaseModel):
    route_id: str
    status: str
    reason: str
    steps_cancelled: list[str]
    cancel_notices: int
    timers_cancelled: int


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    received_at: AwareDatetime | None = Field(
        default=None, description="when the agency received the paper request; default now")


class ReceiptOut(BaseModel):
    request_id: str
    recorded: bool
    answer_by_date: str | None


@router.post("/routes/{route_id}/refuse", response_model=RefusedOut, responses=RESPONSES)
def post_refuse(route_id: Id, body: ParticipantApplication, staff: Coordinator,
                engine: EngineDep, clock: ClockDep, cfg: CfgDep) -> Any:
    """The person refuses a participant's accompaniment, or all of it (004 п.11): the
    affected steps pause, their agencies get a cancel notice, their timers stop. Only
    during the ИПРА's term."""
    with Session(engine, expire_on_commit=False) as s:
        route = _route(s, staff, route_id)
        out = refuse_participant(s, cfg, route_id=route.id, agency_id=body.agency_id,
                                 application_date=body.application_date, now=clock.now(),
                                 actor=_actor(staff))
        s.commit()
        return RefusedOut(route_id=out.route_id, refusal_id=out.refusal_id,
                          agency_id=out.agency_id, steps_paused=out.steps,
                          cancel_notices=len(out.cancel_notices),
                          timers_cancelled=out.timers_cancelled)


@router.post("/routes/{route_id}/resume-participant", response_model=ParticipantResumedOut,
             responses=RESPONSES)
def post_resume_participant(route_id: Id, body: ParticipantApplication, staff: Coordinator,
                            engine: EngineDep, clock: ClockDep, cfg: CfgDep) -> Any:
    """The person resumes a participant's accompaniment, or all of it (004 п.11): each
    paused step goes on with the working days it had left; its request is sent again under
    its own idempotency key."""
    with Session(engine, expire_on_commit=False) as s:
        route = _route(s, staff, route_id)
        out = resume_participant(s, cfg, route_id=route.id, agency_id=body.agency_id,
                                 application_date=body.application_date, now=clock.now(),
                                 actor=_actor(staff))
        s.commit()
        return ParticipantResumedOut(route_id=out.route_id, steps=out.steps,
                                     requests_resent=out.requests_resent,
                                     timers_armed=out.timers_armed)


@router.post("/routes/{route_id}/terminate", response_model=TerminatedOut,
             responses=RESPONSES)
def post_terminate(route_id: Id, body: StopApplication, staff: Coordinator,
                   engine: EngineDep, clock: ClockDep, cfg: CfgDep) -> Any:
    """The person's application to stop accompaniment (004 п.13 б): open requests withdrawn
    with notice, timers dropped, the route ``terminated`` (reason ``person_request``)."""
    with Session(engine, expire_on_commit=False) as s:
        route = _route(s, staff, route_id)
        out = terminate_on_application(s, cfg, route_id=route.id,
                                       application_date=body.application_date,
                                       now=clock.now(), actor=_actor(staff))
        s.commit()
        return TerminatedOut(route_id=out.route_id, status="terminated",
                             reason=out.reason.value, steps_cancelled=out.steps_cancelled,
                             cancel_notices=len(out.cancel_notices),
                             timers_cancelled=out.timers_cancelled)


@router.post("/requests/{request_id}/receipt", response_model=ReceiptOut,
             responses=RESPONSES)
def post_receipt(request_id: Id, body: ReceiptIn, staff: Coordinator, engine: EngineDep,
                 clock: ClockDep, cfg: CfgDep) -> Any:
    """Staff record that a paper request was delivered to its agency (298-п Порядок п.11:
    the answer period runs from receipt; Регламент п.13: paper exchange)."""
    with Session(engine, expire_on_commit=False) as s:
        route = route_of_request(s, request_id)
        if route is None or not (staff.role is StaffRole.admin
                                 or staff.region == route.region):
            raise HTTPException(404, "request_id: no such request")
        received: datetime | None = body.received_at
        out = confirm_receipt(s, cfg, request_id=request_id, now=clock.now(),
                              actor=_actor(staff), received_at=received)
        s.commit()
        return ReceiptOut(request_id=out.request_id, recorded=out.recorded,
                          answer_by_date=out.answer_by_date)
