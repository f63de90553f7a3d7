"""``rehab routes list|show`` and ``rehab escalations list``: the coordinator's board and the
supervisor's queue for operators at the command line (identifiers only — no person's data
is printed, so nothing here reads personal data). Deadlines: 298-п Порядок п.10, п.11;
escalations: п.13."""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import typer
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.routes.board import Filters, board, matching, step_late
from engine.routes.reads import get_route, steps_of
from engine.supervisor.actions import list_escalations
from models.routes import RouteStatus
from models.staff import StaffRole, StaffUser
from models.timers import Escalation

routes_list_app = typer.Typer(help="Routes: the board (list, show).", no_args_is_help=True)
escalations_app = typer.Typer(help="Escalations: the supervisors' queue.",
                              no_args_is_help=True)


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


@routes_list_app.command("list")
def routes_list(
    overdue: Annotated[bool, typer.Option("--overdue", help="only routes past a deadline")]
    = False,
    kind: Annotated[str | None, typer.Option("--kind", help="route template, e.g. "
                                             "supported_living")] = None,
    state: Annotated[RouteStatus | None, typer.Option("--state")] = None,
    region: Annotated[str | None, typer.Option("--region", help="subject code")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Routes, the overdue first (most working days late), then the newest."""
    engine = make_engine()
    try:
        with Session(engine) as s:
            filters = Filters(kind=kind, state=state, overdue=overdue)
            rows = matching(board(s, region=region, now=DbClock(engine).now(),
                                  filters=filters), filters, limit=10_000)
    finally:
        engine.dispose()
    for r in rows:
        if as_json:
            typer.echo(json.dumps({k: _iso(v) for k, v in r.as_dict().items()},
                                  ensure_ascii=False))
        else:
            late = f"{r.late_working_days} wd late" if r.overdue else "on time"
            esc = f" escalation L{r.escalation_level}" if r.escalation_level is not None else ""
            typer.echo(f"{r.id}  {r.template}  {r.status}  step {r.step_kind or '-'} "
                       f"@ {r.agency_id or '-'} due {_iso(r.due_date) or '-'}  {late}{esc}")
    if not as_json:
        typer.echo(f"{len(rows)} route(s)")


@routes_list_app.command("show")
def routes_show(route_id: Annotated[str, typer.Argument(help="route id, e.g. rt_...")]
                ) -> None:
    """One route: its steps (sent, due, answered, working days late) and escalations, as
    JSON (identifiers only)."""
    engine = make_engine()
    try:
        with Session(engine) as s:
            route = get_route(s, route_id)
            if route is None:
                typer.echo(f"error: route_id: no route {route_id!r}", err=True)
                raise typer.Exit(2)
            now = DbClock(engine).now()
            steps = sorted(steps_of(s, route.id), key=lambda st: st.seq)
            escalations = list(s.exec(select(Escalation).where(
                Escalation.route_id == route.id).order_by(col(Escalation.id))))
            out = {
                "id": route.id, "template": route.template, "region": route.region,
                "status": route.status.value, "registered_at": _iso(route.registered_at),
                "prefect_flow_run_id": route.prefect_flow_run_id,
                "prefect_flow_run_name": f"route-{route.id}",
                "steps": [{"seq": st.seq, "kind": st.kind, "agency_id": st.agency_id,
                           "status": st.status.value, "sent_at": _iso(st.sent_at),
                           "answer_by_date": _iso(st.answer_by_date),
                           "answered_at": _iso(st.answered_at),
                           "late_working_days": step_late(st, route.region, now)}
                          for st in steps],
                "escalations": [{"id": e.id, "step_id": e.step_id, "level": int(e.level),
                                 "status": e.status.value, "due_date": _iso(e.due_date)}
                                for e in escalations],
            }
    finally:
        engine.dispose()
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2))


@escalations_app.command("list")
def escalations_list(
    region: Annotated[str | None, typer.Option("--region", help="subject code")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Open and acknowledged escalations: the highest level first, then the oldest (working
    days past the deadline)."""
    # the operator reads as an administrator would (every region); nothing is stored
    operator = StaffUser(id=f"cli:{getpass.getuser()}"[:40], display_name="operator",
                         role=StaffRole.admin, region=region or "39", token_sha256="-")
    engine = make_engine()
    try:
        with Session(engine) as s:
            rows = list_escalations(s, staff=operator, now=DbClock(engine).now(),
                                    region=region, limit=10_000)
    finally:
        engine.dispose()
    rows.sort(key=lambda e: (-e.level, -e.age_working_days, e.id))
    for e in rows:
        if as_json:
            typer.echo(json.dumps({k: _iso(v) for k, v in e.__dict__.items()},
                                  ensure_ascii=False))
        else:
            typer.echo(f"#{e.id}  L{e.level} {e.level_name}  {e.status}  "
                       f"{e.age_working_days} wd  route {e.route_id} step {e.step_kind} "
                       f"@ {e.agency_id or '-'} due {e.deadline.isoformat()}")
    if not as_json:
        typer.echo(f"{len(rows)} escalation(s)")
