"""A fast simulated agency for benchmarks (a Starlette app served by uvicorn).

``POST /agencies/{code}/requests`` verifies the Standard Webhooks signature with that
agency's secret, counts the request and its idempotency key, answers 202
``{"accepted": true}`` (200 with the same body for a key it has seen), then — for a new key
only — posts the answer (outcome "provided", a small payload) to the request's
``callback_url`` after ``delay`` seconds, signed with the same secret, retrying failures
with backoff; one shared ``httpx.AsyncClient``. ``GET /stats`` →
``{"requests": n, "distinct_keys": k, ...}``; ``GET /health``.

Run it: ``python bench/echo_agency.py --port 8765 --secrets '{"MSE": "whsec_..."}'``
(or the secrets map in ``ECHO_AGENCY_SECRETS``; ``--delay`` / ``ECHO_AGENCY_DELAY``).
From Python: ``with start_echo_agency(secrets) as agency: agency.url_for("MSE")`` runs it
in a subprocess on a free port of 127.0.0.1 and waits until it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tasks.agency_client import PerAgencyTransport  # noqa: E402
from tasks.prefect_server import free_port  # noqa: E402
from tasks.signing import SignatureError, canonical_json, sign_headers, verify  # noqa: E402

__all__ = ["EchoAgencyHandle", "make_app", "start_echo_agency"]


class _Agency:
    def __init__(self, secrets: Mapping[str, str], delay_s: float, max_attempts: int) -> None:
        self.secrets = dict(secrets)
        self.delay_s = delay_s
        self.max_attempts = max_attempts
        self.requests = 0
        self.rejected = 0
        self.keys: set[str] = set()
        self.answers_delivered = 0
        self.answers_failed = 0
        self.answer_attempts = 0
        self.client: httpx.AsyncClient | None = None
        self.pending: set[asyncio.Task[None]] = set()

    async def receive(self, request: Request) -> JSONResponse:
        code = request.path_params["code"]
        secret = self.secrets.get(code)
        if secret is None:
            self.rejected += 1
            return JSONResponse({"error": f"unknown agency {code}"}, status_code=404)
        raw = await request.body()
        try:
            msg_id = verify([secret], request.headers, raw)
        except SignatureError as exc:
            self.rejected += 1
            return JSONResponse({"error": str(exc)}, status_code=401)
        try:
            body = json.loads(raw)
            task_id = str(body["task_id"])
            callback_url = str(body["callback_url"])
        except (ValueError, KeyError, TypeError) as exc:
            self.rejected += 1
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=422)
        key = request.headers.get("idempotency-key") or str(body.get("idempotency_key") or msg_id)
        self.requests += 1
        if key in self.keys:
            return JSONResponse({"accepted": True}, status_code=200)
        self.keys.add(key)
        task = asyncio.create_task(self.answer(secret, key, task_id, callback_url, body))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return JSONResponse({"accepted": True}, status_code=202)

    async def answer(
        self, secret: str, key: str, task_id: str, callback_url: str, request: dict[str, Any],
    ) -> None:
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        body = {
            "task_id": task_id,
            "outcome": "provided",
            "payload": {"step": request.get("step"), "route_id": request.get("route_id"),
                        "document_no": f"DOC-{abs(hash(key)) % 10**8:08d}"},
            "comment": None,
        }
        raw = canonical_json(body)
        assert self.client is not None
        for attempt in range(1, self.max_attempts + 1):
            # Re-signed per attempt (fresh timestamp), same webhook-id: the receiver dedupes.
            headers = sign_headers(secret, f"answer-{key}", raw)
            headers["Content-Type"] = "application/json"
            self.answer_attempts += 1
            try:
                resp = await self.client.post(callback_url, content=raw, headers=headers)
                if 200 <= resp.status_code < 300:
                    self.answers_delivered += 1
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(2.0, 0.05 * 2 ** (attempt - 1)))
        self.answers_failed += 1

    async def stats(self, _request: Request) -> JSONResponse:
        return JSONResponse({
            "requests": self.requests,
            "distinct_keys": len(self.keys),
            "rejected": self.rejected,
            "answers_delivered": self.answers_delivered,
            "answers_failed": self.answers_failed,
            "answer_attempts": self.answer_attempts,
            "answers_pending": len(self.pending),
        })

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        # a small pool with as many answers in it at once (the worker's transport): a
        # pool of 200 connections cost this stand-in more CPU than the API it calls
        transport = PerAgencyTransport(connections_per_origin=16)
        async with httpx.AsyncClient(timeout=30.0, transport=transport) as client:
            self.client = client
            yield
            for task in list(self.pending):
                task.cancel()
            self.client = None


def make_app(
    secrets: Mapping[str, str], delay_s: float = 0.0, max_attempts: int = 30,
) -> Starlette:
    """The echo agency's ASGI app (secrets: agency code → ``whsec_`` secret)."""
    agency = _Agency(secrets, delay_s, max_attempts)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "agencies": sorted(agency.secrets)})

    return Starlette(
        routes=[
            Route("/agencies/{code}/requests", agency.receive, methods=["POST"]),
            Route("/stats", agency.stats, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=agency.lifespan,
    )


class EchoAgencyHandle:
    """A running echo agency subprocess (context manager; ``stop()`` ends it)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, secrets: Mapping[str, str],
                 log_path: Path | None) -> None:
        self.proc = proc
        self.port = port
        self.secrets = dict(secrets)
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, code: str) -> str:
        return f"{self.base_url}/agencies/{code}/requests"

    def stats(self) -> dict[str, int]:
        resp = httpx.get(f"{self.base_url}/stats", timeout=10.0)
        resp.raise_for_status()
        data: dict[str, int] = resp.json()
        return data

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=grace)

    def __enter__(self) -> EchoAgencyHandle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_echo_agency(
    secrets: dict[str, str], delay_s: float = 0.0, *, timeout: float = 30.0,
    log_path: Path | None = None,
) -> EchoAgencyHandle:
    """Run the echo agency in a subprocess on a free port of 127.0.0.1; wait until it is up."""
    port = free_port()
    env = dict(os.environ)
    env["ECHO_AGENCY_SECRETS"] = json.dumps(secrets)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--port", str(port),
           "--delay", str(delay_s)]
    out: Any = log_path.open("ab") if log_path is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log_path is not None:
            out.close()
    handle = EchoAgencyHandle(proc, port, secrets, log_path)
    deadline = time.monotonic() + timeout
    while not handle.healthy():
        if proc.poll() is not None:
            raise RuntimeError(f"echo agency exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            handle.stop()
            raise RuntimeError(f"echo agency not up after {timeout:.0f} s")
        time.sleep(0.05)
    return handle


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--secrets", default=os.environ.get("ECHO_AGENCY_SECRETS", ""),
                    help='JSON map agency code → secret (default: $ECHO_AGENCY_SECRETS)')
    ap.add_argument("--delay", type=float,
                    default=float(os.environ.get("ECHO_AGENCY_DELAY", "0") or 0),
                    help="seconds between accepting a request and posting its answer")
    args = ap.parse_args(argv)
    if not args.secrets:
        ap.error("give the agencies' secrets with --secrets or ECHO_AGENCY_SECRETS")
    secrets = json.loads(args.secrets)
    uvicorn.run(make_app(secrets, args.delay), host=args.host, port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
