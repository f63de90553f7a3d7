"""Answers in: agencies answer interagency requests through signed webhooks.

Contract (docs/agencies.md): ``POST /webhooks/agencies/{agency_id}`` with Standard Webhooks
headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` = HMAC-SHA256 over
``id.timestamp.body`` with the agency's secret), verified on the raw body in constant time,
within a 5-minute replay window; deduplicated by ``webhook-id``; stored durably and
acknowledged before the route moves. Outcomes follow 298-п п.11, п.12: the information,
a notice that it is absent, or a rejection needing clarification.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from api import strict_json
from api.answer_writer import AnswerWriter
from api.errors import error_responses
from engine.agencies.participants import usable_secrets_of
from engine.answers.intake import WebhookIdConflict
from engine.errors import EngineError, NotFoundError
from engine.routes.transitions import AnswerIn
from models.agencies import AnswerOutcome
from models.text import VISIBLE_PATTERN, is_blank
from ops.metrics import ANSWERS
from tasks.signing import SignatureError, verify

router = APIRouter(tags=["agencies"])


JSON_MEDIA_TYPE = "application/json"


def json_utf8_content_type(value: str | None) -> bool:
    """``application/json``, optionally with ``charset=utf-8`` (any case, RFC 8259 §8.1)."""
    if not value:
        return False
    media, *params = (p.strip() for p in value.split(";"))
    if media.lower() != JSON_MEDIA_TYPE:
        return False
    for param in params:
        name, _, arg = param.partition("=")
        if name.strip().lower() == "charset" and arg.strip().strip('"').lower() not in (
                "utf-8", "utf8"):
            return False
    return True


class AnswerBody(BaseModel):
    """The body of an agency's answer: JSON in UTF-8 (RFC 8259) — finite numbers within a
    double's range (integers too), no lone surrogates, at most 64 levels of nesting."""

    model_config = ConfigDict(json_schema_extra={"if": {
        "properties": {"outcome": {"const": "rejected"}}, "required": ["outcome"]},
        "then": {"required": ["comment"],
                 "properties": {"comment": {"type": "string", "pattern": VISIBLE_PATTERN}}}})

    task_id: str = Field(max_length=40, description="task_id of the request being answered")
    outcome: AnswerOutcome = Field(
        description="provided: the information; absent: a notice that it is absent "
        "(298-п п.11); rejected: the request needs clarification"
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="the information")
    comment: str | None = Field(
        default=None, max_length=2000,
        description="free text; required when outcome is 'rejected': what must be clarified, "
        "with at least one visible character (whitespace and invisible characters such as "
        "U+200B or U+00A0 alone are blank)")


class AnswerAck(BaseModel):
    """The acknowledgement: the answer is stored (before this reply)."""

    status: Literal["accepted", "stored_not_applied", "duplicate"] = Field(
        description="accepted: stored, the route moves on within seconds; "
        "stored_not_applied: stored and kept in the route's history, but it does not move the "
        "route (see reason); duplicate: this webhook-id with this very body was stored before "
        "— nothing changes")
    reason: Literal["already_answered", "request_cancelled"] | None = Field(
        default=None,
        description="with stored_not_applied: already_answered (the task has an answer "
        "already), request_cancelled (the request was withdrawn: reassigned or closed)")
    answer_id: int
    task_id: str
    late_working_days: int = Field(description="0 if on time")


def _fail(code: int, detail: str) -> HTTPException:
    return HTTPException(status_code=code, detail=detail)


@router.post(
    "/webhooks/agencies/{agency_id}",
    response_model=AnswerAck,
    responses=error_responses(400, 401, 404, 409, 413, 415, 422),
    summary="An agency answers an interagency request",
    openapi_extra={"requestBody": {"required": True, "content": {JSON_MEDIA_TYPE: {
        "schema": {"$ref": "#/components/schemas/AnswerBody"}}}}},
)
async def receive_answer(
    agency_id: Annotated[str, Path(max_length=40)],
    request: Request,
    webhook_id: Annotated[str | None, Header(alias="webhook-id")] = None,
    webhook_timestamp: Annotated[str | None, Header(alias="webhook-timestamp")] = None,
    webhook_signature: Annotated[str | None, Header(alias="webhook-signature")] = None,
) -> AnswerAck:
    state = request.app.state
    if not json_utf8_content_type(request.headers.get("content-type")):
        raise _fail(415, "content-type: must be application/json (UTF-8)")
    limit: int = state.settings.webhook_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _fail(413, f"body: at most {limit} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > limit:
            raise _fail(413, f"body: at most {limit} bytes")
    body = bytes(raw)
    cache: SecretCache = state.secret_cache
    headers = {"webhook-id": webhook_id or "", "webhook-timestamp": webhook_timestamp or "",
               "webhook-signature": webhook_signature or ""}
    tolerance = state.settings.webhook_tolerance_seconds
    secrets, cached = await cache.get(agency_id)
    try:
        msg_id = verify(secrets, headers, body, tolerance_seconds=tolerance)
    except SignatureError as exc:
        if not cached:
            raise _fail(401, str(exc)) from None
        try:  # the secrets may have been rotated a moment ago: read them again
            secrets, _ = await cache.get(agency_id, fresh=True)
            msg_id = verify(secrets, headers, body, tolerance_seconds=tolerance)
        except SignatureError as exc2:
            raise _fail(401, str(exc2)) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(415, "body: must be UTF-8 encoded JSON") from None
    try:
        data = strict_json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(400, f"body: not valid JSON ({exc.__class__.__name__})") from None
    except strict_json.StrictJsonError as exc:
        raise _fail(400, str(exc)) from None
    try:
        parsed = AnswerBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise _fail(422, f"{loc}: {first['msg']}") from None
    if parsed.outcome is AnswerOutcome.rejected and is_blank(parsed.comment):
        raise _fail(422, "comment: required when outcome is 'rejected' (say what must be "
                         "clarified, with visible characters)")
    answer = AnswerIn(parsed.task_id, parsed.outcome, parsed.payload, parsed.comment)
    writer: AnswerWriter = state.answer_writer
    digest = hashlib.sha256(body).hexdigest()
    try:
        stored = await asyncio.wrap_future(writer.submit(agency_id, msg_id, answer, digest))
    except NotFoundError as exc:
        raise _fail(404, str(exc)) from None
    except WebhookIdConflict as exc:
        raise _fail(409, str(exc)) from None
    except EngineError as exc:
        raise _fail(422, str(exc)) from None
    if not stored.created:
        status: Literal["accepted", "stored_not_applied", "duplicate"] = "duplicate"
    else:
        status = "accepted" if stored.not_applied is None else "stored_not_applied"
    ANSWERS.labels(outcome=parsed.outcome.value, result=status).inc()
    return AnswerAck(status=status, reason=stored.not_applied,
                     answer_id=stored.answer_id, task_id=stored.task_id,
                     late_working_days=stored.late_working_days)


class SecretCache:
    """The agencies' valid secrets (two during a rotation; never a demo one in production),
    kept for ``ttl`` seconds so that an answer costs no database read to verify.

    A signature that fails against cached secrets is checked once more against freshly read
    ones (a rotation a moment ago); a retired previous secret stays valid for at most
    ``ttl`` seconds more.
    """

    def __init__(self, read_engine: Any, *, production: bool, ttl: float = 2.0) -> None:
        self._engine = read_engine
        self._production = production
        self._ttl = ttl
        self._entries: dict[str, tuple[float, list[str] | None]] = {}

    async def get(self, agency_id: str, *, fresh: bool = False) -> tuple[list[str], bool]:
        """(the agency's secrets, whether they came from the cache); 404 if unknown."""
        now = time.monotonic()
        entry = self._entries.get(agency_id)
        cached = entry is not None and not fresh and entry[0] > now
        if entry is not None and cached:
            secrets = entry[1]
        else:
            secrets = await run_in_threadpool(self._read, agency_id)
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[agency_id] = (now + self._ttl, secrets)
        if secrets is None:
            raise _fail(404, f"agency_id: unknown agency {agency_id!r}")
        return secrets, cached

    def _read(self, agency_id: str) -> list[str] | None:
        with Session(self._engine) as s:
            return usable_secrets_of(s, agency_id, production=self._production)


# --------------------------------------------------------------------------- requests out
class RequestSubject(BaseModel):
    """Whom the request is about (152-ФЗ: only to the agency the request is addressed to)."""

    snils: str = Field(description="XXX-XXX-XXX YY")
    full_name: str
    birth_date: date


class InteragencyRequest(BaseModel):
    """The body of our interagency request to an agency (298-п Порядок п.10, п.11)."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(description="the task to answer; quote it as task_id in the answer")
    idempotency_key: str = Field(
        description="equal to task_id and to the Idempotency-Key and webhook-id headers: a "
        "resend carries the same key, treat it as the same request")
    route_id: str = Field(description="the person's route (an identifier, no personal data)")
    step: str = Field(description="the route step, e.g. medical_check")
    requested: str = Field(description="what is requested (Russian)")
    basis: str = Field(description="the clause of the regulation the request rests on")
    subject: RequestSubject
    answer_within_working_days: int = Field(
        description="answer period in working days of the agency's region (298-п п.11)")
    answer_by: datetime = Field(
        description="expected deadline if received now: end of the last working day, UTC")
    answer_by_date: date = Field(description="that day, in the agency's time zone")
    callback_url: str = Field(description="where to POST the signed answer")
    clarification: str | None = Field(
        default=None,
        description="present only on a request resent after the agency answered 'rejected': "
        "the coordinator's clarification; it is a new task with a new task_id")


def document_outgoing(app: FastAPI) -> None:
    """Describe our request to an agency in the OpenAPI document (``webhooks``), so that
    ``/openapi.json`` holds both directions of the exchange."""

    @app.webhooks.post(
        "interagency-request", summary="Our interagency request to an agency",
        description="POSTed to the agency's endpoint, signed like the answers (Standard "
        "Webhooks; during a secret rotation `webhook-signature` carries one `v1,` signature "
        "per valid secret). Reply 2xx to take it; network errors, 408/425/429 and 5xx are "
        "retried with backoff and the same Idempotency-Key; another 4xx refuses it.",
        tags=["agencies"],
    )
    def interagency_request(
        body: InteragencyRequest,
        webhook_id: Annotated[str, Header(alias="webhook-id",
                                          description="= task_id = Idempotency-Key")],
        webhook_timestamp: Annotated[str, Header(alias="webhook-timestamp",
                                                 description="Unix seconds")],
        webhook_signature: Annotated[str, Header(
            alias="webhook-signature",
            description="space-separated v1,<base64 HMAC-SHA256> signatures")],
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key")],
    ) -> None:
        """(documentation only: agencies implement this endpoint)"""
