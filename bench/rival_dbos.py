"""Rival 2: the route scenario on DBOS durable workflows (SQLite system database).

Each route is a DBOS workflow. For each step a ``@DBOS.step`` posts the signed request to
the echo agency (callback_url → this process's :class:`CallbackServer`), then
``DBOS.recv(topic=task_id)`` waits; the callback handler verifies the answer's signature
and ``DBOS.send``s it to the route's workflow (idempotency key = the answer's webhook-id);
a second step applies the answer (one transition). A waiting sync workflow holds one
executor thread, which ``threads_peak`` shows.

SQLite has no LISTEN/NOTIFY: a waiting ``recv`` learns of a ``send`` from DBOS's notification
poll, set here to 0.1 s (``--poll``; DBOS's default 1.0 s gives ~25-48 transitions/s
instead of ~66-69 at N=200 on 2 cores). Routes are started one after the other with
``DBOS.start_workflow``; the clock runs from the first start to the last route's end.

Run: ``.venv/bin/python bench/rival_dbos.py --routes 200`` (prints the figures, JSON with
``--json``). Memory counts this process only (the echo agency is another process).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dbos import DBOS, DBOSConfig, SetWorkflowID  # noqa: E402

from bench.echo_agency import start_echo_agency  # noqa: E402
from bench.rivals_common import (  # noqa: E402
    CallbackAnswer,
    CallbackServer,
    ResourceSampler,
    RivalResult,
    build_request,
    make_secrets,
    post_request,
    step_for,
    task_id_for,
)

NAME = "dbos"


@dataclass
class _Run:
    secrets: dict[str, str]
    agency_urls: dict[str, str]
    callbacks: CallbackServer
    client: httpx.Client
    lock: threading.Lock = field(default_factory=threading.Lock)
    transitions: int = 0
    applied: dict[str, str] = field(default_factory=dict)  # task_id → outcome


_RUN: _Run | None = None


def _ctx() -> _Run:
    if _RUN is None:
        raise RuntimeError("rival_dbos: no run in progress")
    return _RUN


@DBOS.step()
def send_request_step(route_id: str, index: int) -> int:
    """POST the request of step ``index`` (idempotent: the key is the task id)."""
    ctx = _ctx()
    agency = step_for(index).agency
    body = build_request(route_id=route_id, index=index,
                         callback_url=ctx.callbacks.callback_url(agency, route_id))
    return post_request(ctx.client, ctx.agency_urls[agency], ctx.secrets[agency], body)


@DBOS.step()
def apply_answer_step(route_id: str, index: int, answer: dict[str, Any]) -> str:
    """Apply the agency's answer: the route moves on (one transition)."""
    ctx = _ctx()
    task_id = task_id_for(route_id, index)
    if answer.get("task_id") != task_id:
        raise ValueError(f"answer for {answer.get('task_id')} delivered to {task_id}")
    outcome = str(answer["outcome"])
    with ctx.lock:
        if task_id not in ctx.applied:
            ctx.applied[task_id] = outcome
            ctx.transitions += 1
    return outcome


@DBOS.workflow()
def route_workflow(route_id: str, steps: int, answer_timeout_s: float) -> list[str]:
    outcomes: list[str] = []
    for index in range(steps):
        send_request_step(route_id, index)
        answer = DBOS.recv(topic=task_id_for(route_id, index), timeout_seconds=answer_timeout_s)
        if answer is None:
            raise TimeoutError(f"{route_id}: no answer to step {index} in {answer_timeout_s} s")
        outcomes.append(apply_answer_step(route_id, index, answer))
    return outcomes


async def _on_answer(answer: CallbackAnswer) -> None:
    # The callback ref is the route's workflow id; the topic is the task id.
    await DBOS.send_async(answer.ref, answer.as_message(), topic=answer.task_id,
                          idempotency_key=answer.webhook_id)


def run(
    n_routes: int, steps: int = 3, *, answer_timeout_s: float = 120.0, agency_delay_s: float = 0.0,
    workdir: Path | None = None, poll_s: float = 0.1,
) -> RivalResult:
    """Run ``n_routes`` routes of ``steps`` steps on DBOS; return the measured figures."""
    global _RUN
    if _RUN is not None:
        raise RuntimeError("rival_dbos: a run is already in progress")
    tmp = tempfile.TemporaryDirectory(prefix="rival-dbos-") if workdir is None else None
    base = Path(tmp.name) if tmp is not None else Path(workdir)  # type: ignore[arg-type]
    secrets = make_secrets()
    agency = start_echo_agency(secrets, delay_s=agency_delay_s)
    sampler = ResourceSampler(exclude=[agency.pid]).start()
    callbacks = CallbackServer(secrets, _on_answer).start()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    client = httpx.Client(timeout=30.0, limits=limits)
    config: DBOSConfig = {
        "name": "rival-dbos",
        "system_database_url": f"sqlite:///{base / 'dbos_sys.sqlite'}",
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": poll_s,
    }
    try:
        DBOS(config=config)
        DBOS.launch()
        _RUN = _Run(secrets=secrets, callbacks=callbacks, client=client,
                    agency_urls={code: agency.url_for(code) for code in secrets})
        t0 = time.perf_counter()
        handles = []
        for i in range(n_routes):
            with SetWorkflowID(f"route-{i:05d}"):
                handles.append(DBOS.start_workflow(
                    route_workflow, f"route-{i:05d}", steps, answer_timeout_s))
        started_s = time.perf_counter() - t0
        errors: list[str] = []
        for h in handles:
            try:
                h.get_result()
            except Exception as exc:  # report, do not hide
                errors.append(f"{h.get_workflow_id()}: {type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - t0
        sampler.stop()
        transitions = _RUN.transitions
        stats = agency.stats()
        return RivalResult(
            name=NAME, routes=n_routes, transitions=transitions, seconds=seconds,
            transitions_per_s=transitions / seconds if seconds > 0 else 0.0,
            peak_rss_mb=sampler.peak_rss_mb, threads_peak=sampler.threads_peak,
            expected_transitions=n_routes * steps, completed=not errors,
            notes={"errors": errors[:10], "agency": stats,
                   "callbacks_received": callbacks.received,
                   "callbacks_rejected": callbacks.rejected,
                   "per_process_peak_mb": sampler.per_process_peak_mb(),
                   "start_all_workflows_s": round(started_s, 2),
                   "notification_polling_s": poll_s, "dbos_system_db": "sqlite"},
        )
    finally:
        _RUN = None
        sampler.stop()
        DBOS.destroy()
        callbacks.stop()
        client.close()
        agency.stop()
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="DBOS rival of the route benchmark")
    ap.add_argument("--routes", type=int, default=200)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--delay", type=float, default=0.0, help="echo agency answer delay, s")
    ap.add_argument("--poll", type=float, default=0.1,
                    help="DBOS notification_listener_polling_interval_sec (SQLite has no "
                         "LISTEN/NOTIFY: recv learns of a send by this poll)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = run(args.routes, args.steps, agency_delay_s=args.delay, poll_s=args.poll)
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.line())


if __name__ == "__main__":
    main()
