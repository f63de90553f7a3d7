"""Requests out (tasks/agency_client.py and the worker): signatures (also during a secret
rotation), retries with growing backoff on network errors and 5xx, a refusal (4xx) recorded
with its status code only, and the request body contract (298-п Порядок п.10, п.11)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from standardwebhooks import Webhook, WebhookVerificationError

from api.webhooks import InteragencyRequest
from engine.agencies.participants import new_secret
from engine.infra.backoff import backoff_seconds
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from engine.runtime.worker import Worker
from models.agencies import Agency, AgencyRequest, RequestState
from models.audit import AuditEvent
from models.jobs import Job, JobKind
from models.persons import Person
from models.routes import Step, StepStatus
from models.types import utcnow
from tasks.agency_client import AgencyClient, Delivery, reply_digest, send_request
from tasks.signing import canonical_json, sign_headers, verify

OLD, NEW, OTHER = new_secret(), new_secret(), new_secret()
BODY: dict[str, Any] = {"task_id": "tk_1", "idempotency_key": "tk_1", "requested": "Сведения"}

Handler = Callable[[httpx.Request], httpx.Response]


def send(handler: Handler, *, secret: str | list[str] = OLD,
         body: dict[str, Any] | None = None) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await send_request(client, url="http://agency.test/in", secret=secret,
                                      idempotency_key="tk_1", body=body or BODY)
    return asyncio.run(go())


# ------------------------------------------------------------------ signatures, rotation
def test_two_secrets_sign_so_that_either_holder_verifies() -> None:
    raw = canonical_json(BODY)
    headers = sign_headers([NEW, OLD], "tk_1", raw)
    assert len(headers["webhook-signature"].split(" ")) == 2
    # the agency still holding only the old secret, with the reference library
    assert Webhook(OLD).verify(raw, headers) == BODY
    assert Webhook(NEW).verify(raw, headers) == BODY
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER).verify(raw, headers)
    assert verify([OLD], headers, raw) == "tk_1"


def test_request_headers_body_and_signature() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    result = send(handler, secret=[NEW, OLD])
    assert result.outcome is Delivery.delivered and result.status_code == 202
    (req,) = seen
    assert req.method == "POST" and str(req.url) == "http://agency.test/in"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["idempotency-key"] == req.headers["webhook-id"] == "tk_1"
    assert req.content == canonical_json(BODY)  # the exact bytes, stable across resends
    assert Webhook(OLD).verify(req.content, dict(req.headers)) == BODY
    assert Webhook(NEW).verify(req.content, dict(req.headers)) == BODY


@pytest.mark.parametrize("status", [500, 502, 503, 408, 425, 429])
def test_5xx_and_transient_4xx_are_retried(status: int) -> None:
    result = send(lambda _r: httpx.Response(status, text="busy"))
    assert result.outcome is Delivery.retry and result.status_code == status
    assert result.error == f"HTTP {status}"


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_network_errors_are_retried(exc: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    result = send(handler)
    assert result.outcome is Delivery.retry and result.status_code is None
    assert result.error is not None and result.error.startswith(f"network error: {exc.__name__}")


def test_an_unwrapped_transport_failure_is_a_retry_not_a_crash() -> None:
    # httpcore 1.0.9 + anyio 4.16: a connection the peer closes mid-connect raises
    # AttributeError from getpeername() on the closed socket, outside httpx's exceptions
    def handler(request: httpx.Request) -> httpx.Response:
        raise AttributeError("'NoneType' object has no attribute 'getpeername'")

    result = send(handler)
    assert result.outcome is Delivery.retry and result.status_code is None
    assert result.error is not None
    assert result.error.startswith("transport error: AttributeError")


def test_refusal_keeps_the_status_and_a_digest_not_the_reply() -> None:
    reply = '{"error": "Синтетиков Иван, СНИЛС 112-233-445 95: нет в реестре"}'
    result = send(lambda _r: httpx.Response(422, text=reply))
    assert result.outcome is Delivery.refused and result.status_code == 422
    assert result.error == f"HTTP 422; reply sha256:{reply_digest(reply.encode())}"
    assert "Синтетиков" not in result.error and "112-233" not in result.error


def test_no_usable_secret_is_not_sent() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    result = send(handler, secret=[])
    assert result.outcome is Delivery.retry and result.error is not None
    assert result.error.startswith("secret:") and calls == []


def _reply_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(202, json={"accepted": True})


def _reply_busy(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="busy")


def _reply_refused(request: httpx.Request) -> httpx.Response:
    return httpx.Response(422, text='{"error": "СНИЛС 112-233-445 95: нет в реестре"}')


def _reply_refused_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def _reply_unwrapped_failure(request: httpx.Request) -> httpx.Response:
    raise AttributeError("'NoneType' object has no attribute 'getpeername'")


def _reply_setting_a_cookie(request: httpx.Request) -> httpx.Response:
    return httpx.Response(202, headers={"Set-Cookie": "lb=node-2; Path=/"})


@pytest.mark.parametrize("reply", [_reply_ok, _reply_busy, _reply_refused,
                                   _reply_refused_connection, _reply_unwrapped_failure,
                                   _reply_setting_a_cookie])
def test_the_worker_client_sends_and_reads_as_httpx_post(
    reply: Handler, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``AgencyClient.send_direct`` (the worker's) against ``httpx.AsyncClient.send``: the
    same bytes on the wire, the same outcome, and a cookie an agency sets is sent back on
    the next request either way."""
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.0)  # one signing instant

    def wire(make: Callable[[httpx.MockTransport], httpx.AsyncClient]) -> Any:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return reply(request)

        async def go() -> list[Any]:
            async with make(httpx.MockTransport(handler)) as client:
                return [await send_request(client, url="http://agency.test/in", secret=[NEW, OLD],
                                           idempotency_key=f"tk_{i}", body=BODY)
                        for i in range(2)]
        results = asyncio.run(go())
        return results, [(r.method, str(r.url), r.headers.raw, r.content) for r in seen]

    ours = wire(lambda t: AgencyClient(transport=t, timeout=10.0))
    httpx_own = wire(lambda t: httpx.AsyncClient(transport=t, timeout=10.0))
    assert ours == httpx_own
    if reply is _reply_setting_a_cookie:
        (_, _, second, _) = ours[1][1]
        assert (b"Cookie", b"lb=node-2") in second


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    delays = [backoff_seconds(a, base=1.0, cap=10.0, jitter=0) for a in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    low = [backoff_seconds(a, base=1.0, cap=10.0, rng=lambda: 0.0) for a in range(1, 7)]
    high = [backoff_seconds(a, base=1.0, cap=10.0, rng=lambda: 1.0) for a in range(1, 7)]
    assert low == pytest.approx([0.9, 1.8, 3.6, 7.2, 9.0, 9.0])
    assert high == pytest.approx([1.1, 2.2, 4.4, 8.8, 10.0, 10.0])  # never above the cap
    with pytest.raises(ValueError, match="jitter"):
        backoff_seconds(1, base=1.0, cap=10.0, jitter=1.5)


# ------------------------------------------------------------------ the worker
@pytest.fixture
def http_route(db: Engine, clock: DbClock, cfg: EngineConfig,
               seeded: list[Person]) -> AgencyRequest:
    """A route whose first step's agency has an endpoint, in a secret rotation (it holds
    only the OLD secret; we have NEW as current and OLD as previous)."""
    with Session(db, expire_on_commit=False) as s:
        for a in s.exec(select(Agency)):
            a.endpoint_url = f"http://agency.test/{a.id}"
            a.secret_current, a.secret_previous = NEW, OLD
            s.add(a)
        s.flush()
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
        req = s.get(AgencyRequest, step.current_request_id)
        assert req is not None and req.state is RequestState.queued
        return req


def run_worker(db: Engine, clock: DbClock, cfg: EngineConfig, handler: Handler,
               rounds: Callable[[Worker], Any]) -> None:
    settings = Settings(environment="test", prefect_mirror=False,
                        send_backoff_base_seconds=1.0, send_backoff_max_seconds=300.0)

    async def go() -> None:
        async with Worker(db, clock, cfg, settings, worker_id="t-worker") as w:
            assert w._http is not None
            await w._http.aclose()
            w._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
            await rounds(w)

    asyncio.run(go())


def send_job(db: Engine, ref: str) -> Job | None:
    with Session(db) as s:
        return s.exec(select(Job).where(Job.kind == JobKind.send_request,
                                        Job.ref == ref)).first()


def make_due(db: Engine, job_id: int) -> None:
    due = utcnow() - timedelta(seconds=1)
    with db.begin() as conn:
        conn.execute(text("UPDATE job SET due_at = :d WHERE id = :i"),
                     {"d": due if db.dialect.name == "postgresql" else due.replace(tzinfo=None),
                      "i": job_id})


def test_worker_retries_with_growing_backoff_then_delivers_signed_for_the_old_secret(
        db: Engine, clock: DbClock, cfg: EngineConfig, http_route: AgencyRequest,
        seeded: list[Person]) -> None:
    script: list[Any] = [httpx.ConnectError, 503, httpx.ConnectError, 200]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = script[len(seen) - 1]
        if isinstance(step, int):
            return httpx.Response(step)
        raise step("down", request=request)

    delays: list[float] = []

    async def rounds(w: Worker) -> None:
        for attempt in range(1, 5):
            assert await w.run_once() >= 1
            job = send_job(db, http_route.id)
            if attempt < 4:
                assert job is not None and job.id is not None and job.last_error
                assert job.attempts == attempt
                delays.append((job.due_at - utcnow()).total_seconds())
                make_due(db, job.id)
            else:
                assert job is None  # delivered: the job is done

    run_worker(db, clock, cfg, handler, rounds)
    # 1 s, 2 s, 4 s (base 1 s, doubling), measured from "now" a moment later
    assert [round(d) for d in delays] == [1, 2, 4], delays
    assert delays[0] < delays[1] < delays[2]
    with Session(db) as s:
        req = s.get(AgencyRequest, http_route.id)
        assert req is not None and req.state is RequestState.delivered and req.attempts == 4
        step = s.get(Step, req.step_id)
        assert step is not None and step.status is StepStatus.awaiting
    # every attempt is the same request: same key, same bytes
    assert {r.headers["idempotency-key"] for r in seen} == {http_route.id}
    assert {r.headers["webhook-id"] for r in seen} == {http_route.id}
    assert len({r.content for r in seen}) == 1
    last = seen[-1]
    # the agency holds only the old secret: the request verifies for it (rotation)
    body = Webhook(OLD).verify(last.content, dict(last.headers))
    assert Webhook(NEW).verify(last.content, dict(last.headers)) == body
    # the body contract (docs/agencies.md, /openapi.json "webhooks")
    parsed = InteragencyRequest.model_validate(body)
    assert parsed.task_id == parsed.idempotency_key == http_route.id
    assert parsed.callback_url == f"{cfg.public_base_url}/webhooks/agencies/{http_route.agency_id}"
    assert parsed.answer_within_working_days == 5
    assert parsed.answer_by.tzinfo is not None and parsed.requested
    assert parsed.subject.snils == seeded[0].snils
    assert parsed.clarification is None
    assert set(body) >= {"task_id", "idempotency_key", "route_id", "step", "requested", "basis",
                         "subject", "answer_within_working_days", "answer_by",
                         "answer_by_date", "callback_url"}


def test_worker_records_a_refusal_with_its_status_only(
        db: Engine, clock: DbClock, cfg: EngineConfig, http_route: AgencyRequest,
        seeded: list[Person]) -> None:
    person = seeded[0]
    reply = json.dumps({"error": f"{person.full_name} {person.snils}: unknown"},
                       ensure_ascii=False)

    async def rounds(w: Worker) -> None:
        assert await w.run_once() >= 1

    run_worker(db, clock, cfg, lambda _r: httpx.Response(400, text=reply), rounds)
    assert send_job(db, http_route.id) is None  # not retried
    expected = f"HTTP 400; reply sha256:{reply_digest(reply.encode())}"
    with Session(db) as s:
        req = s.get(AgencyRequest, http_route.id)
        assert req is not None and req.state is RequestState.failed
        assert req.last_error == expected
        events = list(s.exec(select(AuditEvent).where(AuditEvent.entity_id == http_route.id)
                             .order_by(col(AuditEvent.id))))
    failed = [e for e in events if e.action == "delivery_failed"]
    assert len(failed) == 1 and failed[0].after is not None
    assert failed[0].after["error"] == expected
    dumped = json.dumps([e.model_dump(mode="json") for e in events], ensure_ascii=False)
    assert person.snils not in dumped and person.full_name not in dumped


def test_production_worker_never_signs_with_a_demo_secret(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    """Seeded agencies hold the public demo secret: a production worker does not send
    with it (the request stays queued until the secret is rotated)."""
    with Session(db, expire_on_commit=False) as s:
        for a in s.exec(select(Agency)):
            a.endpoint_url = f"http://agency.test/{a.id}"
            s.add(a)
        s.flush()
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    settings = Settings(environment="production", allow_clock_control=False,
                        admin_token="a-real-admin-token", public_base_url="https://r.example",
                        database_url="postgresql+psycopg://rehab@db/rehab",
                        prefect_mirror=False)

    async def go() -> None:
        async with Worker(db, clock, cfg, settings, worker_id="p-worker") as w:
            assert w._http is not None
            await w._http.aclose()
            w._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
            await w.run_once()

    asyncio.run(go())
    assert calls == []
    job = send_job(db, step.current_request_id or "")
    assert job is not None and (job.last_error or "").startswith("secret:")
