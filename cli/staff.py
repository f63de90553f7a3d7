"""``rehab staff``: staff users (coordinators, supervisors, administrators)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from sqlmodel import Session

from engine.errors import EngineError
from engine.infra.db import make_engine
from engine.infra.settings import get_settings
from engine.staff.accounts import create_staff, revoke_token, rotate_token, set_password
from models.staff import StaffRole

staff_app = typer.Typer(help="Staff users: coordinators, supervisors, administrators.",
                        no_args_is_help=True)


@contextmanager
def _transaction(*errors: type[Exception]) -> Iterator[Session]:
    """One transaction on the staff users, committed when the block ends; an EngineError
    (or one of ``errors``) is printed as one line and exits 2, nothing stored."""
    refused: tuple[type[Exception], ...] = (EngineError, *errors)
    engine = make_engine()
    try:
        with Session(engine, expire_on_commit=False) as s:
            yield s
            s.commit()
    except refused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


@staff_app.callback()
def _group() -> None:
    """Staff users of the product."""


@staff_app.command("add")
def add(
    id: str = typer.Option(..., "--id", help="Login id, e.g. sup39-ivanova"),
    display_name: str = typer.Option(..., "--name", help="Name shown in the product"),
    role: StaffRole = typer.Option(..., "--role",
                                 help="coordinator, supervisor, agency or admin"),
    region: str = typer.Option("39", "--region", help="Subject code, e.g. 39"),
    email: str | None = typer.Option(None, "--email", help="Where notifications go"),
    agency_id: str | None = typer.Option(None, "--agency",
                                         help="The agency of an agency user (--role agency)"),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the sign-in password from standard input"),
    password_prompt: bool = typer.Option(False, "--password",
                                         help="Prompt for a sign-in password"),
) -> None:
    """Add a staff user and print the API token once (only its hash is stored); with
    --password-stdin or --password the user can also sign in to the pages."""
    password = _read_password(password_stdin, password_prompt)
    with _transaction(ValueError) as s:
        user, token = create_staff(s, id=id, display_name=display_name, role=role,
                                   region=region, email=email, actor="cli:staff",
                                   token_ttl_days=get_settings().staff_token_ttl_days,
                                   agency_id=agency_id, password=password)
    typer.echo(f"staff user {user.id} ({user.role.value}, region {user.region}) created")
    typer.echo(f"token expires at {user.token_expires_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(f"token (shown once): {token}")


def _read_password(from_stdin: bool, prompt: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if prompt:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


@staff_app.command("passwd")
def passwd(
    id: str = typer.Option(..., "--id", help="Login id of the staff user"),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from standard input "
                                             "(else prompt)"),
) -> None:
    """Set the user's sign-in password (12-256 characters); their open sessions end."""
    password = _read_password(password_stdin, not password_stdin)
    assert password is not None
    with _transaction() as s:
        set_password(s, id=id, password=password, actor="cli:staff")
    typer.echo(f"the password of {id} is set")


@staff_app.command("revoke")
def revoke(id: str = typer.Option(..., "--id", help="Login id of the staff user")) -> None:
    """Refuse the user's token and sign-in from now on and end their sessions (access back:
    ``rehab staff rotate``)."""
    with _transaction() as s:
        revoke_token(s, id=id, actor="cli:staff")
    typer.echo(f"the token of {id} is revoked")


@staff_app.command("rotate")
def rotate(id: str = typer.Option(..., "--id", help="Login id of the staff user")) -> None:
    """Issue a new token (shown once; the old one is refused at once), valid for
    REHAB_STAFF_TOKEN_TTL_DAYS days."""
    with _transaction() as s:
        user, token = rotate_token(s, id=id, actor="cli:staff",
                                   token_ttl_days=get_settings().staff_token_ttl_days)
    typer.echo(f"token of {user.id} rotated; it expires at "
               f"{user.token_expires_at:%Y-%m-%d %H:%M} UTC")
    typer.echo(f"new token (shown once): {token}")
