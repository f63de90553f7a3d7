"""Shared pieces of the route-transition benchmark (rivals and our engine's bench).

* :class:`RivalResult` — what one implementation measured.
* :class:`ResourceSampler` — peak RSS and peak thread count of the bench's own processes
  (this process and its descendants, minus excluded ones such as the echo agency).
* :class:`CallbackServer` — the HTTP endpoint agencies post their signed answers to:
  a Starlette app served by uvicorn in a background thread of the bench process.
* The wire contract: :func:`build_request` / :func:`post_request` (caller → agency), the
  scenario's steps (:data:`STEPS`), agency secrets (:func:`make_secrets`).

The scenario: N routes (one per person) × ``steps`` steps; each step sends an interagency
request to an agency and waits for its signed answer; one applied answer = one transition.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tasks.prefect_server import free_port  # noqa: E402
from tasks.signing import SignatureError, canonical_json, sign_headers, verify  # noqa: E402

__all__ = [
    "OUTCOMES", "STEPS", "CallbackAnswer", "CallbackServer", "ResourceSampler",
    "RivalResult", "Step", "build_request", "free_port", "make_secrets", "post_request",
    "post_request_async", "step_for", "task_id_for", "wait_for",
]

OUTCOMES = frozenset({"provided", "absent", "rejected"})


# -- the scenario --------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    name: str
    agency: str  # agency code: the echo agency routes by it, secrets are keyed by it
    requested: str


STEPS: tuple[Step, ...] = (
    Step("disability_status", "MSE", "extract from the disability examination record"),
    Step("pension_record", "SFR", "pension and social payments record"),
    Step("employment_record", "CZN", "registration with the employment centre"),
)


def step_for(index: int) -> Step:
    """The step at ``index`` of a route (the three steps repeat for longer routes)."""
    return STEPS[index % len(STEPS)]


def task_id_for(route_id: str, index: int) -> str:
    """The task id (and idempotency key) of step ``index`` of a route: stable across resends."""
    return f"{route_id}.s{index}"


def make_secrets(codes: Iterable[str] | None = None) -> dict[str, str]:
    """Fresh Standard Webhooks secrets ``whsec_<base64>`` for the given agency codes."""
    names = list(codes) if codes is not None else sorted({s.agency for s in STEPS})
    return {c: "whsec_" + base64.b64encode(os.urandom(24)).decode() for c in names}


def build_request(
    *, route_id: str, index: int, callback_url: str, answer_in: timedelta = timedelta(days=5),
) -> dict[str, Any]:
    """The JSON body of the request for step ``index`` of ``route_id`` (the wire contract)."""
    step = step_for(index)
    task_id = task_id_for(route_id, index)
    return {
        "task_id": task_id,
        "idempotency_key": task_id,
        "route_id": route_id,
        "step": step.name,
        "requested": step.requested,
        "answer_by": (datetime.now(UTC) + answer_in).isoformat().replace("+00:00", "Z"),
        "callback_url": callback_url,
    }


def _request_parts(secret: str, body: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = canonical_json(body)
    key = str(body["idempotency_key"])
    headers = sign_headers(secret, key, raw)
    headers["Idempotency-Key"] = key
    headers["Content-Type"] = "application/json"
    return raw, headers


def post_request(
    client: httpx.Client, url: str, secret: str, body: Mapping[str, Any], *, attempts: int = 5,
) -> int:
    """POST a signed request (sync); retry network errors and 5xx; return the 2xx status.

    The idempotency key is the ``webhook-id`` and the ``Idempotency-Key`` header, so a
    retry is the same request to the agency. Raises ``httpx.HTTPError`` at the end.
    """
    raw, headers = _request_parts(secret, body)
    for attempt in range(1, attempts + 1):
        try:
            resp = client.post(url, content=raw, headers=headers)
            if resp.status_code < 500:
                resp.raise_for_status()
                return resp.status_code
        except httpx.TransportError:
            if attempt == attempts:
                raise
        if attempt < attempts:
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
    resp.raise_for_status()
    return resp.status_code


async def post_request_async(
    client: httpx.AsyncClient, url: str, secret: str, body: Mapping[str, Any], *,
    attempts: int = 5,
) -> int:
    """:func:`post_request` for asyncio callers."""
    raw, headers = _request_parts(secret, body)
    for attempt in range(1, attempts + 1):
        try:
            resp = await client.post(url, content=raw, headers=headers)
            if resp.status_code < 500:
                resp.raise_for_status()
                return resp.status_code
        except httpx.TransportError:
            if attempt == attempts:
                raise
        if attempt < attempts:
            await asyncio.sleep(min(2.0, 0.05 * 2 ** attempt))
    resp.raise_for_status()
    return resp.status_code


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str = "",
) -> None:
    """Poll ``predicate`` until true; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


# -- results -------------------------------------------------------------------------------
@dataclass
class RivalResult:
    name: str
    routes: int
    transitions: int
    seconds: float
    transitions_per_s: float
    peak_rss_mb: float
    threads_peak: int
    expected_transitions: int = 0
    completed: bool = True  # False when a wall-time cap stopped the run early
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        cap = "" if self.completed else " (capped)"
        return (f"{self.name}: {self.transitions}/{self.expected_transitions} transitions, "
                f"{self.routes} routes in {self.seconds:.1f} s = "
                f"{self.transitions_per_s:.2f} transitions/s{cap}; peak RSS "
                f"{self.peak_rss_mb:.0f} MB; threads peak {self.threads_peak}")


# -- resources -----------------------------------------------------------------------------
def self_peak_rss_mb() -> float:
    """This process's peak RSS over its whole life (kernel's ru_maxrss, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class ResourceSampler:
    """Samples RSS and threads of this process and its descendants in a background thread.

    ``exclude`` holds pids (e.g. the echo agency's) whose whole subtree is not counted;
    ``include`` adds pids outside our tree. ``peak_rss_mb`` is the largest total RSS of the
    counted processes alive at the same sample (and never below this process's own kernel
    peak); ``threads_peak`` the largest total thread count; ``per_process_peak_mb`` the
    peak of each process (by pid and name) for the report.
    """

    def __init__(
        self, *, interval: float = 0.05, exclude: Iterable[int] = (),
        include: Iterable[int] = (),
    ) -> None:
        self.interval = interval
        self.exclude: set[int] = set(exclude)
        self.include: set[int] = set(include)
        self.peak_total_bytes = 0
        self.threads_peak = 0
        self.processes_peak = 0
        self.samples = 0
        self._per_pid: dict[int, tuple[str, int]] = {}
        #: pid → (CPU seconds at the first sample, at the latest sample)
        self._cpu: dict[int, tuple[float, float]] = {}
        #: pid → role ("prefect-server" ...); descendants inherit it as "<role>/child"
        self.labels: dict[int, str] = {}
        self._label_of: dict[int, str] = {}
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: dict[int, psutil.Process] = {}

    def _counted(self) -> list[psutil.Process]:
        excluded: set[int] = set()
        for pid in self.exclude:
            excluded.add(pid)
            try:
                excluded.update(c.pid for c in psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                pass
        procs = [self._me]
        try:
            procs += [c for c in self._me.children(recursive=True) if c.pid not in excluded]
        except psutil.Error:
            pass
        for pid in self.include - excluded:
            try:
                p = psutil.Process(pid)
                procs.append(p)
                procs += p.children(recursive=True)
            except psutil.Error:
                pass
        seen: dict[int, psutil.Process] = {}
        for p in procs:
            # Reuse Process objects so psutil keeps its identity checks across samples.
            seen.setdefault(p.pid, self._cache.get(p.pid, p))
        self._cache = seen
        return list(seen.values())

    def sample(self) -> None:
        total = threads = count = 0
        for p in self._counted():
            try:
                with p.oneshot():
                    rss = p.memory_info().rss
                    nth = p.num_threads()
                    name = self._label(p)
                    ct = p.cpu_times()
            except psutil.Error:
                continue
            total += rss
            threads += nth
            count += 1
            prev = self._per_pid.get(p.pid)
            self._per_pid[p.pid] = (name, rss if prev is None else max(rss, prev[1]))
            cpu = ct.user + ct.system
            self._cpu[p.pid] = (self._cpu.get(p.pid, (cpu, cpu))[0], cpu)
        self.peak_total_bytes = max(self.peak_total_bytes, total)
        self.threads_peak = max(self.threads_peak, threads)
        self.processes_peak = max(self.processes_peak, count)
        self.samples += 1

    def _label(self, p: psutil.Process) -> str:
        known = self._label_of.get(p.pid)
        if known is not None:
            return known
        if p.pid == self._me.pid:
            label = "bench"
        elif p.pid in self.labels:
            label = self.labels[p.pid]
        else:
            for parent in p.parents():
                if parent.pid in self.labels:
                    label = f"{self.labels[parent.pid]}/child"
                    break
                if parent.pid == self._me.pid:
                    return str(p.name())  # not labelled (yet): ask again next sample
            else:
                return str(p.name())
        self._label_of[p.pid] = label
        return label

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> ResourceSampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.sample()

    @property
    def peak_rss_mb(self) -> float:
        return max(self.peak_total_bytes / 2**20, self_peak_rss_mb())

    def per_process_peak_mb(self) -> dict[str, float]:
        return {f"{name}:{pid}": round(rss / 2**20, 1)
                for pid, (name, rss) in sorted(self._per_pid.items())}

    def per_process_cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) each process used while sampled."""
        return {f"{self._per_pid[pid][0]}:{pid}": round(last - first, 2)
                for pid, (first, last) in sorted(self._cpu.items()) if pid in self._per_pid}

    def roles_summary(self) -> dict[str, dict[str, float]]:
        """Per role: how many processes were seen and the largest single-process peak."""
        out: dict[str, dict[str, float]] = {}
        for name, rss in self._per_pid.values():
            role = out.setdefault(name, {"processes": 0, "max_mb": 0.0})
            role["processes"] += 1
            role["max_mb"] = max(role["max_mb"], round(rss / 2**20, 1))
        return out

    def __enter__(self) -> ResourceSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the callback endpoint -----------------------------------------------------------------
@dataclass(frozen=True)
class CallbackAnswer:
    """A verified answer posted to ``/callbacks/{agency}/{ref}``."""

    agency: str
    ref: str  # what the caller put in its callback URL (route id, flow run id ...)
    webhook_id: str
    task_id: str
    outcome: str
    payload: dict[str, Any]
    comment: str | None

    def as_message(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "outcome": self.outcome, "payload": self.payload,
                "comment": self.comment, "agency": self.agency, "webhook_id": self.webhook_id}


AnswerHandler = Callable[[CallbackAnswer], Awaitable[None] | None]


class CallbackServer:
    """Receives agencies' signed answers on ``POST /callbacks/{agency}/{ref}``.

    Each answer's signature is checked with that agency's secret (401 otherwise), its body
    validated (422), then ``on_answer`` is called: a coroutine function is awaited on the
    server's loop, a plain function runs in a worker thread. The 202 ack is sent only
    after the handler returned ("stored"); a handler exception answers 503, so the agency
    retries. Runs uvicorn in a daemon thread; ``callback_url(agency, ref)`` builds URLs.
    """

    def __init__(
        self, secrets: Mapping[str, str], on_answer: AnswerHandler, *,
        host: str = "127.0.0.1", port: int | None = None,
    ) -> None:
        self.secrets = dict(secrets)
        self.on_answer = on_answer
        self.host = host
        self.port = port if port is not None else free_port()
        self.received = 0
        self.rejected = 0
        self.failed = 0
        self._is_async = inspect.iscoroutinefunction(on_answer)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def callback_url(self, agency: str, ref: str) -> str:
        return f"{self.base_url}/callbacks/{agency}/{ref}"

    async def _receive(self, request: Request) -> JSONResponse:
        agency = request.path_params["agency"]
        secret = self.secrets.get(agency)
        if secret is None:
            self.rejected += 1
            return JSONResponse({"error": f"unknown agency {agency}"}, status_code=404)
        raw = await request.body()
        try:
            msg_id = verify([secret], request.headers, raw)
        except SignatureError as exc:
            self.rejected += 1
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            body = json.loads(raw)
            answer = CallbackAnswer(
                agency=agency, ref=request.path_params["ref"], webhook_id=msg_id,
                task_id=str(body["task_id"]), outcome=str(body["outcome"]),
                payload=dict(body.get("payload") or {}), comment=body.get("comment"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            self.rejected += 1
            return JSONResponse({"error": f"bad answer: {exc}"}, status_code=422)
        if answer.outcome not in OUTCOMES:
            self.rejected += 1
            return JSONResponse({"error": f"bad outcome {answer.outcome}"}, status_code=422)
        try:
            if self._is_async:
                result = self.on_answer(answer)
                if result is not None:
                    await result
            else:
                await run_in_threadpool(self.on_answer, answer)
        except Exception as exc:  # the agency retries
            self.failed += 1
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=503)
        self.received += 1
        return JSONResponse({"stored": True}, status_code=202)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/callbacks/{agency}/{ref}", self._receive, methods=["POST"]),
            Route("/health", lambda _r: JSONResponse({"ok": True}), methods=["GET"]),
        ])

    def start(self, timeout: float = 15.0) -> CallbackServer:
        config = uvicorn.Config(self.app(), host=self.host, port=self.port,
                                log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="callback-server", daemon=True)
        self._thread.start()
        wait_for(lambda: server.started or not self._thread_alive(), timeout=timeout,
                 interval=0.01, what="the callback server")
        if not server.started:
            raise RuntimeError(f"callback server did not start on {self.base_url}")
        return self

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
