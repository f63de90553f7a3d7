"""Fixtures of the ИПРА-route tests: the person's-file app (tests/person_file/conftest.py),
data templates and parallel steps switched on, ИПРА extracts with chosen measures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from models.agencies import Agency, AnswerOutcome
from models.routes import Step
from models.templates import _data_template
from tests.ladder.conftest import Staff, endpoint, staff  # noqa: F401  (fixtures)
from tests.person_file.conftest import (  # noqa: F401  (fixtures)
    api,
    consent,
    extract,
    form,
    now,
)

HEALTH = {"direction": "medical", "title": "Восстановительная терапия",
          "executor": {"role": "health"}, "due": "2026-02-27"}
AIDS = {"direction": "technical_aids", "title": "Кресло-коляска комнатная",
        "executor": {"role": "sfr"}, "due": "2026-03-31", "funding": "federal"}
EDUCATION = {"direction": "psycho_pedagogical", "title": "Психолого-педагогическая помощь",
             "executor": {"role": "education"}, "due": "2026-04-30"}
SOCIAL = {"direction": "social", "title": "Социально-бытовая адаптация",
          "executor": {"role": "social_policy"}, "due": "2026-06-30"}


@pytest.fixture(autouse=True)
def _fresh_data_templates() -> Iterator[None]:
    """The data templates read afresh for each test (some tests add a version)."""
    _data_template.cache_clear()
    yield
    _data_template.cache_clear()


def ipra_doc(measures: list[dict[str, Any]], *, number: str = "1234.5.39/2025",
             issued_on: str = "2025-11-20") -> dict[str, Any]:
    doc = extract()
    doc["extract"]["extract_id"] = f"fri-{number}"
    doc["ipra"].update(number=number, issued_on=issued_on, valid_from=issued_on,
                       measures=measures)
    return doc


def register(client: TestClient, coord: Staff, measures: list[dict[str, Any]]) -> str:
    """Import the ИПРА with ``measures`` and register an accompaniment application."""
    r = client.post("/api/ipra", json=ipra_doc(measures), headers=coord.headers)
    assert r.status_code == 201, r.text
    r = client.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form("accompaniment"), "consent": consent()})
    assert r.status_code == 201 and r.json()["eligible"], r.text
    route_id: str = r.json()["route_id"]
    return route_id


def steps(db: Engine, route_id: str) -> dict[str, Step]:
    with Session(db) as s:
        return {x.kind: x for x in s.exec(select(Step).where(Step.route_id == route_id)
                                          .order_by(col(Step.seq)))}


def measure_steps(db: Engine, route_id: str) -> dict[str, Step]:
    """The measure steps by their executor role."""
    return {x.role: x for k, x in steps(db, route_id).items() if k.startswith("ipra_")}


def answer(db: Engine, clock: DbClock, cfg: EngineConfig, step: Step) -> None:
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id is not None
        ans, _ = record_answer(s, agency=agency, webhook_id=f"w-{step.id}", now=clock.now(),
                               answer=AnswerIn(task_id=step.current_request_id,
                                               outcome=AnswerOutcome.provided, payload={},
                                               comment=None))
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
