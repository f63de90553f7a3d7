"""Coordinator API: register applications, read routes (identifiers only)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from engine.routes import NotFoundError
from models.routes import Route, Step

router = APIRouter(prefix="/api/routes", tags=["routes"])


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
    region: str
    template: str
    status: str
    registered_at: datetime
    prefect_flow_run_id: str | None
    steps: list[StepPublic] = Field(default_factory=list)


def _public(route: Route, steps: list[Step]) -> RoutePublic:
    return RoutePublic(
        id=route.id, region=route.region, template=route.template, status=route.status.value,
        registered_at=route.registered_at, prefect_flow_run_id=route.prefect_flow_run_id,
        steps=[StepPublic(seq=s.seq, kind=s.kind, status=s.status.value, agency_id=s.agency_id,
                          send_by_date=s.send_by_date, answer_by_date=s.answer_by_date,
                          deadline_provisional=s.deadline_provisional,
                          answered_at=s.answered_at, late_working_days=s.late_working_days)
               for s in sorted(steps, key=lambda x: x.seq)],
    )


@router.get("/{route_id}", response_model=RoutePublic)
def read_route(route_id: str, request: Request) -> Any:
    with Session(request.app.state.engine) as s:
        route = s.get(Route, route_id)
        if route is None:
            raise NotFoundError(f"route_id: no route {route_id!r}")
        steps = list(s.exec(select(Step).where(col(Step.route_id) == route_id)))
        return _public(route, steps)
