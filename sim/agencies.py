"""Simulated agencies: a real HTTP server on loopback that receives our requests and answers
through our real webhook endpoint, on the business clock it is told (``POST /_sim/tick``).

Synthetic use only. Each agency has a behaviour profile: how many working days it takes to
answer, how often it is late, silent, or answers with a notice that the information is
absent (298-п Порядок п.11: 5 working days to answer; a notice of absence is a valid
answer). What happens to a request — its *fate* — is decided by the seed, never by the
machine's clock or by random identifiers, so the same seed replays the same run:

- the fate of a request is keyed on ``sha256(seed:snils)`` (the subject's *token*), the step
  kind and ``n``, the number of distinct requests (idempotency keys) this agency system saw
  before for that subject and step: a resend of the same key keeps ``n``; a new request
  after a clarification or a reassignment bumps it;
- when the run's roster is known (``subjects``: the tokens of the synthetic persons), the
  first request (``n == 0``) of each subject and step gets its fate by *quota*: the roster
  is ranked by the fate key and each profile share becomes a fixed count (at least 1 when
  the share is not 0), so even a 12-person run contains silent, late and absent cases;
  otherwise (an unknown subject, ``n > 0``) the share is drawn from the key's hash;
- on-time answers come 1..``max_days`` working days after receipt, never after the
  ``answer_by_date`` the request carries; late answers come 1–3 working days after it;
  silent agencies never answer. Working days are those of the agencies' region calendar.

The simulation has no clock of its own: it refuses requests (503, retryable) until it has
been told the business time. Requests are deduplicated by idempotency key and counted, so a
test can prove no agency got the same request twice as two different requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import httpx
import pendulum
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, field_validator

import calendars
from engine.infra.backoff import backoff_seconds
from tasks.signing import SignatureError, canonical_json, sign_headers, verify

log = logging.getLogger("rehab.sim")

ANSWER_HOUR = 11
"""Answers are dated 11:00 local time of their working day (the demo ticks at 12:00)."""
ANSWER_ATTEMPTS = 6
"""Attempts to deliver an answer within one tick (then it waits for the next tick)."""
ANSWER_RETRY_BASE_SECONDS = 0.1
"""Real-time pause before the first retry within a tick; doubles each attempt."""
LATE_MAX_DAYS = 3
"""Late answers come 1..LATE_MAX_DAYS working days after the answer deadline."""

FATES = ("on_time", "late", "never", "absent", "rejected")


@dataclass(frozen=True)
class Profile:
    """How an agency behaves (shares of tasks; the rest answer on time)."""

    late: float = 0.1  # answers 1–3 working days after its deadline
    never: float = 0.03  # never answers
    absent: float = 0.1  # answers on time with a notice that the information is absent
    reject: float = 0.0  # answers on time asking for clarification
    fail_first: float = 0.0  # answers HTTP 503 to the first delivery attempt
    max_days: int = 5  # on-time answers take 1..max_days working days (capped at the deadline)


@dataclass(frozen=True)
class Fate:
    """What an agency does with one request."""

    kind: str  # one of FATES
    days: int  # on time: working days after receipt; late: working days after the deadline
    fail_first: bool  # refuse the first delivery attempt with 503

    @property
    def outcome(self) -> str | None:
        """The answer's outcome (None: no answer)."""
        return {"on_time": "provided", "late": "provided", "never": None,
                "absent": "absent", "rejected": "rejected"}[self.kind]


@dataclass
class Task:
    task_id: str
    agency: str
    callback_url: str
    received_at: datetime
    answer_at: datetime | None
    outcome: str
    fate: str
    order: str  # a seed-determined sort key (answers go out in this order within a tick)
    sent: bool = False
    attempts: int = 0


def subject_token(seed: int, snils: str) -> str:
    """The pseudonymous token of a subject under a seed (the roster carries tokens only)."""
    return hashlib.sha256(f"{seed}:{snils}".encode()).hexdigest()


def fate_key(token: str, step: str, n: int) -> bytes:
    """The hash that decides the fate of the ``n``-th distinct request for (subject, step)."""
    return hashlib.sha256(f"{token}:{step}:{n}".encode()).digest()


def _unit(key: bytes, salt: str) -> float:
    """A number in [0, 1) drawn from ``key`` (independent per ``salt``)."""
    h = hashlib.sha256(key + b":" + salt.encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def quotas(profile: Profile, roster_size: int) -> list[tuple[str, int]]:
    """Fixed counts of each non-default fate for a roster of ``roster_size`` subjects, in
    rank order: ``never``, ``late``, ``absent``, ``rejected`` (the rest answer on time).

    A share that is not 0 gets at least one subject; the counts never exceed the roster.
    """
    out: list[tuple[str, int]] = []
    left = roster_size
    for kind, share in (("never", profile.never), ("late", profile.late),
                        ("absent", profile.absent), ("rejected", profile.reject)):
        count = 0 if share <= 0 else max(1, round(share * roster_size))
        count = min(count, left)
        left -= count
        out.append((kind, count))
    return out


def decide(profile: Profile, key: bytes, *, rank: int | None = None,
           roster_size: int = 0) -> Fate:
    """The fate of a request with fate key ``key``: by quota when the subject's ``rank``
    in the roster is known, otherwise by the key's hash against the profile's shares."""
    kind = "on_time"
    if rank is not None and roster_size > 0:
        edge = 0
        for k, count in quotas(profile, roster_size):
            edge += count
            if rank < edge:
                kind = k
                break
    else:
        r = _unit(key, "kind")
        edge_f = 0.0
        for k, share in (("never", profile.never), ("late", profile.late),
                         ("absent", profile.absent), ("rejected", profile.reject)):
            edge_f += share
            if r < edge_f:
                kind = k
                break
    if kind == "late":
        days = 1 + int(_unit(key, "late") * LATE_MAX_DAYS)
    else:
        days = 1 + int(_unit(key, "days") * max(1, profile.max_days))
    return Fate(kind, days, _unit(key, "fail") < profile.fail_first)


@dataclass
class SimState:
    secrets: dict[str, str]
    profiles: dict[str, Profile]
    seed: int = 0
    subjects: list[str] = field(default_factory=list)  # roster: subject tokens
    region: str = calendars.DEFAULT_REGION
    now: datetime | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    deliveries: int = 0  # every POST we got (incl. resends)
    keys: set[str] = field(default_factory=set)
    seen: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (token, step) → keys
    refused_first: set[str] = field(default_factory=set)
    answers_sent: int = 0
    answer_failures: int = 0
    client: httpx.AsyncClient | None = None  # answers go out through it
    _ranks: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> SimState:
        """Build from the JSON config ``rehab sim --config`` reads:
        ``{secrets: {agency: whsec}, profiles: {agency: {...}}, seed: int, subjects: [token]}``.
        """
        return cls(secrets=dict(data["secrets"]),
                   profiles={k: Profile(**v) for k, v in data.get("profiles", {}).items()},
                   seed=int(data.get("seed", 0)),
                   subjects=[str(t) for t in data.get("subjects", [])])

    def rank(self, token: str, step: str) -> int | None:
        """The subject's rank in the roster for ``step`` (None: not on the roster)."""
        if step not in self._ranks:
            ordered = sorted(self.subjects, key=lambda t: fate_key(t, step, 0))
            self._ranks[step] = {t: i for i, t in enumerate(ordered)}
        return self._ranks[step].get(token)

    def fate(self, agency: str, token: str, step: str, n: int) -> Fate:
        profile = self.profiles.get(agency, Profile())
        rank = self.rank(token, step) if n == 0 else None
        return decide(profile, fate_key(token, step, n), rank=rank,
                      roster_size=len(self.subjects))


def plan(state: SimState, agency: str, fate: Fate, *, received: datetime,
         answer_by_date: date) -> datetime | None:
    """When the agency answers a request received at ``received`` with the deadline
    ``answer_by_date`` (298-п Порядок п.11), as an aware UTC instant (None: never)."""
    if fate.kind == "never":
        return None
    cal = calendars.get_calendar(state.region)
    local = pendulum.instance(received).in_timezone(cal.timezone)
    receipt = date(local.year, local.month, local.day)
    earliest = cal.add_working_days(receipt, 1)
    if fate.kind == "late":
        day = cal.add_working_days(answer_by_date, fate.days)
    else:
        day = min(cal.add_working_days(receipt, fate.days), answer_by_date)
    day = max(day, earliest)
    at = pendulum.datetime(day.year, day.month, day.day, ANSWER_HOUR, tz=cal.timezone)
    return at.in_timezone("UTC")


class Tick(BaseModel):
    now: datetime

    @field_validator("now")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() is None:
            raise ValueError("now: must carry a time zone")
        return v


def _field(body: dict[str, Any], *path: str) -> Any:
    cur: Any = body
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            raise HTTPException(422, f"{'.'.join(path)}: required")
        cur = cur[p]
    return cur


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
        try:
            body = json.loads(raw)
        except ValueError:
            raise HTTPException(400, "body: not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(422, "body: must be a JSON object")
        key = request.headers.get("idempotency-key", body.get("idempotency_key", ""))
        task_id = str(_field(body, "task_id"))
        snils = str(_field(body, "subject", "snils"))
        step = str(_field(body, "step"))
        try:
            answer_by_date = date.fromisoformat(str(_field(body, "answer_by_date")))
        except ValueError:
            raise HTTPException(422, "answer_by_date: not an ISO date") from None
        state.deliveries += 1
        if state.now is None:
            # no wall-clock fallback: business time is whatever the run says it is
            raise HTTPException(503, "clock: the simulation has not been told the business "
                                     "time yet (POST /_sim/tick first); retry later")
        if key in state.keys:
            return {"accepted": True, "duplicate": True}
        token = subject_token(state.seed, snils)
        keys_seen = state.seen.setdefault((token, step), [])
        n = len(keys_seen)
        fate = state.fate(agency, token, step, n)
        if fate.fail_first and key not in state.refused_first:
            state.refused_first.add(key)
            raise HTTPException(503, "temporarily unavailable")
        state.keys.add(key)
        keys_seen.append(key)
        answer_at = plan(state, agency, fate, received=state.now, answer_by_date=answer_by_date)
        state.tasks[task_id] = Task(
            task_id, agency, str(_field(body, "callback_url")), state.now, answer_at,
            fate.outcome or "never", fate.kind, fate_key(token, step, n).hex())
        return {"accepted": True}

    @app.post("/_sim/tick")
    async def tick(t: Tick) -> dict[str, int]:
        """Business time is now ``t.now``: send every answer due by then, in a fixed order,
        retrying failed deliveries a few times (the API may be restarting)."""
        state.now = t.now
        pending = sorted((x for x in state.tasks.values()
                          if not x.sent and x.answer_at is not None and x.answer_at <= t.now),
                         key=lambda x: (x.answer_at, x.order))
        answered = refused = 0
        if not pending:
            return {"answered": 0, "failed": 0}
        if state.client is None:  # one client for the app's life (creating one is slow)
            state.client = httpx.AsyncClient(timeout=10)
        client = state.client
        for attempt in range(ANSWER_ATTEMPTS):
            results = await asyncio.gather(*(_answer(client, state, x) for x in pending))
            answered += results.count("sent")
            refused += results.count("refused")
            pending = [x for x, r in zip(pending, results, strict=True) if r == "retry"]
            if not pending or attempt == ANSWER_ATTEMPTS - 1:
                break
            await asyncio.sleep(backoff_seconds(attempt + 1, base=ANSWER_RETRY_BASE_SECONDS,
                                                cap=ANSWER_RETRY_BASE_SECONDS * 64))
        return {"answered": answered, "failed": len(pending) + refused}

    @app.get("/_sim/stats")
    async def stats() -> dict[str, Any]:
        fates = Counter(x.fate for x in state.tasks.values())
        return {
            "deliveries": state.deliveries, "distinct_keys": len(state.keys),
            "tasks": len(state.tasks), "answers_sent": state.answers_sent,
            "answer_failures": state.answer_failures,
            "pending": sum(1 for x in state.tasks.values()
                           if not x.sent and x.answer_at is not None),
            "fates": {k: fates.get(k, 0) for k in FATES},
            "seed": state.seed, "roster": len(state.subjects),
            "now": state.now.isoformat() if state.now else None,
            "profiles": {k: asdict(v) for k, v in state.profiles.items()},
        }

    return app


async def _answer(client: httpx.AsyncClient, state: SimState, task: Task) -> str:
    """POST one answer: ``sent``; ``retry`` (network error, 5xx); ``refused`` (4xx: tried
    again only at the next tick)."""
    body = {"task_id": task.task_id, "outcome": task.outcome,
            "payload": {"answered_by": task.agency, "synthetic": True},
            "comment": {"absent": "Сведения отсутствуют",
                        "rejected": "Уточните сведения о получателе"}.get(task.outcome)}
    raw = canonical_json(body)
    task.attempts += 1
    # Standard Webhooks: a retry carries the same webhook-id
    headers = sign_headers(state.secrets[task.agency], f"ans-{task.task_id}", raw)
    headers["Content-Type"] = "application/json"
    try:
        resp = await client.post(task.callback_url, content=raw, headers=headers)
    except httpx.HTTPError:
        state.answer_failures += 1
        return "retry"
    except Exception:  # noqa: BLE001 - e.g. AttributeError from a socket the API's death
        # closed mid-connect (httpcore 1.0.9 + anyio 4.16): no response, so retried
        state.answer_failures += 1
        log.warning("answer to %s: transport failure", task.task_id, exc_info=True)
        return "retry"
    if resp.status_code < 300:
        task.sent = True
        state.answers_sent += 1
        return "sent"
    state.answer_failures += 1
    if resp.status_code >= 500:
        return "retry"
    log.warning("answer to %s refused: HTTP %s", task.task_id, resp.status_code)
    return "refused"
