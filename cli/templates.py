"""``rehab template``: the route templates as data (``models/route_templates/*.toml``) —
list them, show one step by step with its clauses, validate files, migrate running routes
to a new version (dry run, then one transaction per route)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer
from sqlmodel import Session

from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.infra.settings import get_settings
from engine.routes.template_migration import migrate_route, plan_migration
from engine.routes.transitions import EngineConfig
from models.template_files import (
    TEMPLATE_DIR,
    TemplateFileError,
    TemplateSpec,
    describe,
    load_templates,
    template_dirs,
    templates,
)
from models.template_migration import MappingError, parse_mapping, parse_pairs

template_app = typer.Typer(help="Route templates: list, show with clauses, validate, migrate.",
                           no_args_is_help=True)


@template_app.callback()
def _group() -> None:
    """Route templates (models/route_templates/<code>-v<version>.toml)."""


def _load(directory: Path | None) -> dict[str, dict[int, TemplateSpec]]:
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
def validate(directory: Path | None = typer.Argument(
        None, help="a directory of <code>-v<version>.toml files (default: the templates in "
                   f"force: {TEMPLATE_DIR.name} and REHAB_TEMPLATE_DIR)")) -> None:
    """Validate every template file of DIRECTORY: `ok` with the count, or the first error
    (file, step, rule) and exit 2."""
    loaded = _load(directory)
    count = sum(len(v) for v in loaded.values())
    where = directory or ", ".join(map(str, template_dirs()))
    typer.echo(f"ok: {count} template version(s) in {where}")


@template_app.command("migrate")
def migrate(
    code: str = typer.Argument(..., help="the template's code"),
    to: int = typer.Option(..., "--to", help="the version to migrate running routes to"),
    mapping_file: Path | None = typer.Option(
        None, "--mapping", help="TOML: [steps] old_kind = \"new_kind\" (\"\": dropped)"),
    pairs: list[str] = typer.Option([], "--map", help="OLD=NEW or OLD= (dropped); "
                                    "after --mapping, may repeat"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what would change"),
    apply: bool = typer.Option(False, "--apply", help="migrate, one transaction per route"),
) -> None:
    """Migrate the active routes of CODE to version --to: --dry-run lists route by route what
    would change (one JSON line each); --apply does exactly that, one transaction per route,
    audited (`migrated`) and mirrored to each route's flow run. A route already at --to is
    left alone."""
    if dry_run == apply:
        typer.echo("error: say --dry-run or --apply", err=True)
        raise typer.Exit(2)
    try:
        mapping = parse_mapping(mapping_file.read_text(encoding="utf-8"),
                                file=mapping_file.name) if mapping_file else {}
        mapping.update(parse_pairs(pairs))
    except (MappingError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    versions = templates().get(code)
    if not versions:
        typer.echo(f"error: template: unknown code {code!r}", err=True)
        raise typer.Exit(2)
    engine = make_engine()
    cfg = EngineConfig.from_settings(get_settings())
    actor = f"cli:{getpass.getuser()}"
    try:
        with Session(engine) as s:
            planned = plan_migration(s, code=code, versions=versions, to_version=to,
                                     mapping=mapping)
        for mig in planned:
            if apply:
                with Session(engine) as s:
                    done = migrate_route(s, cfg, route_id=mig.route_id, code=code,
                                         versions=versions, to_version=to, mapping=mapping,
                                         now=DbClock(engine).now(), actor=actor)
                    s.commit()
                if done is None:
                    continue
                mig = done
            typer.echo(json.dumps({"applied": apply, **mig.as_dict()}, ensure_ascii=False))
        typer.echo(f"{'migrated' if apply else 'would migrate'}: {len(planned)} route(s)",
                   err=True)
    except (EngineError, MappingError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
