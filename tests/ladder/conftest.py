"""Fixtures of the ladder tests: staff users, routes, a sweep helper, the supervisor app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.supervisor import history_router, router
from engine.clock import DbClock
from engine.routes import EngineConfig, register_application
from engine.staff import create_staff
from engine.sweeper import SweepResult, sweep_due_timers
from models.persons import Person
from models.routes import Route
from models.staff import StaffRole
from models.timers import Escalation


@dataclass(frozen=True)
class Staff:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def staff(db: Engine, seeded: list[Person]) -> dict[str, Staff]:
    """coord39 (with e-mail), sup39 (with e-mail), sup16 (another region), admin."""
    out: dict[str, Staff] = {}
    with Session(db) as s:
        for sid, role, region, email in (
            ("coord39", StaffRole.coordinator, "39", "coord39@example.org"),
            ("sup39", StaffRole.supervisor, "39", "sup39@example.org"),
            ("sup16", StaffRole.supervisor, "16", None),
            ("coord16", StaffRole.coordinator, "16", None),
            ("admin", StaffRole.admin, "39", None),
        ):
            _user, token = create_staff(s, id=sid, display_name=sid, role=role, region=region,
                                        email=email)
            out[sid] = Staff(sid, token)
        s.commit()
    return out


def new_route(db: Engine, clock: DbClock, cfg: EngineConfig, person: Person, *,
              template: str = "supported_living", coordinator_id: str | None = "coord39",
              at: datetime | None = None) -> str:
    if at is not None:
        clock.freeze(at)
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=person.id,
                                     template_code=template, coordinator_id=coordinator_id)
        s.commit()
    return route.id


def sweep(db: Engine, clock: DbClock, cfg: EngineConfig, **kw: object) -> SweepResult:
    return sweep_due_timers(db, clock, cfg, sweeper_id="t", **kw)  # type: ignore[arg-type]


def escalations(db: Engine, route_id: str) -> list[Escalation]:
    with Session(db) as s:
        return list(s.exec(select(Escalation).where(Escalation.route_id == route_id)
                           .order_by(col(Escalation.id))))


def route_of(db: Engine, route_id: str) -> Route:
    with Session(db) as s:
        r = s.get(Route, route_id)
        assert r is not None
        return r


@pytest.fixture
def client(db: Engine, clock: DbClock, cfg: EngineConfig) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router)
    app.include_router(history_router)
    app.state.engine = db
    app.state.clock = clock
    app.state.cfg = cfg
    with TestClient(app) as c:
        yield c
