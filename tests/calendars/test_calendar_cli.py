"""The ``rehab calendar`` sub-commands (tested on calendar_app directly)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.calendar import calendar_app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(calendar_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_add() -> None:
    assert run("add", "2025-12-30", "1") == (0, "2026-01-12\n", "")
    assert run("add", "2026-01-12", "5")[1] == "2026-01-19\n"


def test_add_negative_number_is_not_an_option() -> None:
    assert run("add", "2026-01-12", "-3") == (0, "2025-12-26\n", "")
    assert run("add", "2026-01-12", "-3", "--region", "16")[1] == "2025-12-26\n"
    assert run("add", "--region", "39", "2026-01-12", "-1")[1] == "2025-12-30\n"


def test_add_region() -> None:
    assert run("add", "2025-06-05", "1", "--region", "16")[1] == "2025-06-09\n"
    assert run("add", "2025-06-05", "1")[1] == "2025-06-06\n"


def test_is_working() -> None:
    code, out, _ = run("is-working", "2025-11-01")
    assert code == 0 and out.startswith("working")
    code, out, _ = run("is-working", "2025-06-12")
    assert code == 0 and out.startswith("non-working") and "День России" in out
    code, out, _ = run("is-working", "2025-11-03")
    assert code == 0 and "transfer" in out
    code, out, _ = run("is-working", "2025-01-11")
    assert code == 0 and "weekend" in out
    assert "Курбан-байрам" in run("is-working", "2025-06-06", "--region", "02")[1]


def test_between() -> None:
    assert run("between", "2025-12-30", "2026-01-19") == (0, "6\n", "")
    assert run("between", "2026-01-19", "2025-12-30")[1] == "-6\n"


def test_show() -> None:
    code, out, _ = run("show", "2025")
    assert code == 0
    assert "Январь" in out and "Декабрь" in out
    assert "working days: 247" in out
    assert "days off: 118" in out
    assert "shortened days: 4" in out
    assert "provisional" not in out
    code, out, _ = run("show", "2028")
    assert code == 0 and "provisional" in out
    assert "working days: 245" in run("show", "2025", "--region", "16")[1]


@pytest.mark.parametrize(
    "args",
    [
        ("add", "2025-13-01", "1"),
        ("add", "2025-01-01", "x"),
        ("add", "2025-01-01", "1", "--region", "99"),
        ("add", "2100-12-30", "10"),
        ("is-working", "yesterday"),
        ("is-working", "1999-12-31"),
        ("between", "2025-01-01", "nope"),
        ("show", "2101"),
        ("show", "2025", "--region", "00"),
    ],
)
def test_errors_are_one_line_exit_2(args: tuple[str, ...]) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
