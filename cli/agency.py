"""``rehab agency``: participant agencies — onboarding, endpoints, secret rotation.

Backed by ``engine/agencies/participants.py`` (each change one transaction with its audit record; a
secret is printed once and never stored in the audit). See docs/agencies.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from sqlmodel import Session

from calendars import CalendarError
from engine.agencies import participants as ag
from engine.errors import EngineError
from engine.infra.db import make_engine
from models.agencies import Agency, AgencyRole

agency_app = typer.Typer(
    help="Participant agencies: register, list, set the endpoint, rotate secrets.",
    no_args_is_help=True)

ACTOR = "cli:agency"
T = TypeVar("T")


@agency_app.callback()
def _group() -> None:
    """Participant agencies of interagency interaction (298-п Порядок п.3)."""


@contextmanager
def _session() -> Iterator[Session]:
    engine = make_engine()
    try:
        with Session(engine, expire_on_commit=False) as s:
            yield s
    finally:
        engine.dispose()


def _run(action: Callable[[Session], T]) -> T:
    """Run ``action`` in one transaction; refused input -> one line on stderr, exit 2."""
    try:
        with _session() as s:
            out = action(s)
            s.commit()
            return out
    except (EngineError, CalendarError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@agency_app.command("add")
def add(
    id: str = typer.Option(..., "--id", help="Agency id, e.g. mz39"),
    name: str = typer.Option(..., "--name", help="Full Russian name shown to people"),
    short_name: str = typer.Option(..., "--short-name", help="Short name, e.g. Минздрав"),
    role: AgencyRole = typer.Option(..., "--role", help="Kind of participant"),
    region: str = typer.Option("39", "--region", help="Subject code, e.g. 39"),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="URL of the agency's system; omit: requests go to its inbox"),
    email: str | None = typer.Option(None, "--email", help="Where reminders go"),
    district: str | None = typer.Option(None, "--district", help="The municipality / "
                                        "district it serves (provider rule `nearest`)"),
) -> None:
    """Register an agency and print its secret once (hand it to the agency)."""
    agency, secret = _run(lambda s: ag.add_agency(
        s, id=id, name=name, short_name=short_name, role=role, region=region,
        endpoint_url=endpoint, email=email, actor=ACTOR, district=district))
    channel = agency.endpoint_url or "inbox"
    typer.echo(f"agency {agency.id} ({agency.role.value}, region {agency.region}) created; "
               f"requests go to {channel}")
    typer.echo(f"secret (shown once): {secret}")
    typer.echo(f"fingerprint: {ag.fingerprint(secret)}")


@agency_app.command("list")
def list_(
    region: str | None = typer.Option(None, "--region", help="Only this subject code"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """List agencies (secrets are never shown: only their fingerprints)."""
    rows = _run(lambda s: [ag.describe(a) for a in ag.list_agencies(s, region=region)])
    if json_out:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        rotation = f", previous {r['previous_fingerprint']}" if r["previous_fingerprint"] else ""
        demo = " DEMO SECRET" if r["demo_secret"] else ""
        off = "" if r["active"] else " (inactive)"
        typer.echo(f"{r['id']}\t{r['short_name']}\t{r['role']}\t{r['region']}\t"
                   f"{r['endpoint_url'] or 'inbox'}\tsecret {r['secret_fingerprint']}"
                   f"{rotation}{demo}{off}")


@agency_app.command("set-endpoint")
def set_endpoint(
    agency_id: str = typer.Argument(..., help="Agency id"),
    url: str | None = typer.Argument(None, help="New endpoint URL"),
    inbox: bool = typer.Option(False, "--inbox", help="No system: requests go to the inbox"),
) -> None:
    """Point the agency's requests at URL, or at its inbox (--inbox)."""
    if (url is None) == (not inbox):
        typer.echo("error: url: give a URL or --inbox (not both)", err=True)
        raise typer.Exit(2)
    agency = _run(lambda s: ag.set_endpoint(s, agency_id, None if inbox else url,
                                            actor=ACTOR))
    typer.echo(f"agency {agency.id}: requests go to {agency.endpoint_url or 'inbox'}")


@agency_app.command("rotate-secret")
def rotate_secret(agency_id: str = typer.Argument(..., help="Agency id")) -> None:
    """Issue a new secret (printed once); the old one stays valid until retire-previous."""

    def rotate(s: Session) -> tuple[str, bool]:
        secret = ag.rotate_secret(s, agency_id, actor=ACTOR)
        agency = s.get(Agency, agency_id)
        return secret, agency is not None and agency.secret_previous is not None

    secret, kept = _run(rotate)
    typer.echo(f"agency {agency_id}: new secret (shown once): {secret}")
    typer.echo(f"fingerprint: {ag.fingerprint(secret)}")
    if kept:
        typer.echo("both secrets are valid until `rehab agency retire-previous "
                   f"{agency_id}`")
    else:
        typer.echo("the old secret was the public demo secret: it is no longer valid")


@agency_app.command("retire-previous")
def retire_previous(agency_id: str = typer.Argument(..., help="Agency id")) -> None:
    """End a rotation: the previous secret stops being valid."""
    _run(lambda s: ag.retire_previous(s, agency_id, actor=ACTOR))
    typer.echo(f"agency {agency_id}: previous secret retired; only the current one is valid")
