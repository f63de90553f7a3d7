"""Importing ИПРА extracts (docs/ipra.md) by ``rehab ipra import FILE`` and by the API: a
good file is stored, a bad one refused whole naming every bad field (nothing stored), a newer
ИПРА supersedes the older and both stay in the history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app
from engine.infra.settings import get_settings
from models.person_file import IpraRecord
from tests.api.conftest import table_snapshot
from tests.ladder.conftest import Staff
from tests.person.forms import DELETE
from tests.person_file.conftest import audits, extract, newer_extract

runner = CliRunner()


@pytest.fixture
def cli_db(db_url: str, db: Engine, monkeypatch: pytest.MonkeyPatch,
           now: object) -> Iterator[Engine]:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def rehab_import(tmp_path: Path, doc: dict[str, Any] | str, name: str = "x.json") -> Any:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False),
                    encoding="utf-8")
    return runner.invoke(app, ["ipra", "import", str(path)])


def history(db: Engine) -> list[tuple[str, int | None]]:
    with Session(db) as s:
        rows = s.exec(select(IpraRecord).order_by(IpraRecord.issued_on)).all()
        ids = {r.id: r.number for r in rows}
        return [(r.number, ids.get(r.superseded_by_id) if r.superseded_by_id else None)
                for r in rows]


def test_cli_imports_a_good_file_and_a_newer_one_supersedes_it(
        cli_db: Engine, tmp_path: Path) -> None:
    first = rehab_import(tmp_path, extract(), "a.json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    assert out["created"] is True and out["person_created"] is True
    assert "112-233-445" not in first.output
    again = rehab_import(tmp_path, extract(), "a.json")
    assert again.exit_code == 0 and json.loads(again.output)["created"] is False
    second = rehab_import(tmp_path, newer_extract(), "b.json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.output)["supersedes"] == 1
    assert history(cli_db) == [("1234.5.39/2025", "77.5.39/2026"),  # type: ignore[list-item]
                               ("77.5.39/2026", None)]
    assert [e.action for e in audits(cli_db, entity="ipra")] == ["imported", "imported"]


@pytest.mark.parametrize(("doc", "lines"), [
    ("{not json", ["$: json_invalid"]),
    (extract(format="fri-ipra-extract/2"), ["format: literal_error"]),
    (extract(ipra__subject__snils="112-233-445 96", ipra__limitations__0__degree=4,
             ipra__number=DELETE),
     ["ipra.number: missing", "ipra.subject.snils: snils_check_number",
      "ipra.limitations[0].degree: less_than_equal"]),
])
def test_cli_refuses_a_bad_file_naming_each_field_and_stores_nothing(
        cli_db: Engine, tmp_path: Path, doc: dict[str, Any] | str, lines: list[str]) -> None:
    before = table_snapshot(cli_db)
    r = rehab_import(tmp_path, doc)
    assert r.exit_code == 2
    got = [ln.removeprefix("error: ") for ln in r.output.strip().splitlines()]
    assert len(got) == len(lines)
    for want in lines:
        assert any(g.startswith(want + ": ") for g in got), (want, got)
    assert table_snapshot(cli_db) == before


def test_api_imports_reads_and_keeps_the_history(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord, sup = staff["coord39"], staff["sup39"]
    a = api.post("/api/ipra", json=extract(), headers=coord.headers)
    assert a.status_code == 201, a.text
    assert a.json()["current"] is True and "document" not in a.json() or \
        a.json()["document"] is None
    assert api.post("/api/ipra", json=extract(), headers=coord.headers).status_code == 200
    b = api.post("/api/ipra", json=newer_extract(), headers=coord.headers)
    assert b.status_code == 201 and b.json()["current"] is True
    person_id = b.json()["person_id"]
    h = api.get(f"/api/persons/{person_id}/ipra", headers=sup.headers)
    assert h.status_code == 200
    rows = h.json()
    assert [(r["number"], r["current"]) for r in rows] == [
        ("1234.5.39/2025", False), ("77.5.39/2026", True)]
    assert rows[0]["superseded_by_id"] == rows[1]["id"]
    assert rows[0]["document"]["measures"] and rows[1]["document"]["limitations"]
    one = api.get(f"/api/ipra/{rows[0]['id']}", headers=sup.headers)
    assert one.status_code == 200 and one.json()["current"] is False
    reads = audits(db, action="read")
    assert [(e.actor, e.after and e.after["what"]) for e in reads] == [
        ("staff:sup39", "ipra_history"), ("staff:sup39", "ipra")]
    # another region: 404, the same as a missing one
    assert api.get(f"/api/ipra/{rows[0]['id']}",
                   headers=staff["sup16"].headers).status_code == 404
    assert api.get(f"/api/persons/{person_id}/ipra",
                   headers=staff["coord16"].headers).status_code == 404
    assert api.get("/api/ipra/999999", headers=sup.headers).status_code == 404
    assert api.get(f"/api/ipra/{2**31}", headers=sup.headers).status_code == 422


def test_api_refuses_a_bad_file_with_every_field(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    before = table_snapshot(db)
    r = api.post("/api/ipra", headers=staff["coord39"].headers,
                 json=extract(ipra__measures__0__due="2030-01-01", ipra__kind="child"))
    assert r.status_code == 422
    fields = {(e["field"], e["rule"]) for e in r.json()["errors"]}
    assert ("ipra.kind", "kind_fits_age") in fields
    assert any(f.startswith("ipra.measures[0]") for f, _ in fields)
    assert "112-233-445" not in r.text and "Синтетова" not in r.text
    assert table_snapshot(db) == before
    bad = api.post("/api/ipra", headers={**staff["coord39"].headers,
                                         "content-type": "application/json"},
                   content=b"{oops")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "$"
    assert table_snapshot(db) == before
    # another region's coordinator cannot import a region-39 person's ИПРА
    assert api.post("/api/ipra", json=extract(),
                    headers=staff["coord16"].headers).status_code == 404
    assert table_snapshot(db) == before
