"""``rehab ipra``: import an ИПРА extract (``fri-ipra-extract/1``, docs/ipra.md) into the
person's file. A bad file is refused whole: one line per bad field, exit 2, nothing stored."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer
from sqlmodel import Session

from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.infra.settings import get_settings
from engine.persons.applications import PersonConflict
from engine.persons.ipra_import import IpraConflict, IpraInvalid, import_ipra
from engine.routes.transitions import EngineConfig

ipra_app = typer.Typer(help="The ИПРА: import extracts from the federal register.",
                       no_args_is_help=True)


@ipra_app.callback()
def _group() -> None:
    """ИПРА extracts (ФГИС ФРИ)."""


@ipra_app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="An fri-ipra-extract/1 JSON file (docs/ipra.md)"),
) -> None:
    """Import one extract: prints the stored ИПРА's id (identifiers only)."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        typer.echo(f"error: file: cannot read ({exc.strerror})", err=True)
        raise typer.Exit(2) from None
    engine = make_engine()
    try:
        with Session(engine, expire_on_commit=False) as s:
            try:
                res = import_ipra(s, text=raw, now=DbClock(engine).now(),
                                  actor=f"cli:{getpass.getuser()}",
                                  cfg=EngineConfig.from_settings(get_settings()))
            except IpraInvalid as exc:
                s.rollback()
                for e in exc.errors:
                    typer.echo(f"error: {e.field}: {e.rule}: {e.message_ru}", err=True)
                raise typer.Exit(2) from None
            except (IpraConflict, PersonConflict) as exc:
                s.rollback()
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
            s.commit()
            typer.echo(json.dumps({
                "ipra_id": res.record.id, "person_id": res.person.id,
                "created": res.created, "person_created": res.person_created,
                "supersedes": len(res.superseded)}))
    finally:
        engine.dispose()
