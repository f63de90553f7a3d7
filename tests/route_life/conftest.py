"""Fixtures of the route's-life tests (004 п.11–13): an accompaniment route formed from the
example ИПРА (docs/examples/ipra-extract.json) by the person-file API, its three first
steps open at once (the data template with parallel steps), every participant on the inbox
channel (tests/conftest.py ``seeded``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.routes import forming
from models import template_files
from models.agencies import AgencyRequest
from models.audit import AuditEvent
from models.routes import Route, Step
from models.templates import _data_template
from models.timers import Timer, TimerStatus
from tests.ladder.conftest import Staff
from tests.person_file.conftest import api, consent, extract, form, now, staff  # noqa: F401


@pytest.fixture(autouse=True)
def _accompaniment_v1(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # the route's life on accompaniment v1: the steps these tests name, without the ИПРА's
    # measures as steps of their own (v2, ``from_ipra``: tests/ipra_plan)
    monkeypatch.setattr(forming, "latest", lambda code: template_files.version_of(code, 1))
    _data_template.cache_clear()
    yield
    _data_template.cache_clear()


def register(client: TestClient, coord: Staff, ipra: dict[str, Any] | None = None) -> str:
    """The example ИПРА imported and an accompaniment application registered: its route."""
    r = client.post("/api/ipra", json=ipra or extract(), headers=coord.headers)
    assert r.status_code == 201, r.text
    r = client.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form("accompaniment"), "consent": consent()})
    assert r.status_code == 201, r.text
    route_id: str = r.json()["route_id"]
    return route_id


def steps(db: Engine, route_id: str) -> dict[str, Step]:
    with Session(db) as s:
        return {x.kind: x for x in s.exec(select(Step).where(Step.route_id == route_id))}


def route(db: Engine, route_id: str) -> Route:
    with Session(db) as s:
        r = s.get(Route, route_id)
        assert r is not None
        return r


def request_of(db: Engine, step: Step) -> AgencyRequest:
    with Session(db) as s:
        req = s.get(AgencyRequest, step.current_request_id)
        assert req is not None
        return req


def pending(db: Engine, step_id: str) -> list[Timer]:
    with Session(db) as s:
        return list(s.exec(select(Timer).where(Timer.step_id == step_id,
                                               Timer.status == TimerStatus.pending)))


def route_audits(db: Engine, route_id: str, action: str) -> list[AuditEvent]:
    with Session(db) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.route_id == route_id,
                                                    AuditEvent.action == action)
                           .order_by(col(AuditEvent.id))))
