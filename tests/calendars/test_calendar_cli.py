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


def test_add_marks_provisional_answers() -> None:
    # 30, 31 Dec 2027 (approved) and 11 Jan 2028: 2028 has no decree yet (art. 112 only)
    code, out, err = run("add", "2027-12-29", "3")
    assert (code, out, err) == (0, "2028-01-11 [provisional]\n", "")
    assert out.split()[0] == "2028-01-11"  # scripts take the first token
    assert run("add", "2027-12-01", "3")[1] == "2027-12-06\n"  # only approved days
    # counting back from 2028 depends on 2028 days as well
    assert run("add", "2028-01-12", "-2")[1] == "2028-01-10 [provisional]\n"
    # from 1 Jan 2028 back: only 2027 days are counted
    assert run("add", "2028-01-01", "-1")[1] == "2027-12-30\n"
    # regional estimates: Tatarstan's 2027 Muslim holiday dates are not decreed yet
    assert run("add", "2027-03-05", "1", "--region", "16")[1] == "2027-03-10 [provisional]\n"
    assert run("add", "2027-03-05", "1", "--region", "39")[1] == "2027-03-09\n"
    assert run("add", "2028-01-11", "0")[1] == "2028-01-11\n"  # nothing counted


def test_between_marks_provisional_answers() -> None:
    assert run("between", "2027-12-01", "2028-01-20") == (0, "30 [provisional]\n", "")
    assert run("between", "2028-01-20", "2027-12-01")[1] == "-30 [provisional]\n"
    assert run("between", "2027-12-01", "2027-12-31")[1] == "21\n"
    # (31 Dec 2027, 31 Dec 2027] is empty: nothing provisional is counted
    assert run("between", "2027-12-31", "2027-12-31")[1] == "0\n"
    assert run("between", "2026-12-31", "2027-03-31", "--region", "16")[1].endswith(
        " [provisional]\n"
    )


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


def test_show_lists_weekend_holidays() -> None:
    out = run("show", "2025")[1]
    assert "\n23.02 День защитника Отечества (приходится на воскресенье, weekend)\n" in out
    assert "\n08.03 Международный женский день (приходится на субботу, weekend)\n" in out
    assert "\n12.06 День России\n" in out  # a weekday holiday: no mark
    assert "\n13.06 Выходной день, перенесён с 08.03.2025" in out


def test_show_provisional_reason_federal_vs_regional() -> None:
    federal = "no approved federal decree"
    # 2027: federal decree approved, only Tatarstan's Muslim holiday dates are estimated
    out = run("show", "2027", "--region", "16")[1]
    assert federal not in out and "art. 112 rules only" not in out
    assert "provisional: Республика Татарстан: dates of Ураза-байрам, Курбан-байрам in 2027 " \
        "are estimates (Оценка по лунному календарю; заменить датами указа Раиса РТ на " \
        "2027 год)" in out
    assert "№ 1187" in out  # the federal basis is the decree, rightly
    # 2027 in Kaliningrad is not provisional at all
    assert "provisional" not in run("show", "2027")[1]
    # 2028: no federal decree; in Bashkortostan the regional dates are missing too
    out = run("show", "2028")[1]
    assert f"provisional: {federal} for 2028" in out
    assert "Республика" not in out.split("provisional:", 1)[1].splitlines()[0]
    out = run("show", "2028", "--region", "02")[1]
    reasons = [line for line in out.splitlines() if line.startswith("provisional: ")]
    assert len(reasons) == 2
    assert federal in reasons[0]
    assert "Республика Башкортостан" in reasons[1] and "not set by a regional act" in reasons[1]


def test_show_negative_year_is_one_line_error() -> None:
    code, out, err = run("show", "-5")
    assert (code, out) == (2, "")
    assert err == "error: year: year -5 is outside the supported range 2000..2100\n"


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
        ("show", "-5"),
        ("show", "20x5"),
        ("add", "20250101", "1"),
        ("add", "2025-01-01", "1.5"),
        ("add", "2025-01-01", "1_0"),
        ("is-working", "2025-W01-3"),
        ("is-working", "2025-1-5"),
        ("is-working", "2025-02-30"),
        ("is-working", "２０２５-01-01"),
        ("between", "2025-01-01T00:00", "2025-02-01"),
        ("between", "2025-001", "2025-02-01"),
    ],
)
def test_errors_are_one_line_exit_2(args: tuple[str, ...]) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("add", "20250101", "1"), "DATE"),
        (("is-working", "2025-W01-3"), "DATE"),
        (("between", "2025-01-01", "2025-001"), "D2"),
        (("between", "2025-1-1", "2025-01-02"), "D1"),
    ],
)
def test_dates_must_be_strict_iso(args: tuple[str, ...], field: str) -> None:
    _, _, err = run(*args)
    assert err.startswith(f"error: {field}: ")
    assert "YYYY-MM-DD" in err
