"""The end of accompaniment (004 п.13), each on the moved clock: а) the ИПРА's term ends —
the route's timer at the end of its last day, fired by the sweeper; б) the person's
application to stop; в) a new ИПРА with no degree-2/3 limitation left. Each ends the route:
open requests withdrawn with a cancel notice, timers dropped, audit ``terminated`` with its
reason. A new ИПРА that keeps the grounds moves the expiry timer instead."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.persons.bulk_import import import_file
from engine.routes.termination import fire_due_route_timers, terminate
from engine.routes.transitions import EngineConfig
from models.agencies import AgencyRequest, RequestState
from models.route_life import EndReason, RouteTimer, RouteTimerStatus
from models.routes import CancelNotice, Route, RouteStatus, StepStatus
from models.timers import Timer, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, sweep
from tests.person_file.conftest import extract, newer_extract
from tests.route_life.conftest import register, route, route_audits, steps


def _ended(db: Engine, route_id: str, reason: str) -> dict[str, Any]:
    """The route is terminated for ``reason``: every step closed, no request open, no timer
    pending, a cancel notice per withdrawn request; the audit's details."""
    r = route(db, route_id)
    assert r.status is RouteStatus.terminated and r.end_reason == reason
    assert all(x.status.terminal for x in steps(db, route_id).values())
    with Session(db) as s:
        assert s.exec(select(Timer).where(Timer.route_id == route_id,
                                          Timer.status == TimerStatus.pending)).all() == []
        assert s.exec(select(RouteTimer).where(
            RouteTimer.route_id == route_id,
            RouteTimer.status == RouteTimerStatus.pending)).all() == []
        reqs = s.exec(select(AgencyRequest).join_from(
            AgencyRequest, CancelNotice, isouter=True)).all()
        assert reqs and all(q.state is RequestState.cancelled for q in reqs)
        assert len(s.exec(select(CancelNotice)).all()) == len(reqs)
    [event] = route_audits(db, route_id, "terminated")
    assert event.after is not None and event.after["reason"] == reason
    return event.after


def test_the_ipra_expiry_timer_ends_the_route_at_the_end_of_its_last_day(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id = register(api, staff["coord39"])
    with Session(db) as s:
        [timer] = s.exec(select(RouteTimer).where(RouteTimer.route_id == route_id)).all()
        assert timer.due_date == date(2027, 12, 1)  # the ИПРА's valid_until
        assert timer.due_at == kaliningrad(2027, 12, 2, 0, 0)
    clock.freeze(kaliningrad(2027, 12, 1, 23, 59))
    sweep(db, clock, cfg)
    assert route(db, route_id).status is RouteStatus.active
    clock.freeze(kaliningrad(2027, 12, 2, 0, 1))
    result = sweep(db, clock, cfg)
    assert result.fired.get("ipra_expiry") == 1
    details = _ended(db, route_id, "ipra_expired")
    assert details["ipra_last_day"] == "2027-12-01"
    assert sweep(db, clock, cfg).fired.get("ipra_expiry") is None  # fired once


def test_the_persons_application_to_stop_ends_the_route(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    bad = api.post(f"/api/routes/{route_id}/terminate", headers=coord.headers,
                   json={"application_date": "2026-01-15"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("application_date:")
    assert route(db, route_id).status is RouteStatus.active
    r = api.post(f"/api/routes/{route_id}/terminate", headers=coord.headers,
                 json={"application_date": "2026-01-13"})
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == "person_request" and r.json()["cancel_notices"] == 3
    details = _ended(db, route_id, "person_request")
    assert details["application_date"] == "2026-01-13"
    again = api.post(f"/api/routes/{route_id}/terminate", headers=coord.headers,
                     json={"application_date": "2026-01-13"})
    assert again.status_code == 422 and "terminated" in again.json()["detail"]


def test_a_new_ipra_without_degree_2_or_3_limitations_ends_the_route(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    # self-care and movement now degree 1; orientation and communication were degree 1
    r = api.post("/api/ipra", json=newer_extract(), headers=coord.headers)
    assert r.status_code == 201, r.text
    details = _ended(db, route_id, "grounds_removed")
    assert details["limitations"] == {"self_care": 1, "movement": 1}
    closed = steps(db, route_id)
    assert all(x.status is StepStatus.cancelled for x in closed.values()
               if not (x.outcome_note or "").startswith("не применяется"))


def test_a_new_ipra_that_keeps_the_grounds_moves_the_expiry_timer(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    doc = extract(extract__extract_id="fri-39-2026-000008", ipra__number="78.5.39/2026",
                  ipra__issued_on="2026-01-05", ipra__valid_from="2026-01-05",
                  ipra__valid_until="2027-06-30")
    doc["ipra"]["measures"] = [m for m in doc["ipra"]["measures"]
                               if m["due"] <= "2027-06-30"]
    r = api.post("/api/ipra", json=doc, headers=coord.headers)
    assert r.status_code == 201, r.text
    assert route(db, route_id).status is RouteStatus.active
    with Session(db) as s:
        rows = s.exec(select(RouteTimer).where(RouteTimer.route_id == route_id)
                      .order_by(RouteTimer.id)).all()
    assert [(t.due_date, t.status) for t in rows] == [
        (date(2027, 12, 1), RouteTimerStatus.cancelled),
        (date(2027, 6, 30), RouteTimerStatus.pending)]


def test_a_route_of_the_bulk_import_gets_its_ipra_expiry_timer(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], tmp_path: Path) -> None:
    assert api.post("/api/ipra", json=extract(), headers=staff["coord39"].headers
                    ).status_code == 201
    path = tmp_path / "apps.jsonl"
    path.write_text(json.dumps({"full_name": "Синтетова Анна Петровна",
                                "birth_date": "1990-05-17", "snils": "11223344595",
                                "template": "accompaniment"}, ensure_ascii=False) + "\n")
    result = import_file(db, cfg, path, now=clock.now(), actor="staff:coord39")
    [route_id] = result.route_ids
    with Session(db) as s:
        [timer] = s.exec(select(RouteTimer).where(RouteTimer.route_id == route_id)).all()
    assert timer.due_date == date(2027, 12, 1) and timer.status is RouteTimerStatus.pending


def _read_before_the_locks(db: Engine, route_id: str) -> Route:
    """The route as a transaction read it before taking any lock (still active)."""
    with Session(db, expire_on_commit=False) as s:
        r = s.get(Route, route_id)
        assert r is not None and r.status is RouteStatus.active
        return r


def _completed_meanwhile(db: Engine, route_id: str) -> None:
    """Another transaction completes the route (its last answer applied) and commits."""
    with Session(db) as other:
        r = other.get(Route, route_id)
        assert r is not None
        r.status = RouteStatus.completed
        other.add(r)
        other.commit()


def test_a_termination_never_overwrites_a_route_completed_meanwhile(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """The route read before the locks is stale: under the steps' and the route's locks it
    is read afresh, and a route completed meanwhile is not terminated (nothing changed)."""
    route_id = register(api, staff["coord39"])
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    stale = _read_before_the_locks(db, route_id)
    _completed_meanwhile(db, route_id)
    with Session(db) as s:
        s.add(stale)  # in the session's identity map, as read before
        with pytest.raises(EngineError, match="is completed") as err:
            terminate(s, cfg, stale, reason=EndReason.person_request, now=clock.now(),
                      actor="staff:coord39")
        assert err.value.rule == "route_not_open"
        s.rollback()
    assert route(db, route_id).status is RouteStatus.completed
    assert route_audits(db, route_id, "terminated") == []
    assert not any(x.status is StepStatus.cancelled for x in steps(db, route_id).values())


def test_the_ipra_expiry_timer_of_a_route_completed_meanwhile_is_stale(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id = register(api, staff["coord39"])
    clock.freeze(kaliningrad(2027, 12, 2, 0, 1))
    stale = _read_before_the_locks(db, route_id)
    _completed_meanwhile(db, route_id)
    with Session(db) as s:
        s.add(stale)  # the sweeper's session.get would return it without a query
        out = fire_due_route_timers(s, cfg, now=clock.now(), actor="sweeper")
        s.commit()
    assert (out.fired, out.stale) == (0, 1)
    assert route(db, route_id).status is RouteStatus.completed
    assert route_audits(db, route_id, "terminated") == []
