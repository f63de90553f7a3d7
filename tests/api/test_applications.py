"""Coordinators register applications; bad input is refused naming the field and the rule,
and changes nothing; staff see only their region's routes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from api.app import create_app
from engine.clock import DbClock
from engine.seed import seed_agencies
from engine.settings import Settings
from engine.staff import create_staff
from models.persons import Person
from models.routes import Route

GOOD: dict[str, Any] = {"full_name": "Синтетиков Иван", "snils": "112-233-445 95",
                        "birth_date": "1990-05-01", "template": "supported_living"}


@pytest.fixture
def api(db: Engine, clock: DbClock) -> tuple[TestClient, dict[str, str]]:
    with Session(db) as s:
        seed_agencies(s)
        _, coord = create_staff(s, id="coord39", display_name="К", role="coordinator",
                                region="39")
        _, other = create_staff(s, id="coord16", display_name="К", role="coordinator",
                                region="16")
        _, sup = create_staff(s, id="sup39", display_name="Р", role="supervisor", region="39")
        s.commit()
    client = TestClient(create_app(db, settings=Settings(environment="test",
                                                         prefect_mirror=False), clock=clock))
    return client, {"coord": coord, "other": other, "sup": sup}


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows(db: Engine) -> tuple[int, int]:
    with Session(db) as s:
        return (s.exec(select(func.count()).select_from(Person)).one(),
                s.exec(select(func.count()).select_from(Route)).one())


def test_register_application_starts_the_route(api: tuple[TestClient, dict[str, str]],
                                               db: Engine) -> None:
    client, t = api
    r = client.post("/api/applications", json=GOOD, headers=h(t["coord"]))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "active" and body["steps"][0]["status"] == "awaiting"
    assert body["steps"][0]["send_by_date"] == "2025-03-04"  # 1 working day (298-п п.10)
    assert "snils" not in r.text and "Синтетиков" not in r.text
    # the same SNILS again is the same person with a second route
    assert client.post("/api/applications", json={**GOOD, "snils": "11223344595"},
                       headers=h(t["coord"])).status_code == 201
    assert rows(db) == (1, 2)
    listed = client.get("/api/routes", headers=h(t["sup"])).json()
    assert len(listed) == 2
    assert client.get("/api/routes", headers=h(t["other"])).json() == []
    rid = body["id"]
    assert client.get(f"/api/routes/{rid}", headers=h(t["coord"])).status_code == 200
    assert client.get(f"/api/routes/{rid}", headers=h(t["other"])).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"snils": "112-233-445 96"}, "snils"),
        ({"snils": "12345"}, "snils"),
        ({"template": "nope"}, "template"),
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"full_name": ""}, "full_name"),
        ({"registered_at": "2025-03-03T10:00:00"}, "registered_at"),
    ],
)
def test_bad_application_names_the_field_and_changes_nothing(
    api: tuple[TestClient, dict[str, str]], db: Engine, change: dict[str, str], field: str
) -> None:
    client, t = api
    r = client.post("/api/applications", json={**GOOD, **change}, headers=h(t["coord"]))
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(field), r.json()["detail"]
    assert rows(db) == (0, 0)


def test_application_refused_without_token_or_in_another_region(
    api: tuple[TestClient, dict[str, str]], db: Engine
) -> None:
    client, t = api
    assert client.post("/api/applications", json=GOOD).status_code == 401
    assert client.post("/api/applications", json=GOOD, headers=h(t["sup"])).status_code == 403
    r = client.post("/api/applications", json={**GOOD, "region": "16"}, headers=h(t["coord"]))
    assert r.status_code == 403 and r.json()["detail"].startswith("region")
    r = client.post("/api/applications", json={**GOOD, "region": "99"}, headers=h(t["coord"]))
    assert r.status_code == 422 and "region" in r.json()["detail"]
    assert rows(db) == (0, 0)
