"""``rehab``: the product's console command.

A command that serves or talks to Prefect imports its server (uvicorn and the API app, the
simulated agencies, Prefect's flows and the mirror's handlers, the demo) when it runs:
Prefect alone takes seconds to import, which ``rehab --help`` and every other command
would pay. Everything else is imported here."""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli import ops as ops_cli
from cli import route_life  # noqa: F401  (registers the route-life commands: 004 п.11–13)
from cli.agency import agency_app
from cli.board import escalations_app, routes_list_app
from cli.calendar import calendar_app
from cli.ipra import ipra_app
from cli.jobs import jobs_app
from cli.persons import persons_app
from cli.routes import routes_app
from cli.staff import staff_app
from cli.templates import template_app
from engine.agencies.participants import DemoSecretError, refuse_demo_secrets
from engine.infra import process_log as process_logs
from engine.infra.clock import ClockNotRealError, DbClock, require_real_clock
from engine.infra.db import (
    SchemaNotAtHeadError,
    make_engine,
    require_schema_at_head,
    schema_problem,
)
from engine.infra.db import migrate as do_migrate
from engine.infra.settings import get_settings
from engine.notifications.outbox import NoTransportError, refuse_recording_channels
from engine.persons.bulk_import import ImportRefusedError, import_file
from engine.routes.transitions import EngineConfig
from engine.runtime.worker import run_worker_forever
from models.heartbeats import ProcessKind
from models.template_files import ENV_DIR as TEMPLATE_ENV_DIR
from models.template_files import TemplateFileError, reload_templates, templates

app = typer.Typer(help="Individual rehabilitation routes: engine, API, demo, calendars.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(calendar_app, name="calendar")
app.add_typer(routes_app, name="route")
app.add_typer(routes_list_app, name="routes")
app.add_typer(escalations_app, name="escalations")
app.add_typer(staff_app, name="staff")
app.add_typer(agency_app, name="agency")
app.add_typer(jobs_app, name="jobs")
app.add_typer(ipra_app, name="ipra")
app.command("up")(ops_cli.up)
app.command("status")(ops_cli.status)
app.command("config-reference")(ops_cli.config_reference)
app.add_typer(persons_app, name="persons")
app.add_typer(template_app, name="template")


def _startup_check() -> None:
    """Refuse to serve (one line, exit 2) on a schema that is not at Alembic head, and in
    production while an agency holds a public demo secret, the database holds a shifted
    or frozen business clock, or a notification channel in use only records."""
    configured = get_settings().template_dir  # from the environment or .env; processes
    if configured and not os.environ.get(TEMPLATE_ENV_DIR):  # we start read the former
        os.environ[TEMPLATE_ENV_DIR] = configured
        reload_templates()
    try:  # the route templates are data: a bad file stops the start, naming file/step/rule
        templates()
    except TemplateFileError as exc:
        typer.echo(f"error: template: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine()
    try:
        require_schema_at_head(engine)
        settings = get_settings()
        if settings.environment == "production":
            refuse_demo_secrets(engine)
            require_real_clock(engine)
            refuse_recording_channels(engine, settings)
    except (SchemaNotAtHeadError, DemoSecretError, ClockNotRealError,
            NoTransportError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


def _logging() -> None:
    """The process's logging from the settings: plain text or JSON lines, third-party INFO
    noise quieted (``engine/infra/process_log.py``)."""
    process_logs.configure(get_settings())


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic); say what was done."""
    engine = make_engine()
    try:
        typer.echo(do_migrate(engine).describe())
    finally:
        engine.dispose()


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="bind host")] = None,
    port: Annotated[int | None, typer.Option(help="bind port")] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="API processes behind the one port (stateless: any may serve any "
                    "request); a process that dies is replaced")] = 1,
) -> None:
    """Serve the HTTP API (webhooks, supervisor API, pages)."""
    import uvicorn

    s = get_settings()
    _startup_check()
    _logging()
    host, port = host or s.api_host, port or s.api_port
    if workers > 1:
        _prepare_multiprocess_metrics(s.var_dir / f"metrics-{port}")
    process_logs.started("api", s, processes=workers, bind=f"{host}:{port}")
    uvicorn.run("api.app:create_served_app", factory=True, host=host, port=port,
                workers=workers if workers > 1 else None, log_level="warning",
                access_log=False)
    process_logs.stopped("api", bind=f"{host}:{port}")


def _prepare_multiprocess_metrics(directory: Path) -> None:
    """Several API processes share their counters through files (prometheus-client's
    multiprocess mode); the directory is emptied at start, as the library requires."""
    import os
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


@app.command()
def worker(
    name: Annotated[str | None, typer.Option(
        help="worker id (default: <host>-<pid>-<random>, unique across hosts and "
             "containers); a restart never frees the leases a worker of that name holds")]
    = None,
) -> None:
    """Run an engine worker: send requests, apply answers, send cancel notices and
    notifications (the Prefect mirror is ``rehab mirror``'s)."""
    settings = get_settings()
    _startup_check()
    _logging()
    run_worker_forever(settings, worker_id=name)


@app.command()
def mirror(
    name: Annotated[str | None, typer.Option(
        help="process id (default: <host>-<pid>-<random>)")] = None,
) -> None:
    """Mirror routes into Prefect (one flow run per route), in a process of its own at a
    lower CPU priority (REHAB_MIRROR_NICE): under load the routes' work goes first and the
    mirror catches up after."""
    from cli.runtime import mirror_handlers

    settings = get_settings()
    _startup_check()
    _logging()
    if not settings.prefect_mirror:
        raise typer.BadParameter("REHAB_PREFECT_MIRROR is off: there is nothing to mirror",
                                 param_hint="REHAB_PREFECT_MIRROR")
    os.nice(settings.mirror_nice)
    run_worker_forever(settings, worker_id=name, handlers=mirror_handlers(settings),
                       kind=ProcessKind.mirror)


@app.command()
def sim(
    port: Annotated[int, typer.Option(help="bind port")],
    config: Annotated[Path, typer.Option(
        help="JSON: {secrets: {id: whsec}, profiles: {...}, seed: N, subjects: [token]}")],
) -> None:
    """Serve the simulated agencies (synthetic use only)."""
    import uvicorn

    from sim.agencies import SimState, create_sim_app

    state = SimState.from_config(json.loads(config.read_text()))
    uvicorn.run(create_sim_app(state), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


@app.command()
def sweeper(
    interval: Annotated[int, typer.Option(
        min=1, help="seconds of real time between sweeps")] = 60,
    once: Annotated[bool, typer.Option(
        "--once", help="run the timer-sweeper flow once, print its counts as JSON")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="timers fired per transaction")]
    = 200,
) -> None:
    """Fire due timers every INTERVAL seconds on the sweeper's own loop, reporting each sweep
    to Prefect when it is up (or sweep once as a run of the timer-sweeper flow)."""
    from flows.sweeper import run_sweeper_forever, timer_sweeper

    _startup_check()
    _logging()
    if once:
        typer.echo(json.dumps(timer_sweeper(batch_size=batch_size), sort_keys=True))
        return
    run_sweeper_forever(interval, batch_size)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSON lines: one application a line "
                                              "(docs/import.md)", exists=True, dir_okay=False)],
    coordinator: Annotated[str | None, typer.Option(
        help="staff id of the coordinator the routes are given to")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print the figures as JSON")]
    = False,
) -> None:
    """Register a file of applications (a region's existing routes) in one transaction.

    Every line is checked first; a file with a bad line is refused whole: nothing is
    stored and every error is printed as `line N: field: rule` (exit 2)."""


    _startup_check()
    engine = make_engine()
    cfg = EngineConfig.from_settings(get_settings())
    t0 = time.perf_counter()
    try:
        result = import_file(engine, cfg, file, now=DbClock(engine).now(),
                             actor=f"cli:{getpass.getuser()}", coordinator_id=coordinator)
    except ImportRefusedError as exc:
        for e in exc.errors:
            typer.echo(str(e), err=True)
        typer.echo(f"error: import refused, nothing stored: {len(exc.errors)} error(s) in "
                   f"{file}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    seconds = time.perf_counter() - t0
    figures = {"routes": result.routes, "persons_created": result.persons_created,
               "persons_known": result.persons_reused, "seconds": round(seconds, 3),
               "routes_per_s": round(result.routes / seconds, 1) if seconds else None}
    if json_out:
        typer.echo(json.dumps(figures))
    else:
        typer.echo(f"imported {result.routes} routes ({result.persons_created} new persons, "
                   f"{result.persons_reused} known) in {seconds:.2f} s "
                   f"({figures['routes_per_s']} routes/s)")


@app.command()
def demo(
    persons: Annotated[int, typer.Option("--persons", "-n", help="synthetic persons")] = 30,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    serve: Annotated[bool, typer.Option(help="leave the Prefect UI and our API running")]
    = False,
    prefect: Annotated[bool, typer.Option(help="mirror routes into a Prefect server")] = True,
    max_days: Annotated[int, typer.Option(help="calendar days to simulate at most")] = 120,
    seed: Annotated[int, typer.Option(help="random seed of the synthetic data")] = 7,
) -> None:
    """Run synthetic persons through their routes against simulated agencies."""
    from cli.demo import run_demo_command

    run_demo_command(persons=persons, json_out=json_out, serve=serve, prefect=prefect,
                     max_days=max_days, seed=seed)


def main() -> None:
    """Run ``rehab``. A command whose statement fails on a database without the schema (or
    with an older one, or unreachable) says so in one line naming the fix — ``rehab
    migrate`` — and exits 2, instead of a traceback; other failures propagate."""
    try:
        app()
    except SQLAlchemyError:
        engine = make_engine()
        try:
            problem = schema_problem(engine)
        finally:
            engine.dispose()
        if problem is None:
            raise
        typer.echo(f"error: {problem}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
