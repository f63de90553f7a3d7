"""The product's HTTP application: agency webhooks, coordinator/supervisor API, pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

import calendars
from api import pages, webhooks
from api.answer_writer import AnswerWriter
from engine.clock import DbClock
from engine.routes import EngineConfig, EngineError, NotFoundError
from engine.settings import Settings, get_settings

DESCRIPTION = """
Orchestration of individual rehabilitation routes (363н п.10б; 298-п п.9–п.13).

**Agencies** answer interagency requests at `POST /webhooks/agencies/{agency_id}` with
Standard Webhooks signatures — see `docs/agencies.md` for a signed example.
"""


class ClockMove(BaseModel):
    working_days: int | None = Field(default=None, description="advance N working days")
    seconds: float | None = Field(default=None, ge=0, description="advance N seconds")
    region: str = calendars.DEFAULT_REGION


def create_app(engine: Engine | None = None, *, settings: Settings | None = None,
               clock: DbClock | None = None) -> FastAPI:
    """Build the app on ``engine`` (default: the settings' database)."""
    from engine.db import make_engine

    settings = settings or get_settings()
    engine = engine or make_engine()
    app = FastAPI(title="Rehabilitation routes", version="0.1.0", description=DESCRIPTION)
    app.state.settings = settings
    app.state.engine = engine
    app.state.clock = clock or DbClock(engine)
    app.state.cfg = EngineConfig.from_settings(settings)
    app.state.read_engine = (
        make_engine(engine.url.render_as_string(hide_password=False), read_only=True)
        if engine.dialect.name == "sqlite" else engine
    )
    app.state.answer_writer = AnswerWriter(engine, app.state.clock)
    app.include_router(webhooks.router)
    app.include_router(pages.router)
    _include_routers(app)

    @app.exception_handler(EngineError)
    async def _engine_error(_: Request, exc: EngineError) -> JSONResponse:
        code = 404 if isinstance(exc, NotFoundError) else 422
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 whose ``detail`` names the field and the rule, e.g. ``body.snils: ...``."""
        errors = exc.errors()
        parts = []
        for e in errors:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts),
                             "errors": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(calendars.CalendarError)
    async def _calendar_error(_: Request, exc: calendars.CalendarError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/clock", tags=["ops"])
    def read_clock() -> dict[str, Any]:
        now = app.state.clock.now()
        return {"now": now.isoformat()}

    if settings.allow_clock_control:
        @app.post("/api/clock/advance", tags=["ops"])
        def advance_clock(move: ClockMove) -> dict[str, Any]:
            if move.working_days is None and move.seconds is None:
                raise HTTPException(422, "working_days: give working_days or seconds")
            c: DbClock = app.state.clock
            if move.working_days is not None:
                now = c.advance_working_days(move.working_days, move.region)
            else:
                now = c.advance(timedelta(seconds=move.seconds or 0))
            return {"now": now.isoformat()}

    return app


def _include_routers(app: FastAPI) -> None:
    """Routers of the route API and the supervisor's API."""
    from api import routes_api, supervisor

    app.include_router(routes_api.router)
    app.include_router(supervisor.router)
    app.include_router(supervisor.history_router)
