"""``rehab staff``: staff users (coordinators, supervisors, administrators)."""

from __future__ import annotations

import typer
from sqlmodel import Session

from engine.db import make_engine
from engine.routes import EngineError
from engine.staff import create_staff
from models.staff import StaffRole

staff_app = typer.Typer(help="Staff users: coordinators, supervisors, administrators.",
                        no_args_is_help=True)



@staff_app.callback()
def _group() -> None:
    """Staff users of the product."""


@staff_app.command("add")
def add(
    id: str = typer.Option(..., "--id", help="Login id, e.g. sup39-ivanova"),
    display_name: str = typer.Option(..., "--name", help="Name shown in the product"),
    role: StaffRole = typer.Option(..., "--role", help="coordinator, supervisor or admin"),
    region: str = typer.Option("39", "--region", help="Subject code, e.g. 39"),
    email: str | None = typer.Option(None, "--email", help="Where notifications go"),
) -> None:
    """Add a staff user and print the token once (only its hash is stored)."""
    engine = make_engine()
    try:
        with Session(engine, expire_on_commit=False) as s:
            user, token = create_staff(s, id=id, display_name=display_name, role=role,
                                       region=region, email=email, actor="cli:staff")
            s.commit()
    except (EngineError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    typer.echo(f"staff user {user.id} ({user.role.value}, region {user.region}) created")
    typer.echo(f"token (shown once): {token}")
