"""Bulk registration (``rehab import``): each route is formed exactly as the single
registration forms it, and a file with a bad line is refused whole, every error listed."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlmodel import Session

from api.app import create_app
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.persons.bulk_import import ImportRefusedError, import_file, read_applications
from engine.routes.transitions import EngineConfig
from engine.staff.accounts import create_staff
from models.agencies import Agency
from models.persons import Person
from models.routes import Route
from sim.seed import seed_agencies, synthetic_snils

SETTINGS = Settings(environment="test", prefect_mirror=True,
                    public_base_url="http://127.0.0.1:9")

# one line of each kind: an agency on HTTP (a send job), one working from its inbox
# (placed there at once, awaiting receipt), ИПРА deadlines (complete-by ladders), a
# representative and an earlier registration time
LINES: list[dict[str, Any]] = [
    {"full_name": "Синтетиков Иван", "birth_date": "1990-05-01",
     "template": "supported_living"},
    {"full_name": "Примерова Мария", "birth_date": "1975-11-30", "template": "accompaniment",
     "registered_at": "2025-02-27T16:30:00+02:00",
     "ipra_deadlines": {"rehabilitation_route": "2025-04-30", "route_support": "2025-06-01"}},
    {"full_name": "Тестов Алексей", "birth_date": "2001-01-15",
     "template": "social_employment", "representative": "Тестова Ольга (мать)"},
]


def _with_snils(lines: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{**line, "snils": synthetic_snils(rng)} for line in lines]


def _table(conn: Any, name: str, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        text(f"SELECT * FROM {name} WHERE {where} ORDER BY id"), params)]


def _route_rows(db: Engine, route_id: str) -> dict[str, Any]:
    """Everything one registration wrote for the route, with its identifiers and the
    instants of real time replaced by stable names (what must be equal is the rest)."""
    with db.connect() as conn:
        route = _table(conn, "route", "id = :r", {"r": route_id})
        steps = sorted(_table(conn, "step", "route_id = :r", {"r": route_id}),
                       key=lambda s: s["seq"])
        step_ids = [s["id"] for s in steps]
        person = _table(conn, "person", "id = :p", {"p": route[0]["person_id"]})
        # every step's request, in step order (a data template opens its first steps at
        # once: accompaniment's МСЭ informing and the route's forming in parallel)
        requests = [q for sid in step_ids
                    for q in _table(conn, "agency_request", "step_id = :s", {"s": sid})]
        timers = _table(conn, "timer", "route_id = :r", {"r": route_id})
        refs = [route_id] + [q["id"] for q in requests]
        jobs = [dict(r._mapping) for r in conn.execute(text(
            "SELECT kind, ref, generation, attempts FROM job ORDER BY id"))
            if r.ref in refs]
        audit = [dict(r._mapping) for r in conn.execute(text(
            "SELECT actor, entity, entity_id, route_id, action, before, after, reason, at "
            "FROM audit_event WHERE route_id = :r OR entity_id = :p ORDER BY id"),
            {"r": route_id, "p": person[0]["id"]})]
    names: dict[str, str] = {route_id: "ROUTE", person[0]["id"]: "PERSON",
                             person[0]["snils"]: "SNILS", person[0]["full_name"]: "NAME"}
    names.update({sid: f"STEP{i}" for i, sid in enumerate(step_ids)})
    names.update({q["id"]: f"REQUEST{i}" for i, q in enumerate(requests)})
    names.update({str(t["id"]): f"TIMER{i}" for i, t in enumerate(timers)})

    def named(v: Any) -> Any:
        if isinstance(v, str) and v.startswith(("{", "[")):
            try:
                v = json.loads(v)  # a JSON column read as text (SQLite)
            except ValueError:
                return names.get(v, v)
        if isinstance(v, dict):
            return {k: named(x) for k, x in v.items()}
        if isinstance(v, list):
            return [named(x) for x in v]
        if isinstance(v, str):
            return names.get(v, v)
        return v

    real_time = {"created_at", "real_at", "due_at_real"}
    out = {"route": route, "steps": steps, "person": person, "requests": requests,
           "timers": timers, "jobs": jobs, "audit": audit}
    return {k: [{c: named(v) for c, v in row.items() if c not in real_time and c != "id"}
                for row in rows] for k, rows in out.items()}


@pytest.fixture
def both(db: Engine, clock: DbClock) -> tuple[TestClient, str]:
    with Session(db) as s:
        seed_agencies(s, endpoints={"msp39": "http://127.0.0.1:9/agencies/msp39"})
        # one provider: the least loaded one is then the same for both paths (the single
        # registrations, made first, would load the other provider's count)
        second = s.get(Agency, "psu39b")
        assert second is not None
        second.active = False
        s.add(second)
        _, token = create_staff(s, id="coord39", display_name="К", role="coordinator",
                                region="39")
        s.commit()
    return TestClient(create_app(db, settings=SETTINGS, clock=clock)), token


def test_import_writes_the_rows_the_single_registration_writes(
        db: Engine, clock: DbClock, both: tuple[TestClient, str], tmp_path: Path) -> None:
    client, token = both
    single = _with_snils(LINES, seed=1)
    bulk = _with_snils(LINES, seed=2)  # the same applications of other (synthetic) persons
    single_ids = []
    for line in single:
        r = client.post("/api/applications", json=line,
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        single_ids.append(r.json()["id"])
    path = tmp_path / "apps.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in bulk))
    result = import_file(db, EngineConfig.from_settings(SETTINGS), path, now=clock.now(),
                         actor="staff:coord39", coordinator_id="coord39")
    assert result.routes == 3 and result.persons_created == 3
    for a, b in zip(single_ids, result.route_ids, strict=True):
        rows_a, rows_b = _route_rows(db, a), _route_rows(db, b)
        for what in rows_a:
            assert rows_b[what] == rows_a[what], what
    # the inbox route's request lies in its inbox and the HTTP ones wait for their send job
    kinds = sorted(j["kind"] for b in result.route_ids for j in _route_rows(db, b)["jobs"])
    assert kinds == ["mirror_route"] * 3 + ["send_request"] * 2, kinds


def test_a_file_with_bad_lines_is_refused_whole(db: Engine, clock: DbClock,
                                                both: tuple[TestClient, str],
                                                tmp_path: Path) -> None:
    good = _with_snils(LINES, seed=3)
    clash = {**good[0], "full_name": "Другой Человек"}  # the same SNILS, another person
    lines = [json.dumps(good[0], ensure_ascii=False),
             "{not json",
             json.dumps({**good[1], "snils": "123-456-789 00"}, ensure_ascii=False),
             "",
             json.dumps({**good[2], "template": "nope", "extra": 1}, ensure_ascii=False),
             json.dumps({**good[2], "birth_date": "2030-01-01"}, ensure_ascii=False),
             json.dumps(clash, ensure_ascii=False),
             json.dumps({**good[1], "ipra_deadlines": {"no_such_step": "2025-05-01"}},
                        ensure_ascii=False)]
    path = tmp_path / "apps.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with Session(db) as s:
        before = (s.exec(select(func.count()).select_from(Person)).one(),
                  s.exec(select(func.count()).select_from(Route)).one())
    with pytest.raises(ImportRefusedError) as caught:
        import_file(db, EngineConfig.from_settings(SETTINGS), path, now=clock.now(),
                    actor="cli:test")
    got = [(e.line, e.field) for e in caught.value.errors]
    assert got == [(2, "line"), (3, "snils"), (5, "template"), (5, "extra"),
                   (6, "birth_date"), (7, "snils"), (8, "ipra_deadlines.no_such_step")]
    by_line = {e.line: e.rule for e in caught.value.errors}
    assert "not valid JSON" in by_line[2]
    assert "given on line 1" in by_line[7]
    assert str(caught.value.errors[0]).startswith("line 2: line: ")
    with Session(db) as s:
        after = (s.exec(select(func.count()).select_from(Person)).one(),
                 s.exec(select(func.count()).select_from(Route)).one())
    assert after == before  # nothing stored


def test_a_snils_held_by_another_person_is_refused(db: Engine, clock: DbClock,
                                                   both: tuple[TestClient, str],
                                                   tmp_path: Path) -> None:
    client, token = both
    line = _with_snils(LINES, seed=4)[0]
    assert client.post("/api/applications", json=line,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 201
    path = tmp_path / "apps.jsonl"
    path.write_text(json.dumps({**line, "birth_date": "1991-05-01"}) + "\n"
                    + json.dumps(line) + "\n")
    with pytest.raises(ImportRefusedError) as caught:
        import_file(db, EngineConfig.from_settings(SETTINGS), path, now=clock.now(),
                    actor="cli:test")
    assert [(e.line, e.field) for e in caught.value.errors] == [(1, "snils")]
    assert "already registered" in caught.value.errors[0].rule
    # the same person again (same data) is the person we know: a second route
    path.write_text(json.dumps(line) + "\n")
    result = import_file(db, EngineConfig.from_settings(SETTINGS), path, now=clock.now(),
                         actor="cli:test")
    assert (result.routes, result.persons_created, result.persons_reused) == (1, 0, 1)


def test_read_applications_skips_blank_lines_and_numbers_from_one() -> None:
    apps, errors = read_applications(["", json.dumps({**LINES[0], "snils": "112-233-445 95"}),
                                      "[1, 2]"])
    assert [no for no, _ in apps] == [2]
    assert [(e.line, e.field, e.rule) for e in errors] == [
        (3, "line", "must be a JSON object (one application)")]


def test_the_example_of_the_docs_imports(db: Engine, clock: DbClock,
                                         both: tuple[TestClient, str], tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "import.md").read_text()
    example = doc.split("Example (`applications.jsonl`")[1].split("```json\n")[1].split("```")[0]
    path = tmp_path / "applications.jsonl"
    path.write_text(example)
    result = import_file(db, EngineConfig.from_settings(SETTINGS), path, now=clock.now(),
                         actor="cli:test")
    assert result.routes == len(example.strip().splitlines()) == 3
