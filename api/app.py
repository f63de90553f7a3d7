"""The product's HTTP application: agency webhooks, coordinator/supervisor API, pages."""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Annotated, Any

import pendulum
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

import calendars
from api import (
    consent_resume,
    health,
    person_file,
    route_life,
    route_plan,
    routes_api,
    supervisor,
    web,
    webhooks,
)
from api.access_log import AccessLog
from api.answer_writer import AnswerWriter
from api.auth import require_admin
from api.errors import error_responses, openapi
from api.web import errors as page_errors
from engine.errors import EngineError, NotFoundError
from engine.infra import audit
from engine.infra.clock import Clock, DbClock, make_clock
from engine.infra.db import make_engine, set_write_priority
from engine.infra.settings import Settings, get_settings
from engine.routes.transitions import EngineConfig
from models.application import Application
from models.consent import ConsentRecord
from models.ipra import IpraExtract

DESCRIPTION = """
Orchestration of individual rehabilitation routes (363н п.10б; 298-п п.9–п.13).

**Agencies** answer interagency requests at `POST /webhooks/agencies/{agency_id}` with
Standard Webhooks signatures — see `docs/agencies.md` for a signed example.
"""


MAX_CLOCK_SECONDS = 730 * 86_400  # one move: at most two years, like 500 working days
# business time stays where deadlines can still be counted: this many working days before
# the end of the production calendars (calendars.MAX_YEAR)
CLOCK_MARGIN_WORKING_DAYS = 60


class ClockMove(BaseModel):
    """Move business time forward (demo, tests): give exactly one of working_days or seconds
    (the other absent or null). Business time never moves past the production calendars
    (it stays 60 working days before their end)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["working_days"],
         "properties": {"working_days": {"type": "integer"}, "seconds": {"type": "null"}}},
        {"required": ["seconds"],
         "properties": {"seconds": {"type": "number"}, "working_days": {"type": "null"}}},
    ]})

    working_days: int | None = Field(default=None, ge=0, le=500,
                                     description="advance N working days (0 <= N <= 500)")
    seconds: float | None = Field(default=None, ge=0, le=MAX_CLOCK_SECONDS,
                                  allow_inf_nan=False,
                                  description=f"advance N seconds (0 <= N <= {MAX_CLOCK_SECONDS})")
    region: str = Field(default=calendars.DEFAULT_REGION, max_length=8,
                        description="whose production calendar counts the working days")


# ctx keys of pydantic errors that state the rule (never the input)
_SAFE_CTX = {"min_length", "max_length", "ge", "gt", "le", "lt", "multiple_of", "expected",
             "pattern", "max_digits", "decimal_places"}


def _error_location(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def public_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors without what they would echo of the input (152-ФЗ: a SNILS or a
    name sent in a bad request must not come back in the reply or land in a log): the
    field, the rule and the type only."""
    out: list[dict[str, Any]] = []
    for e in errors:
        item: dict[str, Any] = {"loc": [str(p) for p in e.get("loc", ())],
                                "msg": str(e.get("msg", "invalid")),
                                "type": str(e.get("type", "value_error"))}
        ctx = e.get("ctx") or {}
        inp = e.get("input")
        safe = {k: v for k, v in ctx.items() if k in _SAFE_CTX
                and isinstance(v, str | int | float | bool) and v != inp
                and not (isinstance(v, str) and isinstance(inp, str) and inp and inp in v)}
        if safe:
            item["ctx"] = safe
        out.append(item)
    return out


def _rule(e: Mapping[str, Any]) -> str:
    if e.get("type") == "extra_forbidden":
        return "unknown field (not permitted)"
    return str(e.get("msg", "invalid"))


class UnknownQueryParameter(HTTPException):
    """422 for a query parameter the operation does not take; ``field`` names it."""

    def __init__(self, field: str) -> None:
        self.field = field[:40]
        super().__init__(422, f"{self.field}: unknown query parameter (not permitted)")


def reject_unknown_query(request: Request) -> None:
    """A query parameter the operation does not take is refused (422 naming it), as unknown
    body fields are: a misspelt filter must not silently list everything."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = {p.alias for p in _query_params(dependant)}
    unknown = sorted(k for k in request.query_params if k not in known)
    if unknown:
        raise UnknownQueryParameter(unknown[0])


def _query_params(dependant: Any) -> list[Any]:
    out = list(dependant.query_params)
    for sub in dependant.dependencies:
        out.extend(_query_params(sub))
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal in the ``{"detail": "<field>: <rule>"}`` shape (api/errors.py); on the
    people's pages the same refusals as Russian HTML pages (``api/web/errors.py``)."""

    @app.exception_handler(EngineError)
    async def _engine_error(request: Request, exc: EngineError) -> Response:
        if page_errors.is_page_path(request.url.path):
            return page_errors.engine_error(exc)
        code = 404 if isinstance(exc, NotFoundError) else 422
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        """422 whose ``detail`` names the field and the rule, e.g. ``snils: ...``; a body
        that is not JSON gets 400 ``body: not valid JSON`` (as the agency webhook). The
        input is never echoed back (it may be personal data)."""
        errors = exc.errors()
        if page_errors.is_page_path(request.url.path):
            return page_errors.validation_error(errors)
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "body: not valid JSON"}, status_code=400)
        parts = [f"{_error_location(e.get('loc', ()))}: {_rule(e)}" for e in errors]
        return JSONResponse({"detail": "; ".join(parts),
                             "errors": jsonable_encoder(public_errors(errors))},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """FastAPI's own 400 for a body it cannot decode (e.g. not UTF-8) says the same as
        the JSON decode error: ``body: not valid JSON``. A page's miss (no such page, an
        unknown query parameter) is a Russian page."""
        if page_errors.is_page_path(request.url.path):
            if isinstance(exc, UnknownQueryParameter):
                return page_errors.unknown_parameter(exc.field)
            return page_errors.http_error(exc.status_code, exc.headers)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return JSONResponse({"detail": "body: not valid JSON"}, status_code=400)
        return await http_exception_handler(request, exc)

    @app.exception_handler(calendars.CalendarError)
    async def _calendar_error(_: Request, exc: calendars.CalendarError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)


def create_app(engine: Engine | None = None, *, settings: Settings | None = None,
               clock: Clock | None = None) -> FastAPI:
    """Build the app on ``engine`` (default: the settings' database)."""
    settings = settings or get_settings()
    engine = engine or make_engine()
    app = FastAPI(title="Rehabilitation routes", version="0.1.0", description=DESCRIPTION,
                  dependencies=[Depends(reject_unknown_query)], docs_url=None,
                  redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.clock = clock or make_clock(engine, settings)
    app.state.cfg = EngineConfig.from_settings(settings)
    app.state.read_engine = (
        make_engine(engine.url.render_as_string(hide_password=False), read_only=True)
        if engine.dialect.name == "sqlite" else engine
    )
    app.state.answer_writer = AnswerWriter(engine, app.state.clock)
    app.state.secret_cache = webhooks.SecretCache(
        app.state.read_engine, production=settings.environment == "production")
    app.include_router(webhooks.router)
    webhooks.document_outgoing(app)
    web.install(app)  # the people's pages, /docs and /redoc served offline
    app.include_router(health.router)
    _include_routers(app)
    app.openapi = lambda: openapi(  # type: ignore[method-assign]
        app, (webhooks.AnswerBody, Application, ConsentRecord, IpraExtract))

    install_error_handlers(app)
    app.add_middleware(AccessLog)

    @app.get("/api/clock", tags=["ops"])
    def read_clock() -> dict[str, Any]:
        now = app.state.clock.now()
        return {"now": now.isoformat()}

    if settings.allow_clock_control and settings.environment != "production":
        @app.post("/api/clock/advance", tags=["ops"],
                  responses=error_responses(400, 401, 403, 422))
        def advance_clock(move: ClockMove,
                          actor: Annotated[str, Depends(require_admin)]) -> dict[str, Any]:
            """Move business time forward (never backwards); administrators only, and only
            where clock control is on (never in production)."""
            if (move.working_days is None) == (move.seconds is None):
                raise HTTPException(422, "working_days: give working_days or seconds "
                                         "(exactly one)")
            c: DbClock = app.state.clock
            c.refresh()
            before = c.now()
            if move.working_days is not None:
                try:
                    cal = calendars.get_calendar(move.region)
                except calendars.CalendarError as exc:
                    raise HTTPException(422, f"region: {exc}") from None
                local = pendulum.instance(before).in_timezone(cal.timezone)
                try:
                    day = cal.add_working_days(local.date(), move.working_days)
                except calendars.CalendarError as exc:
                    raise HTTPException(422, f"working_days: {exc}") from None
                target = pendulum.datetime(day.year, day.month, day.day, local.hour,
                                           local.minute, local.second, tz=cal.timezone)
                delta: timedelta = target - local
            else:
                delta = timedelta(seconds=move.seconds or 0)
            if delta < timedelta(0):
                raise HTTPException(422, "working_days: business time never moves backwards")
            field = "working_days" if move.working_days is not None else "seconds"
            cal = calendars.get_calendar(move.region if field == "working_days"
                                         else calendars.DEFAULT_REGION)
            last = cal.sub_working_days(date(calendars.MAX_YEAR, 12, 31),
                                        CLOCK_MARGIN_WORKING_DAYS)
            if pendulum.instance(before + delta).in_timezone(cal.timezone).date() > last:
                raise HTTPException(422, f"{field}: business time must stay within the "
                                         f"production calendars (until {last.isoformat()})")
            now = c.advance(delta)
            with Session(app.state.engine) as s:
                audit.record(s, at=now, actor=actor, entity="clock", entity_id="business",
                             action="advanced", before={"now": before}, after={"now": now},
                             reason=f"working_days={move.working_days}, "
                                    f"seconds={move.seconds}")
                s.commit()
            return {"now": now.isoformat()}

    return app


def create_served_app() -> FastAPI:
    """The app of ``rehab api`` (one per API process; uvicorn's factory): SQLite writers get
    priority, and what is loaded at start-up is kept out of the collector's full passes,
    whose pauses would show in the agencies' acknowledgement latency."""
    set_write_priority(True)
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def _include_routers(app: FastAPI) -> None:
    """Routers of the route API and the supervisor's API."""
    app.include_router(routes_api.router)
    app.include_router(person_file.router)
    app.include_router(consent_resume.router)
    app.include_router(route_plan.router)
    app.include_router(route_life.router)
    app.include_router(supervisor.router)
    app.include_router(supervisor.history_router)
