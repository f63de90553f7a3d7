"""A new ИПРА is judged by each route kind's own grounds (``models.eligibility.ipra_grounds``):
accompaniment by 004 п.1 (п.13 в), social employment by its degree-3 work limitation
(001 Регламент п.3). The ИПРА-expiry timer is armed only for the kinds whose grounds are the
ИПРА's (accompaniment 004 п.13 а, social employment 001 Регламент п.3)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from models.route_life import RouteTimer, RouteTimerStatus
from models.routes import RouteStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff
from tests.person_file.conftest import extract, form
from tests.route_life.conftest import register, route, route_audits


def _social_employment(client: TestClient, coord: Staff) -> str:
    """A social-employment application of the person registered by ``register`` (the example
    ИПРА: work limitation degree 3, simple work only with significant help)."""
    r = client.post("/api/person-file/applications", headers=coord.headers,
                    json={"application": form("social_employment")})
    assert r.status_code == 201 and r.json()["eligible"] is True, r.text
    route_id: str = r.json()["route_id"]
    return route_id


def _new_ipra(limitations: list[dict[str, Any]]) -> dict[str, Any]:
    return extract(extract__extract_id="fri-39-2026-000011", ipra__number="81.5.39/2026",
                   ipra__issued_on="2026-01-05", ipra__valid_from="2026-01-05",
                   ipra__valid_until="2027-06-30", ipra__limitations=limitations,
                   ipra__measures=[])


def _pending_expiry(db: Engine, route_id: str) -> list[date]:
    with Session(db) as s:
        return [t.due_date for t in s.exec(select(RouteTimer).where(
            RouteTimer.route_id == route_id, RouteTimer.status == RouteTimerStatus.pending))]


def test_a_new_ipra_keeping_the_work_grounds_ends_accompaniment_not_social_employment(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    accompaniment = register(api, coord)
    social = _social_employment(api, coord)
    # both kinds end with the ИПРА's term: each has its timer on its last day
    assert _pending_expiry(db, accompaniment) == [date(2027, 12, 1)]
    assert _pending_expiry(db, social) == [date(2027, 12, 1)]
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    # self-care and movement now degree 1 (004 п.1 gone); work still degree 3 (001 п.3 kept)
    r = api.post("/api/ipra", headers=coord.headers, json=_new_ipra(
        [{"category": "self_care", "degree": 1}, {"category": "movement", "degree": 1},
         {"category": "work", "degree": 3}]))
    assert r.status_code == 201, r.text
    ended = route(db, accompaniment)
    assert (ended.status, ended.end_reason) == (RouteStatus.terminated, "grounds_removed")
    [event] = route_audits(db, accompaniment, "terminated")
    assert event.reason is not None and "363н п.13 в" in event.reason  # as before
    kept = route(db, social)
    assert kept.status is RouteStatus.active
    assert route_audits(db, social, "terminated") == []
    assert _pending_expiry(db, social) == [date(2027, 6, 30)]  # moved to the new ИПРА's term


def test_a_new_ipra_removing_the_work_grounds_ends_social_employment_citing_its_clause(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    register(api, coord)
    social = _social_employment(api, coord)
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    # work now degree 2: no longer 001 Регламент п.3's degree 3
    r = api.post("/api/ipra", headers=coord.headers, json=_new_ipra(
        [{"category": "self_care", "degree": 2}, {"category": "work", "degree": 2}]))
    assert r.status_code == 201, r.text
    ended = route(db, social)
    assert (ended.status, ended.end_reason) == (RouteStatus.terminated, "grounds_removed")
    [event] = route_audits(db, social, "terminated")
    assert event.after is not None
    assert event.after["grounds"] == [{"rule": "work_degree_3", "clause": "298-п Регламент п.3"}]
    assert event.reason is not None and "298-п Регламент п.3" in event.reason
    assert "363н" not in event.reason  # not accompaniment's clause
    assert _pending_expiry(db, social) == []


def test_supported_living_gets_no_ipra_expiry_timer(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    register(api, coord)
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form("supported_living")})
    assert r.status_code == 201 and r.json()["eligible"] is True, r.text
    # 000 п.10: the need of help, not the ИПРА's term, is its ground
    assert _pending_expiry(db, r.json()["route_id"]) == []
