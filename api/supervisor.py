"""The supervisor's HTTP API over the escalation ladder, and a route's history.

The Ministry of Social Policy controls interagency interaction (298-п Порядок п.13,
Регламент п.17). Errors: 401 no/unknown token, 403 role or another region, 404 unknown
thing, 409 the action does not apply to its state, 422 a field breaks its rule; the body's
``detail`` names the field and the rule, and nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from api.auth import CurrentStaff, require_role
from api.deps import CfgDep, ClockDep, EngineDep, SessionDep
from api.errors import error_responses
from engine.errors import EngineError, NotFoundError
from engine.infra import queue
from engine.supervisor import actions as sv
from models.jobs import JobKind
from models.staff import StaffRole
from models.text import VISIBLE_PATTERN

MAX_DB_INT = 2**31 - 1  # integer ids are 32-bit on PostgreSQL
EscalationId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
StepId = Annotated[str, Path(max_length=40)]
RouteId = Annotated[str, Path(max_length=40)]
# the reason of an action: 1-2000 characters with at least one visible one
Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=VISIBLE_PATTERN,
                              description="why (required): 1-2000 characters, not blank")]
_ACTION_ERRORS = error_responses(400, 401, 403, 404, 409, 422)

router = APIRouter(prefix="/api/supervisor", tags=["supervisor"],
                   dependencies=[Depends(require_role(StaffRole.supervisor, StaffRole.admin))])
history_router = APIRouter(prefix="/api/routes", tags=["routes"])


@contextmanager
def _http_errors() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except sv.ForbiddenError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except sv.ConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except (EngineError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


# Escalation as listed to a supervisor.
class EscalationOut(BaseModel):
    id: int
    level: int
    level_name: str
    status: str
    route_id: str
    step_id: str
    step_kind: str
    region: str
    agency_id: str | None
    deadline_kind: str  # send_by, answer_by, complete_by
    deadline: date
    deadline_version: int
    cause: str | None  # why it was opened, e.g. "agency refused the request: HTTP 400 ..."
    age_working_days: int
    opened_at: datetime
    acknowledged_by: str | None
    resolution: str | None


class AcknowledgeIn(BaseModel):
    reason: Reason


class ExtendIn(BaseModel):
    days: int = Field(ge=1, le=250, description="working days to add (1-250)")
    reason: Reason


class ReassignIn(BaseModel):
    agency_id: str = Field(min_length=1, max_length=40)
    reason: Reason


class CloseIn(BaseModel):
    reason: Reason
    cancel_route: bool = False


class ActionOut(BaseModel):
    ok: bool = True
    step_id: str | None = None
    escalation_id: int | None = None
    detail: dict[str, Any] = {}


@router.get("/escalations", response_model=list[EscalationOut],
            responses=error_responses(401, 403, 422))
def list_escalations(
    session: SessionDep, clock: ClockDep, staff: CurrentStaff,
    level: int | None = Query(None, ge=0, le=2,
                              description="0 reminder, 1 overdue, 2 escalated"),
    status_: Literal["open", "acknowledged", "resolved", "closed", "all"] | None = Query(
        None, alias="status", description="open+acknowledged by default; 'all'"),
    agency_id: str | None = Query(None, max_length=40),
    region: str | None = Query(None, max_length=8),
    min_age_days: int | None = Query(None, ge=0, le=10_000,
                                     description="working days past deadline"),
    sort: Literal["-age", "age", "-level", "level", "-opened_at", "opened_at"] = Query(
        "-age", description="age, level, opened_at; '-' for descending"),
) -> list[EscalationOut]:
    with _http_errors():
        rows = sv.list_escalations(session, staff=staff, now=clock.now(), level=level,
                                   status=status_, agency_id=agency_id, region=region,
                                   min_age_days=min_age_days, sort=sort)
    return [EscalationOut(**r.__dict__) for r in rows]


class JobOut(BaseModel):
    """A job of the engine's queue (identifiers only: a kind and the id it works on)."""

    id: int
    kind: str  # send_request, send_cancel, apply_answer, mirror_route, send_notification
    ref: str  # request id, notice id, answer id, route id or notification id
    state: str  # dead
    attempts: int
    due_at: datetime
    dead_at: datetime | None
    locked_by: str | None
    last_error: str | None


@router.get("/jobs/dead", response_model=list[JobOut], responses=error_responses(401, 403, 422))
def list_dead_jobs(
    engine: EngineDep,
    kind: JobKind | None = Query(None, description="only jobs of this kind"),
    limit: int = Query(100, ge=1, le=1000, description="at most this many, newest first"),
) -> list[JobOut]:
    """Jobs retried past ``job_max_attempts``: no longer retried until a person retries them
    (``rehab jobs retry ID``). A dead ``send_request`` leaves its step's send-by ladder
    running, so the step escalates as well (298-п Порядок п.10, п.13)."""
    return [JobOut.model_validate(j.as_dict())
            for j in queue.list_jobs(engine, dead=True, kind=kind, limit=limit)]


@router.post("/escalations/{escalation_id}/acknowledge", response_model=ActionOut,
             responses=_ACTION_ERRORS)
def acknowledge(escalation_id: EscalationId, body: AcknowledgeIn, session: SessionDep,
                clock: ClockDep,
                staff: CurrentStaff) -> ActionOut:
    with _http_errors():
        esc = sv.acknowledge(session, staff=staff, escalation_id=escalation_id,
                             now=clock.now(), reason=body.reason)
        session.commit()
    return ActionOut(escalation_id=esc.id, step_id=esc.step_id,
                     detail={"status": esc.status.value})


@router.post("/steps/{step_id}/extend", response_model=ActionOut,
             responses=_ACTION_ERRORS)
def extend(step_id: StepId, body: ExtendIn, session: SessionDep, clock: ClockDep, cfg: CfgDep,
           staff: CurrentStaff) -> ActionOut:
    with _http_errors():
        new = sv.extend_deadline(session, cfg, staff=staff, step_id=step_id, days=body.days,
                                 reason=body.reason, now=clock.now())
        session.commit()
    return ActionOut(step_id=step_id, detail={"due_date": new.due_date.isoformat(),
                                              "due_at": new.due_at.isoformat(),
                                              "provisional": new.provisional})


@router.post("/steps/{step_id}/reassign", response_model=ActionOut,
             responses=_ACTION_ERRORS)
def reassign(step_id: StepId, body: ReassignIn, session: SessionDep, clock: ClockDep,
             cfg: CfgDep, staff: CurrentStaff) -> ActionOut:
    with _http_errors():
        req = sv.reassign_step(session, cfg, staff=staff, step_id=step_id,
                               agency_id=body.agency_id, reason=body.reason, now=clock.now())
        session.commit()
    return ActionOut(step_id=step_id, detail={"agency_id": req.agency_id, "request_id": req.id})


@router.post("/steps/{step_id}/close", response_model=ActionOut,
             responses=_ACTION_ERRORS)
def close(step_id: StepId, body: CloseIn, session: SessionDep, clock: ClockDep, cfg: CfgDep,
          staff: CurrentStaff) -> ActionOut:
    with _http_errors():
        step = sv.close_step(session, cfg, staff=staff, step_id=step_id, reason=body.reason,
                             now=clock.now(), cancel_route=body.cancel_route)
        session.commit()
    return ActionOut(step_id=step.id, detail={"status": step.status.value,
                                              "route_cancelled": body.cancel_route})


# One audit record of a route's history.
class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None


@history_router.get("/{route_id}/history", response_model=list[AuditOut],
                    responses=error_responses(401, 403, 404, 422))
def route_history(route_id: RouteId, session: SessionDep, clock: ClockDep,
                  staff: CurrentStaff) -> list[AuditOut]:
    """The route's full audit history in order (the read is logged, 152-ФЗ)."""
    with _http_errors():
        rows = sv.route_history(session, staff=staff, route_id=route_id, now=clock.now())
        session.commit()
    return [AuditOut(id=r.id or 0, at=r.at, actor=r.actor, entity=r.entity,
                     entity_id=r.entity_id, action=r.action, before=r.before, after=r.after,
                     reason=r.reason) for r in rows]
