"""``rehab jobs``: the engine's job queue — pending and dead jobs, and retrying a dead one.

A job retried ``REHAB_JOB_MAX_ATTEMPTS`` times goes dead instead of being retried for ever in
silence; an operator looks at why (``show``), fixes the cause (an agency's endpoint, a
secret) and retries it (``retry``). Output is JSON lines, identifiers only.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from engine.infra import queue
from engine.infra.db import make_engine
from models.jobs import JobKind

jobs_app = typer.Typer(help="The job queue: pending and dead jobs, retrying a dead one.",
                       no_args_is_help=True)


@jobs_app.callback()
def _group() -> None:
    """Jobs of the engine's durable queue."""


@jobs_app.command("list")
def list_jobs(
    dead: Annotated[bool, typer.Option("--dead/--pending",
                                       help="dead jobs (default) or pending ones")] = True,
    kind: Annotated[JobKind | None, typer.Option(help="only jobs of this kind")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 100,
) -> None:
    """List dead jobs (newest first) or pending ones (soonest due first), one JSON a line."""
    engine = make_engine()
    try:
        for job in queue.list_jobs(engine, dead=dead, kind=kind, limit=limit):
            typer.echo(json.dumps(job.as_dict(), ensure_ascii=False))
    finally:
        engine.dispose()


@jobs_app.command("show")
def show(job_id: Annotated[int, typer.Argument(help="the job's id")]) -> None:
    """Print one job as JSON."""
    engine = make_engine()
    try:
        job = queue.get_job(engine, job_id)
    finally:
        engine.dispose()
    if job is None:
        typer.echo(f"error: job_id: no job {job_id}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(job.as_dict(), ensure_ascii=False, indent=2))


@jobs_app.command("retry")
def retry(job_id: Annotated[int, typer.Argument(help="the dead job's id")]) -> None:
    """Make a dead job due now, its attempts counted from zero."""
    engine = make_engine()
    try:
        job = queue.revive(engine, job_id)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"job {job.id} ({job.kind} {job.ref}) is due again")
