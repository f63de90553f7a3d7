"""The configuration reference (``docs/configuration.md``), generated from the settings class
so that it cannot drift: ``rehab config-reference > docs/configuration.md``; a test compares."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr

from engine.infra.settings import PROJECT_ROOT, Settings

HEADER = """# Configuration reference

Generated from `engine/infra/settings.py` by `rehab config-reference` (a test keeps this file in
step with the code: after changing a setting, run
`rehab config-reference > docs/configuration.md`).

Every setting is an environment variable, or a line of `.env` in the working directory of
the process (supervisord's `directory`, `rehab up` sets it to the project or to the current
directory when it holds a `.env`). Environment variables win over `.env`. With
`REHAB_ENVIRONMENT=production` the settings refuse placeholder secrets, SQLite, an `http://`
public URL and clock control (see docs/operations.md).

| variable | type | default | what it does |
|---|---|---|---|
"""


def _type(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{v}`" for v in get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("|", "or").replace("pathlib.", "")


def _default(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(PROJECT_ROOT)}` (in the project)"
        except ValueError:
            return f"`{value}`"
    if value == "":
        return "(empty)"
    return f"`{value}`"


def render_reference() -> str:
    """The markdown table of every setting: variable, type, default and description."""
    rows = []
    for name, field in Settings.model_fields.items():
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        rows.append(f"| `REHAB_{name.upper()}` | {_type(field.annotation).replace('|', '/')} "
                    f"| {_default(field.default)} | {description} |")
    return HEADER + "\n".join(rows) + "\n"
