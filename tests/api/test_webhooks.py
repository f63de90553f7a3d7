"""Answers in: signed webhooks — verification, deduplication, ownership, bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from api.app import create_app
from engine.agencies.participants import new_secret
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from models.agencies import Agency, AgencyAnswer, AgencyRequest, RequestState
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Step
from sim.seed import make_secret
from tasks.signing import canonical_json, sign_headers
from tests.api.conftest import Snapshot


@pytest.fixture
def client(db: Engine, clock: DbClock) -> TestClient:
    settings = Settings(environment="test", prefect_mirror=False)
    return TestClient(create_app(db, settings=settings, clock=clock))


@pytest.fixture
def task(db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> Step:
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
    return step


def post(client: TestClient, agency: str, body: dict[str, Any] | bytes, *, msg_id: str = "m1",
         secret: str | None = None, at: float | None = None,
         headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else canonical_json(body)
    h = {**sign_headers(secret or make_secret(agency), msg_id, raw, at=at),
         "content-type": "application/json"}
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
        h = {**sign_headers(make_secret(agency), "m", raw), "content-type": "application/json"}
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
    ref = answer["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    comment = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["comment"]
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


# ------------------------------------------------------------------ robustness (issue 8)
def raw_post(client: TestClient, agency: str, raw: bytes, *, msg_id: str = "m1",
             content_type: str | None = "application/json") -> Any:
    """POST ``raw`` bytes as they are, validly signed (any bytes: HMAC over the raw body)."""
    ts = str(int(time.time()))
    key = base64.b64decode(make_secret(agency).removeprefix("whsec_") + "==")
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + raw,
                                    hashlib.sha256).digest()).decode()
    h = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": f"v1,{sig}"}
    if content_type is not None:
        h["content-type"] = content_type
    return client.post(f"/webhooks/agencies/{agency}", content=raw, headers=h)


def _answer(task_id: str, payload_json: str = "{}", comment_json: str = "null",
            outcome: str = "provided") -> bytes:
    return (f'{{"task_id":"{task_id}","outcome":"{outcome}","payload":{payload_json},'
            f'"comment":{comment_json}}}').encode()


ROBUSTNESS_CASES: dict[str, tuple[Callable[[str], bytes], str | None, int, str]] = {
    # name: (body from task_id, content type, status, detail's first field)
    "deep_nesting": (lambda t: _answer(t, '{"a":' * 10_000 + "1" + "}" * 10_000),
                     "application/json", 400, "body"),
    "nesting_over_the_limit": (lambda t: _answer(t, '{"a":' * 70 + "1" + "}" * 70),
                               "application/json", 400, "payload.a.a"),
    "integer_of_5000_digits": (lambda t: _answer(t, '{"n":' + "9" * 5000 + "}"),
                               "application/json", 400, "payload.n"),
    "integer_past_a_double": (lambda t: _answer(t, '{"n":[1,' + "1" + "0" * 309 + "]}"),
                             "application/json", 400, "payload.n.1"),
    "nan": (lambda t: _answer(t, '{"x":NaN}'), "application/json", 400, "payload.x"),
    "infinity": (lambda t: _answer(t, '{"x":-Infinity}'), "application/json", 400,
                 "payload.x"),
    "double_overflow": (lambda t: _answer(t, '{"x":1e400}'), "application/json", 400,
                        "payload.x"),
    "escaped_lone_surrogate": (lambda t: _answer(t, '{"x":"\\ud800"}'), "application/json",
                               400, "payload.x"),
    "lone_surrogate_in_a_key": (lambda t: _answer(t, '{"\\udc00":1}'), "application/json",
                                400, "payload"),
    "nul_in_task_id": (lambda t: _answer(t).replace(t.encode(), t.encode() + b"\\u0000"),
                       "application/json", 400, "task_id"),
    "invalid_utf8": (lambda t: _answer(t, '{"x":"\xff"}'.encode("latin-1").decode("latin-1"))
                     .replace(b"\xc3\xbf", b"\xff"), "application/json", 415, "body"),
    "utf8_encoded_surrogate": (lambda t: _answer(t).replace(b"{}", b'{"x":"\xed\xa0\x80"}'),
                               "application/json", 415, "body"),
    "utf16_body": (lambda t: _answer(t).decode().encode("utf-16"), "application/json", 415,
                   "body"),
    "oversized": (lambda t: _answer(t, '{"blob":"' + "x" * 300_000 + '"}'),
                  "application/json", 413, "body"),
    "no_content_type": (_answer, None, 415, "content-type"),
    "text_plain": (_answer, "text/plain", 415, "content-type"),
    "form": (lambda t: f"task_id={t}&outcome=provided".encode(),
             "application/x-www-form-urlencoded", 415, "content-type"),
    "multipart": (_answer, "multipart/form-data; boundary=x", 415, "content-type"),
    "xml": (lambda t: f"<answer><task_id>{t}</task_id></answer>".encode(), "application/xml",
            415, "content-type"),
    "json_declared_utf16": (lambda t: _answer(t).decode().encode("utf-16"),
                            "application/json; charset=utf-16", 415, "content-type"),
    "invisible_comment": (lambda t: _answer(t, outcome="rejected",
                                            comment_json='"\\u200b\\u00a0\\ufeff \\u3164"'),
                          "application/json", 422, "comment"),
    "nbsp_comment": (lambda t: _answer(t, outcome="rejected", comment_json='"\u00a0\u2060"'),
                     "application/json", 422, "comment"),
}


@pytest.mark.parametrize("case", sorted(ROBUSTNESS_CASES))
def test_bad_bodies_get_their_documented_4xx_and_change_nothing(
        client: TestClient, task: Step, case: str,
        snapshot: Callable[[], Snapshot]) -> None:
    """Each case gets its documented 4xx in the ``{"detail": "<field>: <rule>"}`` shape
    (never a 5xx an agency would retry for ever) and changes no row of any table."""
    make, content_type, status, field = ROBUSTNESS_CASES[case]
    before = snapshot()
    r = raw_post(client, task.agency_id or "", make(task.current_request_id or ""),
                 content_type=content_type)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail.startswith(f"{field}"), detail
    assert status in _documented(client)
    assert snapshot() == before


def _documented(client: TestClient) -> set[int]:
    spec = client.get("/openapi.json").json()
    return {int(c) for c in spec["paths"]["/webhooks/agencies/{agency_id}"]["post"][
        "responses"]}


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;charset=\"UTF-8\""])
def test_json_in_utf8_is_accepted_with_or_without_a_charset(
        client: TestClient, task: Step, content_type: str) -> None:
    r = raw_post(client, task.agency_id or "", _answer(task.current_request_id or "",
                                                       '{"n":' + "9" * 300 + ',"x":1.5e300}'),
                 content_type=content_type)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text


def test_a_reused_webhook_id_with_another_body_is_a_conflict(
        client: TestClient, task: Step, db: Engine,
        snapshot: Callable[[], Snapshot]) -> None:
    """The same webhook-id with a byte-identical body is a duplicate (200); with any other
    body it is refused with 409 naming the webhook-id, and nothing is stored."""
    agency, t = task.agency_id or "", task.current_request_id or ""
    first = raw_post(client, agency, _answer(t, '{"x":1}'), msg_id="ans-1")
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    before = snapshot()
    same = raw_post(client, agency, _answer(t, '{"x":1}'), msg_id="ans-1")
    assert same.status_code == 200 and same.json()["status"] == "duplicate"
    assert same.json()["answer_id"] == first.json()["answer_id"]
    for other in (_answer(t, '{"x":2}'), _answer(t, '{"x": 1}')):
        r = raw_post(client, agency, other, msg_id="ans-1")
        assert r.status_code == 409, r.text
        assert r.json()["detail"].startswith("webhook-id:") and "ans-1" in r.json()["detail"]
    assert snapshot() == before
    assert counts(db)[0] == 1


def test_a_second_answer_says_it_was_stored_but_not_applied(
        client: TestClient, task: Step, db: Engine) -> None:
    """A second answer to an answered task is stored (kept in the history) and the reply
    says it does not move the route; so is one to a withdrawn request."""
    agency, t = task.agency_id or "", task.current_request_id or ""
    r1 = raw_post(client, agency, _answer(t, '{"x":1}'), msg_id="a1")
    assert r1.json()["status"] == "accepted" and r1.json()["reason"] is None
    r2 = raw_post(client, agency, _answer(t, '{"x":2}'), msg_id="a2")
    assert r2.status_code == 200, r2.text
    assert (r2.json()["status"], r2.json()["reason"]) == ("stored_not_applied",
                                                         "already_answered")
    assert counts(db)[0] == 2
    with Session(db) as s:
        req = s.get(AgencyRequest, t)
        assert req is not None
        req.state = RequestState.cancelled
        s.add(req)
        s.commit()
    r3 = raw_post(client, agency, _answer(t, '{"x":3}'), msg_id="a3")
    assert (r3.json()["status"], r3.json()["reason"]) == ("stored_not_applied",
                                                         "request_cancelled")
