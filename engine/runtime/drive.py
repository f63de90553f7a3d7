"""Running one route's due work by hand (the ``rehabilitation-route`` flow's body)."""

from __future__ import annotations

import asyncio

from sqlmodel import Session, col, select

from engine.errors import NotFoundError
from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.infra.settings import get_settings
from engine.routes.transitions import EngineConfig
from engine.runtime.worker import Worker
from models.agencies import AgencyAnswer, AgencyRequest
from models.routes import Route, Step


def route_job_refs(session: Session, route_id: str) -> list[str]:
    """The refs of every job that may concern the route."""
    step_ids = list(session.exec(select(Step.id).where(Step.route_id == route_id)))
    req_ids = list(session.exec(
        select(AgencyRequest.id).where(col(AgencyRequest.step_id).in_(step_ids))))
    ans_ids = [str(a) for a in session.exec(
        select(AgencyAnswer.id).where(col(AgencyAnswer.request_id).in_(req_ids)))]
    return [route_id, *req_ids, *ans_ids]


def drive_route(route_id: str) -> str:
    """Do the route's due jobs now; return its status."""
    settings = get_settings()
    engine = make_engine()
    with Session(engine) as s:
        if s.get(Route, route_id) is None:
            raise NotFoundError(f"route_id: no route {route_id!r}")

    async def go() -> None:
        async with Worker(engine, DbClock(engine), EngineConfig.from_settings(settings),
                          settings, worker_id=f"drive-{route_id}") as w:
            while True:  # each pass may create the route's next jobs (a new request)
                with Session(engine) as s:
                    refs = route_job_refs(s, route_id)
                if not await w.run_once(refs=refs):
                    return

    asyncio.run(go())
    with Session(engine) as s:
        route = s.get(Route, route_id)
        assert route is not None
        return route.status.value
