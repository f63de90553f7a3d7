"""``rehab``: the product's console command."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from cli.calendar import calendar_app
from cli.routes import routes_app
from cli.staff import staff_app

app = typer.Typer(help="Individual rehabilitation routes: engine, API, demo, calendars.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(calendar_app, name="calendar")
app.add_typer(routes_app, name="route")
app.add_typer(staff_app, name="staff")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from engine.db import make_engine
    from engine.db import migrate as do_migrate

    do_migrate(make_engine())
    typer.echo("schema is at the newest migration")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="bind host")] = None,
    port: Annotated[int | None, typer.Option(help="bind port")] = None,
) -> None:
    """Serve the HTTP API (webhooks, supervisor API, pages)."""
    import uvicorn

    from api.app import create_app
    from engine.settings import get_settings

    s = get_settings()
    _logging()
    uvicorn.run(create_app(settings=s), host=host or s.api_host, port=port or s.api_port,
                log_level="warning", access_log=False)


@app.command()
def worker(
    name: Annotated[str | None, typer.Option(help="stable worker id (leases survive restarts)")]
    = None,
) -> None:
    """Run an engine worker: send requests, apply answers, notify, mirror into Prefect."""
    from engine.settings import get_settings
    from engine.worker import run_worker_forever

    _logging()
    run_worker_forever(get_settings(), worker_id=name)


@app.command()
def sim(
    port: Annotated[int, typer.Option(help="bind port")],
    config: Annotated[Path, typer.Option(help="JSON: {secrets: {id: whsec}, profiles: {...}}")],
) -> None:
    """Serve the simulated agencies (synthetic use only)."""
    import uvicorn

    from sim.agencies import Profile, SimState, create_sim_app

    data = json.loads(config.read_text())
    state = SimState(secrets=data["secrets"],
                     profiles={k: Profile(**v) for k, v in data.get("profiles", {}).items()})
    uvicorn.run(create_sim_app(state), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


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
    app()


if __name__ == "__main__":
    main()
