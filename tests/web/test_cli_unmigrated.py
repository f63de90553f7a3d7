"""``rehab`` on a database without the schema: every command that touches it says so in one
line naming the fix (``rehab migrate``) and exits 2 — no traceback, nothing stored; the
same holds for a database whose schema is older than the code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from cli.main import main
from engine.infra.settings import get_settings

COMMANDS = (
    ["staff", "add", "--id", "coord39", "--name", "Иванова", "--role", "coordinator"],
    ["staff", "revoke", "--id", "coord39"],
    ["staff", "rotate", "--id", "coord39"],
    ["agency", "list"],
    ["agency", "rotate-secret", "mz39"],
    ["routes", "list"],
    ["routes", "show", "rt_1"],
    ["escalations", "list"],
    ["jobs", "list"],
    ["route", "history", "rt_1"],
    ["persons", "purge-due"],
)


@pytest.fixture
def empty_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("REHAB_DATABASE_URL", url)
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _rehab(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["rehab", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_command_on_an_unmigrated_database_names_the_fix(
        args: list[str], empty_db: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = _rehab(args, monkeypatch)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.strip().splitlines() == [
        "error: database: the database has no schema: run `rehab migrate` (it needs "
        + err.split("(it needs ", 1)[1].strip()]
    assert "Traceback" not in out + err
    assert inspect(create_engine(empty_db)).get_table_names() == []  # nothing created


def test_staff_add_on_a_migrated_database_still_works(
        empty_db: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The wrapper changes nothing for a database at head (``rehab migrate`` first)."""
    assert _rehab(["migrate"], monkeypatch) == 0
    code = _rehab(["staff", "add", "--id", "coord39", "--name", "Иванова", "--role",
                   "coordinator"], monkeypatch)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "staff user coord39 (coordinator, region 39) created" in out
