"""``rehab up`` (the production topology under supervisord) and ``rehab status`` (readiness
and each process's heartbeat)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.infra.db import SchemaNotAtHeadError, make_engine, require_schema_at_head
from engine.infra.heartbeats import read_beats
from engine.infra.settings import PROJECT_ROOT, get_settings
from ops.config_reference import render_reference
from ops.readiness import check, is_silent
from ops.topology import Topology, render, write


def up(
    api_processes: Annotated[int, typer.Option("--api-processes", min=1,
                                               help="API processes behind one port")] = 2,
    workers: Annotated[int, typer.Option(min=1, help="engine workers")] = 2,
    sweep_interval: Annotated[int, typer.Option(min=1, help="seconds between sweeps")] = 60,
    prefect_server: Annotated[bool, typer.Option(
        "--prefect-server/--no-prefect-server",
        help="also run a Prefect server (its database: REHAB_PREFECT_DATABASE_URL)")] = False,
    prefect_port: Annotated[int, typer.Option(help="the Prefect server's port")] = 4200,
    host: Annotated[str | None, typer.Option(help="bind host of the API (and Prefect)")]
    = None,
    port: Annotated[int | None, typer.Option(help="the API's port")] = None,
    print_config: Annotated[bool, typer.Option(
        "--print-config", help="print the supervisord configuration and exit")] = False,
) -> None:
    """Run the whole deployment under supervisord: the API processes, the workers, the
    sweeper, the Prefect mirror (and a Prefect server); a process that dies is restarted;
    SIGTERM stops them all gracefully. docs/operations.md."""

    s = get_settings()
    engine = make_engine()
    try:  # every process would refuse to start (and be restarted for ever): say it once
        require_schema_at_head(engine)
    except SchemaNotAtHeadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    topo = Topology(api_processes=api_processes, workers=workers,
                    sweep_interval_seconds=sweep_interval, prefect_server=prefect_server,
                    prefect_port=prefect_port, host=host or s.api_host,
                    port=port or s.api_port, prefect_database_url=s.prefect_database_url,
                    mirrors=1 if s.prefect_mirror else 0, prefect_nice=s.mirror_nice)
    workdir = Path.cwd() if (Path.cwd() / ".env").exists() else PROJECT_ROOT
    if print_config:
        typer.echo(render(topo, var_dir=s.var_dir, workdir=workdir))
        return
    path = write(topo, var_dir=s.var_dir, workdir=workdir)
    typer.echo(f"supervisord: {path} (logs in {s.var_dir / 'logs'})")
    os.execv(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "-c", str(path)])


def status(
    json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
    all_processes: Annotated[bool, typer.Option(
        "--all", help="include processes that stopped cleanly")] = False,
) -> None:
    """Readiness (database, schema, clock, Prefect) and each process's last heartbeat and
    what it holds. Exit 1 when not ready."""

    s = get_settings()
    engine = make_engine()
    try:
        result = check(engine, s)
        beats = read_beats(engine, include_stopped=all_processes) \
            if result.checks.get("database", {}).get("ok") else []
    finally:
        engine.dispose()
    if json_out:
        typer.echo(json.dumps({**result.as_dict(),
                               "processes": [b.as_dict() for b in beats]}, indent=2))
    else:
        typer.echo("ready" if result.ready else "NOT READY")
        for name, c in result.checks.items():
            if name == "processes":
                continue
            mark = "ok " if c["ok"] else ("FAIL" if c["required"] else "warn")
            detail = c.get("detail") or c.get("revision") or c.get("url") or ""
            typer.echo(f"  {mark:4} {name:9} {detail}")
        typer.echo(f"processes ({len(beats)}):")
        for b in beats:
            state = ("stopped" if b.stopped_at else
                     "SILENT" if is_silent(b, s) else "beating")
            typer.echo(f"  {b.kind:8} {b.process_id:40} {state:8} last beat "
                       f"{b.silent_seconds:6.1f} s ago, holding {b.holding}")
    if not result.ready:
        raise typer.Exit(1)


def config_reference() -> None:
    """Print the configuration reference (markdown) generated from the settings class."""

    typer.echo(render_reference(), nl=False)
