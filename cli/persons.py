"""``rehab persons``: the person's file housekeeping — ``purge-due`` destroys the personal
data whose term is over (152-ФЗ art. 21 ч.5; ``engine.data_purge``)."""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict

import typer

from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.persons.data_purge import purge_due

persons_app = typer.Typer(help="Persons' files: destroy personal data whose term is over.",
                          no_args_is_help=True)


@persons_app.callback()
def _group() -> None:
    """Persons' files."""


@persons_app.command("purge-due")
def purge_due_command() -> None:
    """Destroy the contacts and ИПРА copies due (``destroy_by`` reached, no new consent), one
    transaction per person; prints the counts as JSON (identifiers only)."""
    engine = make_engine()
    try:
        out = purge_due(engine, now=DbClock(engine).now(), actor=f"cli:{getpass.getuser()}")
        typer.echo(json.dumps(asdict(out)))
    finally:
        engine.dispose()
