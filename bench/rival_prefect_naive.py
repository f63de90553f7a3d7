"""Rival 3: the route scenario the naive Prefect way (one suspended flow run per person).

A local Prefect server (:class:`tasks.prefect_server.PrefectServer`, temp home) and a
deployment served by ``flow.serve`` in a subprocess (the runner). Each route is one flow
run of :func:`naive_route`; each step is a task that posts the signed request to the echo
agency, then ``suspend_flow_run(wait_for_input=AgencyAnswer)``: the flow-run process exits.
The agency's answer reaches this process's :class:`CallbackServer`, which stores it (202)
and calls the API's resume with ``run_input`` once the run is paused; the runner then
starts a NEW process that re-runs the flow from the top (finished tasks come back from
persisted results — ``PREFECT_RESULTS_PERSIST_BY_DEFAULT=true`` — and the finished
suspends return their inputs) up to the next suspend. One applied answer = one transition
(the apply task marks it in a directory shared with the bench).

Run: ``.venv/bin/python bench/rival_prefect_naive.py --routes 5 [--max-seconds 300]``.
Memory: this process + Prefect server + runner + its flow-run processes (not the agency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from prefect import flow, task  # noqa: E402
from prefect.flow_runs import suspend_flow_run  # noqa: E402
from prefect.input import RunInput  # noqa: E402
from prefect.runtime import flow_run as current_flow_run  # noqa: E402

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
    wait_for,
)

NAME = "prefect-naive"
FLOW_NAME = "naive-route"
DEPLOYMENT_NAME = "naive"
SECRETS_ENV = "RIVAL_AGENCY_SECRETS"
APPLIED_ENV = "RIVAL_APPLIED_DIR"


class AgencyAnswer(RunInput):
    """The input a suspended route waits for: the agency's answer."""

    task_id: str
    outcome: str
    payload: dict[str, Any] = {}
    comment: str | None = None


# -- the flow (runs in the runner's flow-run processes) ------------------------------------
@task(retries=3, retry_delay_seconds=1)
def send_request_task(route_id: str, index: int, agency_url: str, callback_url: str) -> int:
    secret = json.loads(os.environ[SECRETS_ENV])[step_for(index).agency]
    body = build_request(route_id=route_id, index=index, callback_url=callback_url)
    with httpx.Client(timeout=30.0) as client:
        return post_request(client, agency_url, secret, body)


@task
def apply_answer_task(route_id: str, index: int, answer: dict[str, Any]) -> str:
    task_id = task_id_for(route_id, index)
    if answer.get("task_id") != task_id:
        raise ValueError(f"answer for {answer.get('task_id')} delivered to {task_id}")
    marker = Path(os.environ[APPLIED_ENV]) / task_id
    marker.write_text(str(answer["outcome"]))
    return str(answer["outcome"])


@flow(name=FLOW_NAME, persist_result=True)
def naive_route(
    route_id: str, steps: int, agency_urls: dict[str, str], callback_base: str,
    answer_timeout_s: int = 600,
) -> list[str]:
    run_id = str(current_flow_run.id)
    outcomes: list[str] = []
    for index in range(steps):
        agency = step_for(index).agency
        callback_url = f"{callback_base}/callbacks/{agency}/{run_id}"
        send_request_task(route_id, index, agency_urls[agency], callback_url)
        answer = suspend_flow_run(wait_for_input=AgencyAnswer, timeout=answer_timeout_s)
        outcomes.append(apply_answer_task(route_id, index, answer.model_dump()))
    return outcomes


def serve(limit: int) -> None:
    """The runner process: serve the deployment (blocks until terminated)."""
    naive_route.serve(name=DEPLOYMENT_NAME, limit=limit, print_starting_message=False)


# -- the bench side ------------------------------------------------------------------------
class _Resumer:
    """Stores answers (the callback's 202) and resumes each run once it is paused."""

    def __init__(self, api_url: str, deadline: float) -> None:
        self.api_url = api_url
        self.deadline = deadline
        self.stored: dict[str, CallbackAnswer] = {}
        self.resumed = 0
        self.resume_attempts = 0
        self.errors: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_answer(self, answer: CallbackAnswer) -> None:
        if answer.webhook_id in self.stored:
            return  # a redelivery: already stored and being resumed
        self.stored[answer.webhook_id] = answer
        t = asyncio.create_task(self._resume(answer))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _resume(self, answer: CallbackAnswer) -> None:
        from prefect.client.orchestration import PrefectClient
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.responses import SetStateStatus

        run_input = {"task_id": answer.task_id, "outcome": answer.outcome,
                     "payload": answer.payload, "comment": answer.comment}
        flow_run_id = UUID(answer.ref)
        async with PrefectClient(self.api_url) as client:
            while time.monotonic() < self.deadline:
                run = await client.read_flow_run(flow_run_id)
                if run.state is not None and run.state.is_paused():
                    self.resume_attempts += 1
                    result = await client.resume_flow_run(flow_run_id, run_input=run_input)
                    if result.status == SetStateStatus.ACCEPT:
                        self.resumed += 1
                        return
                elif run.state is not None and run.state.type in (
                        StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
                    self.errors.append(f"{flow_run_id}: {run.state.type.value} "
                                       f"{run.state.message}"[:300])
                    return
                # The answer came before the run reached its suspend: poll until paused.
                await asyncio.sleep(0.2)


def run(
    n_routes: int, steps: int = 3, *, max_seconds: float = 300.0, agency_delay_s: float = 0.0,
    poll_frequency_s: int = 1, keep_home: Path | None = None, database_url: str | None = None,
) -> RivalResult:
    """Run ``n_routes`` routes as suspended Prefect flow runs; stop at ``max_seconds``.

    The clock starts once the server and the runner are up (their start-up is reported in
    ``notes``); at the cap the result carries the transitions done so far and their rate.
    """
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from bench.echo_agency import start_echo_agency
    from tasks.prefect_server import PrefectServer

    tmp = tempfile.TemporaryDirectory(prefix="rival-prefect-") if keep_home is None else None
    home = Path(tmp.name) if tmp is not None else Path(keep_home)  # type: ignore[arg-type]
    applied = home / "applied"
    applied.mkdir(parents=True, exist_ok=True)
    secrets = make_secrets()
    expected = n_routes * steps
    t_setup = time.perf_counter()
    agency = start_echo_agency(secrets, delay_s=agency_delay_s)
    sampler = ResourceSampler(exclude=[agency.pid]).start()
    server = PrefectServer(home / "prefect", database_url=database_url)
    runner: subprocess.Popen[bytes] | None = None
    callbacks: CallbackServer | None = None
    runner_log = (home / "runner.log").open("ab")
    try:
        server.start()
        if server.pid is not None:
            sampler.labels[server.pid] = "prefect-server"
        env = dict(os.environ)
        env.update(server.env())
        env.update({
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
            "PREFECT_RUNNER_POLL_FREQUENCY": str(poll_frequency_s),
            "PREFECT_RUNNER_PROCESS_LIMIT": str(n_routes + 2),
            "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
            SECRETS_ENV: json.dumps(secrets),
            APPLIED_ENV: str(applied),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        })
        runner = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", "--limit",
             str(n_routes + 2)],
            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=runner_log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        sampler.labels[runner.pid] = "runner"  # its children: the flow-run processes
        with SyncPrefectClient(server.api_url) as client:
            deployment_id: UUID | None = None

            def deployment_ready() -> bool:
                nonlocal deployment_id
                if runner is not None and runner.poll() is not None:
                    raise RuntimeError(f"runner exited with code {runner.returncode}")
                try:
                    deployment_id = client.read_deployment_by_name(
                        f"{FLOW_NAME}/{DEPLOYMENT_NAME}").id
                except Exception:
                    return False
                return True

            wait_for(deployment_ready, timeout=120, interval=0.25, what="the served deployment")
            assert deployment_id is not None
            setup_s = time.perf_counter() - t_setup

            t0 = time.perf_counter()
            deadline_mono = time.monotonic() + max_seconds
            resumer = _Resumer(server.api_url, deadline_mono)
            callbacks = CallbackServer(secrets, resumer.on_answer).start()
            agency_urls = {code: agency.url_for(code) for code in secrets}
            for i in range(n_routes):
                client.create_flow_run_from_deployment(deployment_id, parameters={
                    "route_id": f"route-{i:05d}", "steps": steps, "agency_urls": agency_urls,
                    "callback_base": callbacks.base_url,
                    "answer_timeout_s": int(max_seconds) + 60,
                })
            dep_filter = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            states: dict[str, int] = {}
            done = 0
            last_check = 0.0
            while True:
                done = sum(1 for _ in applied.iterdir())
                if done >= expected or time.monotonic() >= deadline_mono:
                    break
                if time.monotonic() - last_check > 2.0:
                    last_check = time.monotonic()
                    runs = client.read_flow_runs(deployment_filter=dep_filter, limit=200)
                    states = {}
                    for r in runs:
                        key = str(r.state.name) if r.state is not None else "none"
                        states[key] = states.get(key, 0) + 1
                    if states.get("Failed") or states.get("Crashed"):
                        break
                time.sleep(0.1)
            seconds = time.perf_counter() - t0
            sampler.stop()
            states = {}
            for r in client.read_flow_runs(deployment_filter=dep_filter, limit=200):
                key = str(r.state.name) if r.state is not None else "none"
                states[key] = states.get(key, 0) + 1
        stats = agency.stats()
        return RivalResult(
            name=NAME, routes=n_routes, transitions=done, seconds=seconds,
            transitions_per_s=done / seconds if seconds > 0 else 0.0,
            peak_rss_mb=sampler.peak_rss_mb, threads_peak=sampler.threads_peak,
            expected_transitions=expected, completed=done >= expected,
            notes={
                "setup_s (server + runner up)": round(setup_s, 1),
                "flow_run_states": states, "errors": resumer.errors[:10],
                "resumes": resumer.resumed, "resume_attempts": resumer.resume_attempts,
                "agency": stats, "callbacks_received": callbacks.received,
                "processes_peak": sampler.processes_peak,
                "processes_by_role": sampler.roles_summary(),
                "runner_poll_frequency_s": poll_frequency_s,
                "max_seconds": max_seconds,
                "prefect_database": "postgresql" if database_url else "sqlite",
            },
        )
    finally:
        sampler.stop()
        if callbacks is not None:
            callbacks.stop()
        if runner is not None:
            _stop_group(runner)
        runner_log.close()
        server.stop()
        agency.stop()
        if tmp is not None:
            tmp.cleanup()


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:  # flow-run processes left in the runner's group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=grace)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="naive Prefect rival of the route benchmark")
    sub = ap.add_subparsers(dest="cmd")
    sv = sub.add_parser("serve", help="(internal) the runner process")
    sv.add_argument("--limit", type=int, default=10)
    ap.add_argument("--routes", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--delay", type=float, default=0.0, help="echo agency answer delay, s")
    ap.add_argument("--poll", type=int, default=1, help="PREFECT_RUNNER_POLL_FREQUENCY, s")
    ap.add_argument("--keep-home", type=Path, default=None,
                    help="keep server, runner logs and results in this directory")
    ap.add_argument("--database-url", default=None,
                    help="Prefect server database (default: SQLite in the temp home)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        serve(args.limit)
        return
    result = run(args.routes, args.steps, max_seconds=args.max_seconds,
                 agency_delay_s=args.delay, poll_frequency_s=args.poll,
                 keep_home=args.keep_home, database_url=args.database_url)
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.line())


if __name__ == "__main__":
    main()
