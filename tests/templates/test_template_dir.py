"""``REHAB_TEMPLATE_DIR``: a further directory of template files. Its files add to the
package's (one of the same name replaces the package's); ``rehab api``, ``rehab worker`` and
``rehab sweeper`` refuse to start on a bad file there, naming the file, the step and the
rule (issue 11: "loaded and validated at start-up with a clear error")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from engine.infra.settings import Settings
from models.template_files import (
    ENV_DIR,
    TEMPLATE_DIR,
    TemplateFileError,
    latest,
    load_templates,
    reload_templates,
    template_dirs,
)

ROOT = Path(__file__).resolve().parents[2]

TOY = """
code = "toy"
version = 1
title = "Проба"
basis = "004 п.10"

[[steps]]
kind = "a"
role = "mse"
requested = "Сведения"
basis = "004 п.6"

[[steps]]
kind = "b"
role = "{role}"
requested = "Маршрут"
basis = "004 п.10 пп.б"
depends_on = ["a"]
"""
BAD_RULE = "toy-v1.toml: steps[1] (b): role: 'police' is not a participant role"


@pytest.fixture
def extra_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "templates"
    d.mkdir()
    monkeypatch.setenv(ENV_DIR, str(d))
    reload_templates()
    yield d
    monkeypatch.delenv(ENV_DIR)
    reload_templates()


def test_the_setting_is_the_variable_the_loader_reads() -> None:
    assert "template_dir" in Settings.model_fields and ENV_DIR == "REHAB_TEMPLATE_DIR"


def test_a_further_directory_adds_templates_and_replaces_one_of_the_same_name(
        extra_dir: Path) -> None:
    (extra_dir / "toy-v1.toml").write_text(TOY.format(role="provider"), encoding="utf-8")
    newest = f"early_help-v{latest('early_help').version}.toml"  # the package's newest
    text = (TEMPLATE_DIR / newest).read_text(encoding="utf-8")
    assert 'title = "Ранняя помощь детям и их семьям"' in text
    (extra_dir / newest).write_text(
        text.replace('title = "Ранняя помощь детям и их семьям"', 'title = "Ранняя помощь (39)"'),
        encoding="utf-8")
    reload_templates()
    assert template_dirs() == (TEMPLATE_DIR, extra_dir)
    assert latest("toy").steps[1].role.value == "provider"
    assert latest("early_help").title == "Ранняя помощь (39)"
    assert latest("social_employment").version == 1  # the package's stay
    out = CliRunner().invoke(app, ["template", "list"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert ("toy", 1) in [(r["code"], r["version"]) for r in rows]
    assert load_templates(TEMPLATE_DIR).keys() == {"accompaniment", "early_help",
                                                   "social_employment", "supported_living"}


def test_a_setting_that_is_not_a_directory_is_refused(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(TemplateFileError, match=f"{ENV_DIR}: not a directory"):
        load_templates()


def _run(args: list[str], env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_")}
    env.update({"PYTHONPATH": str(ROOT), "REHAB_VAR_DIR": str(cwd / "var"),
                "REHAB_PREFECT_MIRROR": "false", **env_extra})
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["api", "--port", "18999"], ["worker"],
                                     ["sweeper", "--once"]])
def test_the_processes_refuse_to_start_on_a_bad_template_file(
        tmp_path: Path, command: list[str]) -> None:
    bad = tmp_path / "templates"
    bad.mkdir()
    (bad / "toy-v1.toml").write_text(TOY.format(role="police"), encoding="utf-8")
    done = _run(command, {ENV_DIR: str(bad)}, tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"error: template: {BAD_RULE}" in done.stderr
    assert not (tmp_path / "var" / "rehab.db").exists()  # refused before touching the store


def test_a_bad_file_named_in_dotenv_is_refused_too(tmp_path: Path) -> None:
    bad = tmp_path / "templates"
    bad.mkdir()
    text = (TEMPLATE_DIR / "social_employment-v1.toml").read_text(encoding="utf-8")
    (bad / "social_employment-v1.toml").write_text(
        text.replace('basis = "001 Регламент п.16 пп.2"', 'basis = "001 п.16 пп.2"'),
        encoding="utf-8")
    (tmp_path / ".env").write_text(f"REHAB_TEMPLATE_DIR={bad}\n", encoding="utf-8")
    done = _run(["sweeper", "--once"], {}, tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert ("error: template: social_employment-v1.toml: steps[1] (conditions_created): "
            "basis: must cite a clause") in done.stderr
    assert "say '001 Порядок' or '001 Регламент'" in done.stderr
