"""Simulated agencies: a real HTTP server on loopback that receives our requests and answers
through our real webhook endpoint, on the business clock it is told.

Each agency has a behaviour profile: how many working days it takes to answer, how often it
is late, silent, or answers with a notice that the information is absent. Decisions are
deterministic per task id (a hash), so a run can be repeated. Requests are deduplicated by
idempotency key and counted, so a test can prove no agency got the same request twice as two
different requests. Synthetic use only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pendulum
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

import calendars
from tasks.signing import SignatureError, canonical_json, sign_headers, verify

log = logging.getLogger("rehab.sim")


@dataclass(frozen=True)
class Profile:
    """How an agency behaves (shares of tasks; the rest answer on time)."""

    late: float = 0.1  # answers 1–3 working days after its deadline
    never: float = 0.03  # never answers
    absent: float = 0.1  # answers on time with a notice that the information is absent
    reject: float = 0.0  # answers on time asking for clarification
    fail_first: float = 0.0  # answers HTTP 503 to the first delivery attempt
    max_days: int = 5  # on-time answers take 1..max_days working days


@dataclass
class Task:
    task_id: str
    agency: str
    callback_url: str
    received_at: datetime
    answer_at: datetime | None
    outcome: str
    sent: bool = False
    attempts: int = 0


@dataclass
class SimState:
    secrets: dict[str, str]
    profiles: dict[str, Profile]
    region: str = calendars.DEFAULT_REGION
    now: datetime | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    deliveries: int = 0  # every POST we got (incl. resends)
    keys: set[str] = field(default_factory=set)
    refused_first: set[str] = field(default_factory=set)
    answers_sent: int = 0
    answer_failures: int = 0


def _share(task_id: str, salt: str) -> float:
    h = hashlib.sha256(f"{salt}:{task_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def plan(state: SimState, agency: str, task_id: str, received: datetime) -> tuple[datetime | None,
                                                                                str]:
    """When and how the agency will answer this task (deterministic)."""
    p = state.profiles.get(agency, Profile())
    cal = calendars.get_calendar(state.region)
    local = pendulum.instance(received).in_timezone(cal.timezone)
    due = cal.add_working_days(local.date(), p.max_days)
    r = _share(task_id, "kind")
    outcome = "provided"
    if r < p.never:
        return None, "never"
    if r < p.never + p.late:
        day = cal.add_working_days(due, 1 + int(_share(task_id, "late") * 3))
    else:
        day = cal.add_working_days(local.date(), 1 + int(_share(task_id, "days") * p.max_days))
        r2 = _share(task_id, "outcome")
        if r2 < p.absent:
            outcome = "absent"
        elif r2 < p.absent + p.reject:
            outcome = "rejected"
    at = pendulum.datetime(day.year, day.month, day.day, 11, tz=cal.timezone)
    return at.in_timezone("UTC"), outcome


class Tick(BaseModel):
    now: datetime


def create_sim_app(state: SimState) -> FastAPI:
    app = FastAPI(title="Simulated agencies")
    app.state.sim = state

    @app.post("/agencies/{agency}/requests", status_code=202)
    async def receive(agency: str, request: Request) -> dict[str, Any]:
        if agency not in state.secrets:
            raise HTTPException(404, f"agency: unknown {agency!r}")
        raw = await request.body()
        try:
            verify([state.secrets[agency]], dict(request.headers), raw)
        except SignatureError as exc:
            raise HTTPException(401, str(exc)) from None
        body = json.loads(raw)
        key = request.headers.get("idempotency-key", body.get("idempotency_key", ""))
        state.deliveries += 1
        p = state.profiles.get(agency, Profile())
        if key not in state.refused_first and _share(key, "fail") < p.fail_first:
            state.refused_first.add(key)
            raise HTTPException(503, "temporarily unavailable")
        if key in state.keys:
            return {"accepted": True, "duplicate": True}
        state.keys.add(key)
        received = state.now or pendulum.now("UTC")
        answer_at, outcome = plan(state, agency, body["task_id"], received)
        state.tasks[body["task_id"]] = Task(body["task_id"], agency, body["callback_url"],
                                            received, answer_at, outcome)
        return {"accepted": True}

    @app.post("/_sim/tick")
    async def tick(t: Tick) -> dict[str, int]:
        """Business time is now ``t.now``: send every answer due by then."""
        state.now = t.now
        due = [x for x in state.tasks.values()
               if not x.sent and x.answer_at is not None and x.answer_at <= t.now]
        async with httpx.AsyncClient(timeout=10) as client:
            results = await asyncio.gather(*(_answer(client, state, x) for x in due))
        return {"answered": sum(results), "failed": len(results) - sum(results)}

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        return {
            "deliveries": state.deliveries, "distinct_keys": len(state.keys),
            "tasks": len(state.tasks), "answers_sent": state.answers_sent,
            "answer_failures": state.answer_failures,
            "pending": sum(1 for x in state.tasks.values() if not x.sent),
            "profiles": {k: asdict(v) for k, v in state.profiles.items()},
        }

    return app


async def _answer(client: httpx.AsyncClient, state: SimState, task: Task) -> bool:
    body = {"task_id": task.task_id, "outcome": task.outcome,
            "payload": {"answered_by": task.agency, "synthetic": True},
            "comment": "Сведения отсутствуют" if task.outcome == "absent" else None}
    raw = canonical_json(body)
    task.attempts += 1
    # Standard Webhooks: a retry carries the same webhook-id
    headers = sign_headers(state.secrets[task.agency], f"ans-{task.task_id}", raw)
    headers["Content-Type"] = "application/json"
    try:
        resp = await client.post(task.callback_url, content=raw, headers=headers)
    except httpx.HTTPError:
        state.answer_failures += 1
        return False
    if resp.status_code < 300:
        task.sent = True
        state.answers_sent += 1
        return True
    state.answer_failures += 1
    return False
