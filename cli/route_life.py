"""``rehab route refuse|resume-participant|terminate|receipt``: the route's life on the
person's application (004 п.11–13) and a paper request's receipt (298-п Порядок п.11), one
transaction each, audited under the operator's name. Prints JSON (identifiers only)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

import typer
from sqlmodel import Session

from cli.routes import routes_app
from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.infra.settings import get_settings
from engine.routes.receipt import confirm_receipt
from engine.routes.refusal import refuse_participant, resume_participant
from engine.routes.termination import terminate_on_application
from engine.routes.transitions import EngineConfig

RouteId = Annotated[str, typer.Argument(help="route id, e.g. rt_...")]
Agency = Annotated[str | None, typer.Option(
    "--agency", help="the participant (agency id); omitted: every participant")]
AppDate = Annotated[str, typer.Option(
    "--application-date", help="the date of the person's application, YYYY-MM-DD")]


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        typer.echo(f"error: application_date: must be a date YYYY-MM-DD, got {text!r}",
                   err=True)
        raise typer.Exit(2) from None


def _run(act: Callable[[Session, EngineConfig, datetime, str], dict[str, Any]]) -> None:
    engine = make_engine()
    cfg = EngineConfig.from_settings(get_settings())
    try:
        with Session(engine, expire_on_commit=False) as s:
            try:
                out = act(s, cfg, DbClock(engine).now(), f"cli:{getpass.getuser()}")
            except EngineError as exc:
                s.rollback()
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
            s.commit()
        typer.echo(json.dumps(out, ensure_ascii=False, default=str))
    finally:
        engine.dispose()


@routes_app.command("refuse")
def refuse(route_id: RouteId, application_date: AppDate, agency: Agency = None) -> None:
    """The person refuses a participant's accompaniment, or all of it (004 п.11, п.12)."""
    day = _date(application_date)

    def act(s: Session, cfg: EngineConfig, now: datetime, actor: str) -> dict[str, Any]:
        out = refuse_participant(s, cfg, route_id=route_id, agency_id=agency,
                                 application_date=day, now=now, actor=actor)
        return {"route_id": out.route_id, "refusal_id": out.refusal_id,
                "agency_id": out.agency_id, "steps_paused": out.steps,
                "cancel_notices": len(out.cancel_notices),
                "timers_cancelled": out.timers_cancelled}
    _run(act)


@routes_app.command("resume-participant")
def resume(route_id: RouteId, application_date: AppDate, agency: Agency = None) -> None:
    """The person resumes a participant's accompaniment, or all of it (004 п.11): the paused
    steps go on with the working days they had left."""
    day = _date(application_date)

    def act(s: Session, cfg: EngineConfig, now: datetime, actor: str) -> dict[str, Any]:
        out = resume_participant(s, cfg, route_id=route_id, agency_id=agency,
                                 application_date=day, now=now, actor=actor)
        return {"route_id": out.route_id, "steps": out.steps,
                "requests_resent": out.requests_resent, "timers_armed": out.timers_armed}
    _run(act)


@routes_app.command("terminate")
def terminate(route_id: RouteId, application_date: AppDate) -> None:
    """The person's application to stop accompaniment (004 п.13 б): the route ends."""
    day = _date(application_date)

    def act(s: Session, cfg: EngineConfig, now: datetime, actor: str) -> dict[str, Any]:
        out = terminate_on_application(s, cfg, route_id=route_id, application_date=day,
                                       now=now, actor=actor)
        return {"route_id": out.route_id, "status": "terminated", "reason": out.reason.value,
                "steps_cancelled": out.steps_cancelled,
                "cancel_notices": len(out.cancel_notices)}
    _run(act)


@routes_app.command("receipt")
def receipt(
    request_id: Annotated[str, typer.Argument(help="request id, e.g. tk_...")],
    received_at: Annotated[str | None, typer.Option(
        "--received-at", help="when the paper request was received, ISO 8601 with a time "
                              "zone; omitted: now")] = None,
) -> None:
    """Record that a paper request was delivered to its agency: its answer period starts
    (298-п Порядок п.11)."""
    at: datetime | None = None
    if received_at is not None:
        try:
            at = datetime.fromisoformat(received_at)
        except ValueError:
            typer.echo("error: received_at: must be ISO 8601, e.g. 2026-01-14T10:00+02:00",
                       err=True)
            raise typer.Exit(2) from None

    def act(s: Session, cfg: EngineConfig, now: datetime, actor: str) -> dict[str, Any]:
        out = confirm_receipt(s, cfg, request_id=request_id, now=now, actor=actor,
                              received_at=at)
        return {"request_id": out.request_id, "recorded": out.recorded,
                "answer_by_date": out.answer_by_date}
    _run(act)
