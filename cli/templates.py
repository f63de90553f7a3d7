"""``rehab template``: the route templates as data (``models/route_templates/*.toml``) —
list them, show one step by step with its clauses, validate files."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from models.template_files import (
    TEMPLATE_DIR,
    TemplateFileError,
    TemplateSpec,
    describe,
    load_templates,
)

template_app = typer.Typer(help="Route templates: list, show with clauses, validate.",
                           no_args_is_help=True)


@template_app.callback()
def _group() -> None:
    """Route templates (models/route_templates/<code>-v<version>.toml)."""


def _load(directory: Path) -> dict[str, dict[int, TemplateSpec]]:
    try:
        return load_templates(directory)
    except TemplateFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@template_app.command("list")
def list_templates() -> None:
    """One JSON line per template version: code, version, title, basis, steps."""
    for code, versions in sorted(load_templates().items()):
        for version, t in sorted(versions.items()):
            typer.echo(json.dumps({"code": code, "version": version, "title": t.title,
                                   "basis": t.basis, "steps": len(t.steps)},
                                  ensure_ascii=False))


@template_app.command("show")
def show(code: str = typer.Argument(..., help="the template's code"),
         version: int | None = typer.Option(None, "--version", help="default: the newest")
         ) -> None:
    """The steps with their clauses, roles, terms, conditions and dependencies — to check
    the template against the regulation."""
    versions = load_templates().get(code)
    if not versions:
        typer.echo(f"error: template: unknown code {code!r}; known: "
                   f"{', '.join(sorted(load_templates()))}", err=True)
        raise typer.Exit(2)
    chosen = versions.get(version if version is not None else max(versions))
    if chosen is None:
        typer.echo(f"error: version: {code} has versions {sorted(versions)}", err=True)
        raise typer.Exit(2)
    for line in describe(chosen):
        typer.echo(line)


@template_app.command("validate")
def validate(directory: Path = typer.Argument(TEMPLATE_DIR, help="a directory of "
                                              "<code>-v<version>.toml files")) -> None:
    """Validate every template file of DIRECTORY: `ok` with the count, or the first error
    (file, step, rule) and exit 2."""
    loaded = _load(directory)
    count = sum(len(v) for v in loaded.values())
    typer.echo(f"ok: {count} template version(s) in {directory}")
