"""Coordinators register applications; bad input is refused naming the field and the rule,
and changes nothing; staff see only their region's routes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.app import create_app
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.persons import applications
from engine.staff.accounts import create_staff
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Route
from sim.seed import seed_agencies
from tests.api.conftest import Snapshot

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
                                                         prefect_mirror=False,
                                                         admin_token=BUILTIN_ADMIN),
                                   clock=clock))
    return client, {"coord": coord, "other": other, "sup": sup, "coord_id": "coord39",
                    "other_id": "coord16"}


def h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BUILTIN_ADMIN = "adm-5d0c2e7f41"


def audit_actions(db: Engine) -> list[tuple[str, str]]:
    with Session(db) as s:
        return [(e.action, e.actor) for e in s.exec(select(AuditEvent).order_by(
            col(AuditEvent.id)))]


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
    # in the (inbox) agency's inbox, awaiting receipt (298-п Порядок п.11)
    assert body["status"] == "active" and body["steps"][0]["status"] == "sending"
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
        ({"full_name": "     "}, "full_name"),  # blank: stripped, then too short
        ({"full_name": "  a\t "}, "full_name"),
        ({"full_name": "123 456"}, "full_name"),  # no letters
        ({"registered_at": "2025-03-03T10:00:00"}, "registered_at"),
        # after the business clock's now (Mon 03.03.2025 10:00 Kaliningrad)
        ({"registered_at": "2025-03-03T10:00:01+02:00"}, "registered_at"),
        ({"registered_at": "2025-03-10T09:00:00+02:00"}, "registered_at"),
        # before the production calendar's first year: a calendar error, named
        ({"registered_at": "1999-06-10T10:00:00+03:00"}, "registered_at"),
        # born after the registration day, though before the machine's today
        ({"birth_date": "2025-03-04"}, "birth_date"),
        ({"birth_date": "2025-03-03"}, "birth_date"),
        ({"registered_at": "2025-01-15T10:00:00+02:00", "birth_date": "2025-02-01"},
         "birth_date"),
        ({"birth_date": "1899-12-31"}, "birth_date"),
        ({"nickname": "Ваня"}, "nickname"),  # unknown fields are refused
        ({"region": "39", "extra": {"a": 1}}, "extra"),
    ],
)
def test_bad_application_names_the_field_and_changes_nothing(
    api: tuple[TestClient, dict[str, str]], db: Engine, snapshot: Callable[[], Snapshot],
    change: dict[str, str], field: str
) -> None:
    client, t = api
    before = snapshot()
    r = client.post("/api/applications", json={**GOOD, **change}, headers=h(t["coord"]))
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}:"), r.json()["detail"]
    assert snapshot() == before
    assert rows(db) == (0, 0)


def test_the_registration_day_itself_is_accepted(
        api: tuple[TestClient, dict[str, str]], db: Engine) -> None:
    client, t = api
    r = client.post("/api/applications", headers=h(t["coord"]), json={
        **GOOD, "full_name": "  Синтетиков   Иван  ", "birth_date": "2025-03-02",
        "registered_at": "2025-03-03T10:00:00+02:00"})
    assert r.status_code == 201, r.text
    with Session(db) as s:
        assert s.exec(select(Person)).one().full_name == "Синтетиков Иван"  # normalised


def test_broken_json_is_400_and_changes_nothing(
        api: tuple[TestClient, dict[str, str]], snapshot: Callable[[], Snapshot]) -> None:
    client, t = api
    before = snapshot()
    r = client.post("/api/applications", content=b'{"full_name": "\xd0', headers={
        **h(t["coord"]), "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "body: not valid JSON"}
    r = client.post("/api/applications", content=b'{"full_name": ', headers={
        **h(t["coord"]), "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"] == "body: not valid JSON"
    assert snapshot() == before


def test_errors_never_echo_personal_data(api: tuple[TestClient, dict[str, str]],
                                         snapshot: Callable[[], Snapshot]) -> None:
    """A refused application's reply names the field and the rule, not the input (a SNILS
    or a name would otherwise come back and land in logs)."""
    client, t = api
    before = snapshot()
    long_name = "Синтетикова" * 30  # too long
    bad_snils = "112-233-445 96"  # wrong check number
    r = client.post("/api/applications", headers=h(t["coord"]), json={
        **GOOD, "full_name": long_name, "snils": bad_snils, "birth_date": "1990-13-45"})
    assert r.status_code == 422, r.text
    assert "Синтетикова" not in r.text and "445" not in r.text and "1990-13" not in r.text
    body = r.json()
    fields = {e["loc"][-1] for e in body["errors"]}
    assert fields == {"full_name", "snils", "birth_date"}
    assert all("input" not in e for e in body["errors"])
    too_long = next(e for e in body["errors"] if e["loc"][-1] == "full_name")
    assert too_long["ctx"] == {"max_length": 300}  # the rule is kept
    assert snapshot() == before


def test_same_snils_with_other_data_is_a_conflict(
        api: tuple[TestClient, dict[str, str]], db: Engine,
        snapshot: Callable[[], Snapshot]) -> None:
    client, t = api
    assert client.post("/api/applications", json=GOOD, headers=h(t["coord"])).status_code == 201
    before = snapshot()
    for n, change in enumerate(({"full_name": "Другой Человек"}, {"birth_date": "1991-05-01"})):
        r = client.post("/api/applications", json={**GOOD, **change}, headers=h(t["coord"]))
        assert r.status_code == 409, r.text
        assert r.json()["detail"].startswith("snils:")
        assert "112-233" not in r.text and "Человек" not in r.text
        after = snapshot()
        # nothing changes but the audit of the attempt (identifiers only)
        assert {k: v for k, v in after.items() if k != "audit_event"} == \
            {k: v for k, v in before.items() if k != "audit_event"}
        assert after["audit_event"][0] == before["audit_event"][0] + n + 1
        assert audit_actions(db)[-1] == ("registration_conflict", f"staff:{t['coord_id']}")
    # the same person written differently (case, spaces, ё/е) is the same person
    r = client.post("/api/applications", headers=h(t["coord"]),
                    json={**GOOD, "full_name": "синтетиков   ИВАН"})
    assert r.status_code == 201, r.text
    assert rows(db) == (1, 2)


def test_person_created_by_a_concurrent_registration_is_reused(
        api: tuple[TestClient, dict[str, str]], db: Engine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race: our lookup by SNILS misses, another registration commits the same person,
    then we insert. SNILS is unique, so the insert fails and the committed person is used."""
    client, t = api
    with Session(db) as s:  # the other registration, committed
        s.add(Person(id="pn_other", full_name=GOOD["full_name"], snils=GOOD["snils"],
                     birth_date=date(1990, 5, 1), region="39"))
        s.commit()
    monkeypatch.setattr(applications, "find_person", lambda _s, _snils: None)
    r = client.post("/api/applications", json=GOOD, headers=h(t["coord"]))
    assert r.status_code == 201, r.text
    with Session(db) as s:
        assert [p.id for p in s.exec(select(Person))] == ["pn_other"]
        assert s.exec(select(Route)).one().person_id == "pn_other"
    # the same race with other data: 409, nothing added
    monkeypatch.setattr(applications, "find_person", lambda _s, _snils: None)
    r = client.post("/api/applications", json={**GOOD, "birth_date": "1980-01-01"},
                    headers=h(t["coord"]))
    assert r.status_code == 409 and r.json()["detail"].startswith("snils:")
    assert rows(db) == (1, 1)


def test_concurrent_registrations_of_one_new_person_create_one_person(
        api: tuple[TestClient, dict[str, str]], db: Engine) -> None:
    client, t = api
    n = 6
    barrier = threading.Barrier(n)
    codes: list[int] = []

    def post() -> None:
        barrier.wait()
        codes.append(client.post("/api/applications", json=GOOD,
                                 headers=h(t["coord"])).status_code)

    threads = [threading.Thread(target=post) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert codes == [201] * n
    assert rows(db) == (1, n)


def test_snils_is_unique_in_the_database(db: Engine) -> None:
    with Session(db) as s:
        s.add(Person(id="pn_a", full_name="А", snils=GOOD["snils"], birth_date=date(1990, 1, 1),
                     region="39"))
        s.commit()
    with Session(db) as s:
        s.add(Person(id="pn_b", full_name="Бэтесткин Пётр", snils=GOOD["snils"],
                     birth_date=date(1977, 7, 17), region="39"))
        with pytest.raises(IntegrityError) as err:
            s.commit()
    # 152-ФЗ: the statement's parameters (a name, a birth date) are not in the error text
    # (PostgreSQL's own DETAIL names the duplicated key; the API catches that error)
    text = str(err.value)
    assert "parameters hidden" in text
    assert "Бэтесткин" not in text and "1977" not in text and "pn_b" not in text


@pytest.mark.parametrize("query", ["status=bogus", "limit=0", "limit=1001", "limit=x"])
def test_route_list_refuses_bad_query(api: tuple[TestClient, dict[str, str]],
                                      query: str) -> None:
    client, t = api
    r = client.get(f"/api/routes?{query}", headers=h(t["sup"]))
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(query.split("=")[0] + ":"), r.json()


def test_route_list_filters_by_status(api: tuple[TestClient, dict[str, str]]) -> None:
    client, t = api
    assert client.post("/api/applications", json=GOOD, headers=h(t["coord"])).status_code == 201
    assert len(client.get("/api/routes?status=active", headers=h(t["sup"])).json()) == 1
    assert client.get("/api/routes?status=completed", headers=h(t["sup"])).json() == []


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


def test_another_regions_person_is_neither_confirmed_nor_denied(
        api: tuple[TestClient, dict[str, str]], db: Engine,
        snapshot: Callable[[], Snapshot]) -> None:
    """No SNILS-and-name oracle across regions (issue 8): a coordinator of region 16 posting
    the SNILS of a person of region 39 gets the same 409 whether the name and birth date are
    right or wrong, and every attempt is audited."""
    client, t = api
    assert client.post("/api/applications", json=GOOD, headers=h(t["coord"])).status_code == 201
    before = snapshot()
    replies = []
    for change in ({}, {"full_name": "Другой Человек"}, {"birth_date": "1991-05-01"}):
        r = client.post("/api/applications", headers=h(t["other"]),
                        json={**GOOD, **change, "region": "16"})
        assert r.status_code == 409, r.text
        replies.append(r.json())
    assert replies[0] == replies[1] == replies[2]
    assert replies[0]["detail"].startswith("snils:") and "Иван" not in str(replies[0])
    after = snapshot()
    assert {k: v for k, v in after.items() if k != "audit_event"} == \
        {k: v for k, v in before.items() if k != "audit_event"}
    assert audit_actions(db)[-3:] == [("registration_refused_other_region",
                                       f"staff:{t['other_id']}")] * 3


def test_builtin_admin_token_does_not_open_the_route_and_supervisor_apis(
        api: tuple[TestClient, dict[str, str]]) -> None:
    """REHAB_ADMIN_TOKEN is the operator's (clock control): the route and supervisor APIs
    answer 403 naming its scope, not 401 as to an unknown token (issue 8)."""
    client, _ = api
    for method, url in (("GET", "/api/routes"), ("GET", "/api/routes/rt_x"),
                        ("GET", "/api/routes/rt_x/history"),
                        ("GET", "/api/supervisor/escalations"),
                        ("POST", "/api/applications")):
        r = client.request(method, url, headers=h(BUILTIN_ADMIN),
                           json=GOOD if method == "POST" else None)
        assert r.status_code == 403, (url, r.text)
        assert "REHAB_ADMIN_TOKEN" in r.json()["detail"]
    r = client.post("/api/clock/advance", json={"seconds": 60}, headers=h(BUILTIN_ADMIN))
    assert r.status_code == 200, r.text
