"""``rehab route``: a route's history, its re-plan on a new ИПРА (004 п.10 пп.б), and
recomputing open deadlines after a calendar
change (298-п Порядок п.10, п.11 deadlines in working days)."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from sqlmodel import Session

from engine.errors import EngineError, NotFoundError
from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.infra.settings import get_settings
from engine.routes.branches import record_branch_decision
from engine.routes.ipra_plan import apply_replan, replan_preview
from engine.routes.recompute import ensure_calendar_current
from engine.routes.transitions import EngineConfig
from engine.runtime.drive import drive_route
from engine.staff.accounts import staff_by_token
from engine.supervisor.actions import route_history

routes_app = typer.Typer(help="Routes: history, deadlines.", no_args_is_help=True)


@routes_app.callback()
def _group() -> None:
    """Routes of persons."""


@routes_app.command("history")
def history(
    route_id: str = typer.Argument(..., help="Route id, e.g. rt_..."),
    token: str | None = typer.Option(None, "--token", envvar="REHAB_STAFF_TOKEN",
                                     help="Staff token (the read is logged under that user)"),
) -> None:
    """Print the route's audit history as JSON lines, in order (the read is logged)."""
    engine = make_engine()
    try:
        with Session(engine) as s:
            staff = staff_by_token(s, token) if token else None
            if token and staff is None:
                typer.echo("error: token: unknown or inactive token", err=True)
                raise typer.Exit(2)
            rows = route_history(s, staff=staff, route_id=route_id,
                                 now=DbClock(engine).now(),
                                 actor=None if staff else f"cli:{getpass.getuser()}")
            s.commit()
            for r in rows:
                typer.echo(json.dumps({
                    "id": r.id, "at": r.at.isoformat(), "actor": r.actor, "entity": r.entity,
                    "entity_id": r.entity_id, "action": r.action, "before": r.before,
                    "after": r.after, "reason": r.reason,
                }, ensure_ascii=False))
    except EngineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


@routes_app.command("calendar-recompute")
def calendar_recompute(
    reason: str = typer.Option("", "--reason",
                               help="Why (e.g. the decree's number): recompute every open "
                               "deadline now and record this reason"),
) -> None:
    """Recompute the open deadlines with the current calendar data, under the calendar
    stamp's lock, and stamp the data version (298-п Порядок п.10, п.11). Without --reason
    only when the data changed or timers of other data are pending (the sweeper does the
    same by itself on every sweep)."""
    engine = make_engine()
    cfg = EngineConfig.from_settings(get_settings())
    text = reason.strip()
    try:
        moved = ensure_calendar_current(engine, cfg, now=DbClock(engine).now(),
                                        reason=text or None, force=bool(text))
    finally:
        engine.dispose()
    typer.echo("calendar data unchanged" if moved is None else f"deadlines moved: {moved}")


@routes_app.command("drive")
def drive(route_id: Annotated[str, typer.Argument(help="route id, e.g. rt_...")]) -> None:
    """Do the route's due work now (send its request, apply its answers) and print its
    status — what a worker would do, for one route."""
    try:
        typer.echo(drive_route(route_id))
    except NotFoundError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@routes_app.command("replan")
def replan(
    route_id: Annotated[str, typer.Argument(help="route id, e.g. rt_...")],
    apply: Annotated[bool, typer.Option("--apply", help="apply it (default: only show)")]
    = False,
) -> None:
    """Re-plan a route formed from the ИПРА on the person's current ИПРА (004 п.10 пп.б):
    print what changes — steps added, cancelled (their agency told), re-dated — as JSON;
    with --apply, apply it in one transaction, audited."""
    engine = make_engine()
    try:
        with Session(engine) as s:
            if apply:
                diff = apply_replan(s, EngineConfig.from_settings(get_settings()),
                                    route_id=route_id, now=DbClock(engine).now(),
                                    actor=f"cli:{getpass.getuser()}")
                s.commit()
            else:
                diff = replan_preview(s, route_id=route_id)
        typer.echo(json.dumps({"route_id": route_id, "applied": apply, **diff.as_dict()},
                              ensure_ascii=False))
    except EngineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


@routes_app.command("branches")
def branches(
    route_id: Annotated[str, typer.Argument(help="route id, e.g. rt_...")],
    choose: Annotated[str, typer.Option(
        "--choose", help="the branches the person chose, comma-separated (e.g. "
                         "education,employment); empty: none")],
    assessment: Annotated[str, typer.Option(
        "--assessment", help="the need assessment's conclusion (000 п.10)")],
) -> None:
    """Record a supported-living route's branch decision (000 п.10, п.13–15): the person's
    choice with the assessment's conclusion; the branches not chosen are closed as not
    applicable. One transaction, audited; printed as JSON (exit 2 and the rule if refused)."""
    engine = make_engine()
    chosen = [c.strip() for c in choose.split(",") if c.strip()]
    try:
        with Session(engine) as s:
            decision = record_branch_decision(
                s, EngineConfig.from_settings(get_settings()), route_id=route_id,
                chosen=chosen, assessment=assessment, now=DbClock(engine).now(),
                actor=f"cli:{getpass.getuser()}")
            s.commit()
        typer.echo(json.dumps(decision.as_dict(), ensure_ascii=False))
    except EngineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
