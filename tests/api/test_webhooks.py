"""Answers in: signed webhooks — verification, deduplication, ownership, bad input."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from api.app import create_app
from engine.agencies import new_secret
from engine.clock import DbClock
from engine.routes import EngineConfig, register_application
from engine.seed import make_secret
from engine.settings import Settings
from models.agencies import Agency, AgencyAnswer
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Step
from tasks.signing import canonical_json, sign_headers


@pytest.fixture
def client(db: Engine, clock: DbClock) -> TestClient:
    settings = Settings(environment="test", prefect_mirror=False)
    return TestClient(create_app(db, settings=settings, clock=clock))


@pytest.fixture
def task(db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> Step:
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living")
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
    return step


def post(client: TestClient, agency: str, body: dict[str, Any] | bytes, *, msg_id: str = "m1",
         secret: str | None = None, at: float | None = None,
         headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else canonical_json(body)
    h = sign_headers(secret or make_secret(agency), msg_id, raw, at=at)
    h.update(headers or {})
    return client.post(f"/webhooks/agencies/{agency}", content=raw, headers=h)


def counts(db: Engine) -> tuple[int, int]:
    with Session(db) as s:
        return (s.exec(select(func.count()).select_from(AgencyAnswer)).one(),
                s.exec(select(func.count()).select_from(AuditEvent)).one())


def test_valid_answer_is_stored_and_acknowledged(client: TestClient, task: Step,
                                                 db: Engine) -> None:
    r = post(client, task.agency_id or "", {"task_id": task.current_request_id,
                                            "outcome": "provided", "payload": {"x": 1}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted" and r.json()["late_working_days"] == 0
    again = post(client, task.agency_id or "", {"task_id": task.current_request_id,
                                                "outcome": "provided", "payload": {"x": 1}})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["answer_id"] == r.json()["answer_id"]
    assert counts(db)[0] == 1


def test_previous_secret_still_valid_during_rotation(client: TestClient, task: Step,
                                                     db: Engine) -> None:
    with Session(db) as s:
        a = s.get(Agency, task.agency_id)
        assert a is not None
        a.secret_previous, a.secret_current = a.secret_current, make_secret("rotated")
        s.add(a)
        s.commit()
    body = {"task_id": task.current_request_id, "outcome": "absent"}
    assert post(client, task.agency_id or "", body, msg_id="old",
                secret=make_secret(task.agency_id or "")).status_code == 200
    assert post(client, task.agency_id or "", body, msg_id="new",
                secret=make_secret("rotated")).status_code == 200
    assert post(client, task.agency_id or "", body, msg_id="bad",
                secret=make_secret("someone-else")).status_code == 401


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("wrong_signature", 401, "webhook-signature"),
        ("missing_signature", 401, "webhook-signature"),
        ("old_timestamp", 401, "webhook-timestamp"),
        ("future_timestamp", 401, "webhook-timestamp"),
        ("broken_json", 400, "body"),
        ("bad_outcome", 422, "outcome"),
        ("missing_task", 422, "task_id"),
        ("unknown_agency", 404, "agency_id"),
        ("other_agencys_task", 404, "task_id"),
        ("unknown_task", 404, "task_id"),
        ("oversized", 413, "body"),
        ("rejected_without_comment", 422, "comment"),
        ("rejected_with_blank_comment", 422, "comment"),
    ],
)
def test_bad_input_gets_clear_4xx_and_changes_nothing(
    client: TestClient, task: Step, db: Engine, case: str, status: int, field: str
) -> None:
    agency = task.agency_id or ""
    good = {"task_id": task.current_request_id, "outcome": "provided"}
    before = counts(db)
    if case == "wrong_signature":
        r = post(client, agency, good, secret=make_secret("nope"))
    elif case == "missing_signature":
        raw = canonical_json(good)
        h = sign_headers(make_secret(agency), "m", raw)
        del h["webhook-signature"]
        r = client.post(f"/webhooks/agencies/{agency}", content=raw, headers=h)
    elif case == "old_timestamp":
        r = post(client, agency, good, at=time.time() - 301)
    elif case == "future_timestamp":
        r = post(client, agency, good, at=time.time() + 400)
    elif case == "broken_json":
        r = post(client, agency, b'{"task_id": ')
    elif case == "bad_outcome":
        r = post(client, agency, {**good, "outcome": "maybe"})
    elif case == "missing_task":
        r = post(client, agency, {"outcome": "provided"})
    elif case == "unknown_agency":
        r = post(client, "nobody", good)
    elif case == "other_agencys_task":
        r = post(client, "mz39" if agency != "mz39" else "mo39", good)
    elif case == "unknown_task":
        r = post(client, agency, {**good, "task_id": "tk_missing"})
    elif case == "rejected_without_comment":
        r = post(client, agency, {**good, "outcome": "rejected"})
    elif case == "rejected_with_blank_comment":
        r = post(client, agency, {**good, "outcome": "rejected", "comment": "  \n "})
    else:
        r = post(client, agency, {**good, "payload": {"blob": "x" * 300_000}})
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith(field), r.json()
    assert counts(db) == before


def test_openapi_documents_the_webhook(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/webhooks/agencies/{agency_id}"]["post"]
    params = {p["name"] for p in op["parameters"]}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= params
    assert "requestBody" in op
    assert json.dumps(spec, ensure_ascii=False).count("absent") >= 1


def test_rejection_with_a_comment_is_accepted(client: TestClient, task: Step) -> None:
    r = post(client, task.agency_id or "", {"task_id": task.current_request_id,
                                            "outcome": "rejected",
                                            "comment": "Уточните дату заявления"})
    assert r.status_code == 200, r.text


def test_openapi_documents_both_directions(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    out = spec["webhooks"]["interagency-request"]["post"]
    headers = {p["name"] for p in out["parameters"]}
    assert {"webhook-id", "webhook-timestamp", "webhook-signature",
            "Idempotency-Key"} <= headers
    ref = out["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"task_id", "idempotency_key", "requested", "answer_by", "callback_url",
            "clarification", "subject"} <= set(schema["properties"])
    answer = spec["paths"]["/webhooks/agencies/{agency_id}"]["post"]
    comment = answer["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "comment"]
    assert "rejected" in comment["description"]


def test_production_refuses_the_demo_secret(db: Engine, clock: DbClock, task: Step) -> None:
    """Seeded agencies hold secrets derived from a public string: in production an answer
    signed with one is refused (401) and changes nothing; a real secret works."""
    settings = Settings(environment="production", allow_clock_control=False,
                        admin_token="a-real-admin-token", public_base_url="https://r.example",
                        database_url="postgresql+psycopg://rehab@db/rehab",
                        prefect_mirror=False)
    prod = TestClient(create_app(db, settings=settings, clock=clock))
    agency = task.agency_id or ""
    body = {"task_id": task.current_request_id, "outcome": "provided"}
    before = counts(db)
    r = post(prod, agency, body, msg_id="demo")
    assert r.status_code == 401 and r.json()["detail"].startswith("webhook-signature")
    assert counts(db) == before
    real = new_secret()
    with Session(db) as s:
        a = s.get(Agency, agency)
        assert a is not None
        a.secret_previous, a.secret_current = a.secret_current, real
        s.add(a)
        s.commit()
    assert post(prod, agency, body, msg_id="demo2").status_code == 401  # previous: still demo
    assert post(prod, agency, body, msg_id="real", secret=real).status_code == 200
