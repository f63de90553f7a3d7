"""``rehab template list|show|validate``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from models.template_files import TEMPLATE_DIR

runner = CliRunner()


def test_list_shows_each_template_version() -> None:
    out = runner.invoke(app, ["template", "list"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [(r["code"], r["version"]) for r in rows] == [
        ("accompaniment", 1), ("accompaniment", 2), ("early_help", 1), ("early_help", 2),
        ("social_employment", 1), ("supported_living", 1), ("supported_living", 2)]


def test_show_prints_the_steps_with_their_clauses() -> None:
    out = runner.invoke(app, ["template", "show", "social_employment"])
    assert out.exit_code == 0, out.output
    for n in range(1, 6):
        assert f"001 Регламент п.16 пп.{n};" in out.output
    assert "повторяется каждые 60 р.д." in out.output
    unknown = runner.invoke(app, ["template", "show", "nope"])
    assert unknown.exit_code == 2 and "unknown code 'nope'" in unknown.output
    missing = runner.invoke(app, ["template", "show", "early_help", "--version", "7"])
    assert missing.exit_code == 2 and "has versions [1, 2]" in missing.output


def test_validate_names_the_file_the_step_and_the_rule(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["template", "validate"])
    assert ok.exit_code == 0 and ok.output.startswith("ok: 7 template version(s)")
    text = (TEMPLATE_DIR / "accompaniment-v1.toml").read_text(encoding="utf-8")
    (tmp_path / "accompaniment-v1.toml").write_text(
        text.replace('role = "sfr"', 'role = "fsb"'), encoding="utf-8")
    bad = runner.invoke(app, ["template", "validate", str(tmp_path)])
    assert bad.exit_code == 2
    assert ("error: accompaniment-v1.toml: steps[3] (sfr_tsr_consulting): role: 'fsb' is "
            "not a participant role") in bad.output
