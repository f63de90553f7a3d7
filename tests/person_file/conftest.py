"""Fixtures of the person's-file wiring tests: the app, staff of two regions, valid forms,
consents and ИПРА extracts (synthetic persons, never real)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, SQLModel, col, select

from api.app import create_app
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from models.audit import AuditEvent
from models.persons import Person
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, endpoint, staff  # noqa: F401  (fixtures)
from tests.person.forms import application, put

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ipra-extract.json"
REGISTERED = kaliningrad(2026, 1, 12, 10, 0)
NOW = kaliningrad(2026, 1, 12, 12, 0)  # Monday; the application was registered at 10:00


@pytest.fixture
def now(clock: DbClock) -> datetime:
    clock.freeze(NOW)
    return NOW


@pytest.fixture
def api(db: Engine, now: datetime, clock: DbClock, request: pytest.FixtureRequest) -> TestClient:
    request.getfixturevalue("staff")  # coord39, sup39, coord16, sup16, admin
    return TestClient(create_app(db, settings=Settings(environment="test",
                                                       prefect_mirror=False), clock=clock))


def form(kind: str = "accompaniment", **changes: Any) -> dict[str, Any]:
    """A valid application (tests/person/forms.py) of ``kind``; ``a__b=v`` sets a.b."""
    doc = application()
    if kind == "supported_living":
        doc["request"] = {"kind": "supported_living", "addressee": "Минсоцполитики КО"}
    elif kind == "social_employment":
        doc["request"] = {"kind": "social_employment", "addressee": "Минсоцполитики КО",
                          "preferences": "работа в мастерской"}
    for path, value in changes.items():
        doc = put(doc, path.replace("__", "."), value)
    return doc


def consent(purposes: tuple[str, ...] = ("accompaniment", "supported_living",
                                         "social_employment"), **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "consent_id": "cn_1", "version": 1, "subject_snils": "112-233-445 95",
        "subject_name": {"last_name": "Синтетова", "first_name": "Анна"},
        "given_by": {"kind": "person"},
        "purposes": list(purposes),
        "data_categories": ["identity", "snils", "contacts", "disability", "ipra"],
        "operator": {"name": "Министерство социальной политики Калининградской области",
                     "inn": "3906000000", "address": "г. Калининград"},
        "channel": "paper", "signature": "handwritten",
        "given_at": "2026-01-12T10:00:00+02:00", "expires_at": "2027-01-12T10:00:00+02:00",
    }
    for path, value in changes.items():
        doc = put(doc, path.replace("__", "."), value)
    return doc


def extract(**changes: Any) -> dict[str, Any]:
    """The documented example extract (docs/examples/ipra-extract.json)."""
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for path, value in changes.items():
        doc = put(doc, path.replace("__", "."), value)
    return copy.deepcopy(doc)


def newer_extract() -> dict[str, Any]:
    """A later ИПРА of the same person: self-care and movement now degree 1."""
    return extract(extract__extract_id="fri-39-2026-000007",
                   ipra__number="77.5.39/2026", ipra__issued_on="2026-01-05",
                   ipra__valid_from="2026-01-05",
                   ipra__limitations=[{"category": "self_care", "degree": 1},
                                      {"category": "movement", "degree": 1}])


def apply_with_ipra(api: TestClient, headers: dict[str, str], kind: str) -> str:
    """The example ИПРА extract filed, then an eligible application of ``kind`` with its
    consent: the new route's id."""
    assert api.post("/api/ipra", json=extract(), headers=headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=headers,
                 json={"application": form(kind), "consent": consent()})
    assert r.status_code == 201 and r.json()["eligible"] is True, r.text
    route_id: str = r.json()["route_id"]
    return route_id


def count(db: Engine, model: type[SQLModel]) -> int:
    with Session(db) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def audits(db: Engine, **where: str) -> list[AuditEvent]:
    with Session(db) as s:
        q = select(AuditEvent)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return list(s.exec(q.order_by(col(AuditEvent.id))))


def person_by_snils(db: Engine, snils: str = "112-233-445 95") -> Person | None:
    with Session(db) as s:
        return s.exec(select(Person).where(Person.snils == snils)).first()
