"""The timer sweeper's Prefect face: the ``timer-sweeper`` flow and the sweeps' reports.

The work is ``engine.runtime.sweeper.sweep_due_timers`` (298-п Порядок п.10, п.11, п.13; 363н
п.10б): a sweep fires every due timer once, in batches (one transaction per batch), never
one flow run per timer. In production ``rehab sweeper --interval 60`` runs
``engine.runtime.sweeper.SweeperLoop`` — its own real-time loop, so timers fire on time whether
Prefect is up or not — and reports each sweep to Prefect (:class:`PrefectSweepReporter`)
as a completed run of ``timer-sweeper`` with the counts as its message; the reports wait
while Prefect is down and catch up when it is back. Several sweepers may run at once (row
locks that skip locked rows on PostgreSQL). The demo registers the ``timer-sweeper`` deployment
without a schedule (:func:`register_unscheduled_deployment`) and runs each of its sweeps
with timers due as a run of that deployment against its own database (:func:`run_sweep`):
the Deployments page shows it, and the demo's business clock, not Prefect, decides when a
sweep happens. ``sweeper_deployment`` builds the same flow as a scheduled deployment for
installations that want Prefect to schedule it.

Flow run names, parameters, logs and results carry counts only, never personal data
(152-ФЗ).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

from prefect import flow, serve
from prefect import tags as prefect_tags
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import FlowRunCreate
from prefect.client.schemas.objects import State
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import MissingContextError
from prefect.flow_engine import run_flow
from prefect.logging import get_run_logger
from prefect.states import Completed, Pending, to_state_create
from prefect.types.entrypoint import EntrypointType
from sqlalchemy import Engine

from engine.infra import heartbeats, process_log
from engine.infra.clock import Clock, make_clock
from engine.infra.db import make_engine
from engine.infra.settings import get_settings
from engine.routes.transitions import EngineConfig
from engine.runtime.sweeper import SweeperLoop, SweepReport, sweep_due_timers
from models.heartbeats import ProcessKind
from tasks.prefect_mirror import no_client_retries, prefect_unavailable

log = logging.getLogger("rehab.sweeper")

FLOW_NAME = "timer-sweeper"
DEPLOYMENT_NAME = "timer-sweeper"
DEFAULT_BATCH_SIZE = 200


@dataclass(frozen=True)
class SweepTarget:
    """Where an in-process run of the flow sweeps (the demo's database and clock) instead
    of the installation's database from the settings."""

    engine: Engine
    clock: Clock
    cfg: EngineConfig
    sweeper_id: str


_target: ContextVar[SweepTarget | None] = ContextVar("rehab_sweep_target", default=None)


@contextmanager
def sweeping(target: SweepTarget) -> Iterator[None]:
    """Runs of ``timer_sweeper`` started in this context sweep ``target``."""
    token = _target.set(target)
    try:
        yield
    finally:
        _target.reset(token)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("rehab.sweeper")


def default_sweeper_id() -> str:
    """Unique across hosts and containers: ``<hostname>-<pid>-<random>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def counts_message(counts: dict[str, int]) -> str:
    """The run's state message: ``fired 3 (answer_overdue=1, answer_reminder=2); stale 0;
    batches 1`` (counts only)."""
    kinds = ", ".join(f"{k.removeprefix('fired_')}={v}" for k, v in sorted(counts.items())
                      if k.startswith("fired_"))
    text = f"fired {counts.get('fired', 0)}" + (f" ({kinds})" if kinds else "")
    text += f"; stale {counts.get('stale', 0)}; batches {counts.get('batches', 0)}"
    if counts.get("recomputed"):
        text += f"; deadlines recomputed {counts['recomputed']}"
    return text


@flow(name=FLOW_NAME, flow_run_name=FLOW_NAME, log_prints=False, persist_result=False,
      description="Fire the due working-day timers (reminder, overdue, escalation) once, "
                  "in batches. Counts only; no personal data.")
def timer_sweeper(batch_size: int = DEFAULT_BATCH_SIZE) -> State[dict[str, int]]:
    """Fire the due working-day timers in batches of ``batch_size``.

    The run ends Completed with the counts as its message (shown in the Prefect UI); a
    caller gets the counts (``fired``, ``fired_<kind>``, ``stale``, ``batches``,
    ``recomputed``) as the return value."""
    if batch_size < 1:
        raise ValueError("batch_size: must be at least 1")
    target = _target.get()
    if target is not None:
        result = sweep_due_timers(target.engine, target.clock, target.cfg,
                                  sweeper_id=target.sweeper_id, batch_size=batch_size)
    else:
        settings = get_settings()
        engine = make_engine(settings.effective_database_url)
        try:
            result = sweep_due_timers(
                engine, make_clock(engine, settings),
                EngineConfig.from_settings(settings), sweeper_id=default_sweeper_id(),
                batch_size=batch_size)
        finally:
            engine.dispose()
    counts = result.as_dict()
    _logger().info("timer sweep: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return Completed(message=counts_message(counts), data=counts)


def run_sweep(target: SweepTarget, *, run_name: str = FLOW_NAME,
              batch_size: int = DEFAULT_BATCH_SIZE, deployment_id: UUID | None = None,
              tags: list[str] | None = None) -> dict[str, int]:
    """One sweep of ``target`` as one run of the ``timer-sweeper`` flow (in this process,
    against the Prefect API of the current settings); returns its counts.

    With ``deployment_id`` the run is a run of that deployment (the Deployments page lists
    it): created from the deployment already ``Pending`` — no runner or worker would take
    it — and run here at once, as a runner would run it."""
    counts: object
    with sweeping(target):
        if deployment_id is None:
            with prefect_tags(*(tags or [])):
                counts = timer_sweeper.with_options(flow_run_name=run_name)(
                    batch_size=batch_size)
        else:
            with get_client(sync_client=True) as client:
                run = client.create_flow_run_from_deployment(
                    deployment_id, parameters={"batch_size": batch_size}, name=run_name,
                    tags=tags, state=Pending())
            # the flow's own run name would rename the run as it starts
            ran = run_flow(timer_sweeper.with_options(flow_run_name=run_name), flow_run=run,
                           parameters={"batch_size": batch_size}, return_type="result")
            counts = ran
    assert isinstance(counts, dict)
    return counts


def sweeper_deployment(interval_seconds: float | None = 60,
                       batch_size: int = DEFAULT_BATCH_SIZE) -> RunnerDeployment:
    """The ``timer-sweeper`` deployment, scheduled every ``interval_seconds`` (None: no
    schedule — its runs are started by whoever registered it, e.g. the demo)."""
    if interval_seconds is not None and interval_seconds <= 0:
        raise ValueError("interval: must be a positive number of seconds")
    if batch_size < 1:
        raise ValueError("batch_size: must be at least 1")
    deployment = timer_sweeper.to_deployment(
        name=DEPLOYMENT_NAME, interval=interval_seconds, paused=False,
        parameters={"batch_size": batch_size}, tags=["rehab", "timers"],
        description="Fires due working-day timers in batches (298-п Порядок п.10, п.11, "
                    "п.13; 363н п.10б)."
                    + ("" if interval_seconds else " Not scheduled by Prefect: the "
                       "process that registered it starts its runs."),
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    assert isinstance(deployment, RunnerDeployment)  # the sync path of async_dispatch
    return deployment


def register_unscheduled_deployment(batch_size: int = DEFAULT_BATCH_SIZE) -> UUID:
    """Register the ``timer-sweeper`` deployment without a schedule (the Prefect API of the
    current settings) and return its id: Prefect starts none of its runs by itself, so a
    caller that sweeps on its own clock (the demo: business time) stays the one that
    decides when a sweep happens, and its sweeps show as the deployment's runs."""
    dep_id = sweeper_deployment(None, batch_size).apply()
    assert isinstance(dep_id, UUID)  # the sync path of async_dispatch
    return dep_id


class PrefectSweepReporter:
    """Reports sweeps to Prefect as completed runs of ``timer-sweeper`` (counts only), one
    run per sweep, oldest first; stops at the first sign that Prefect is unavailable so the
    rest wait for the next sweep. A report's flow run has the idempotency key
    ``sweep:<sweeper id>:<n>``: one repeated after a lost reply is not a second run."""

    def __init__(self, api_url: str | None = None, *, timeout_seconds: float = 10.0) -> None:
        self.api_url = api_url or None
        self.timeout = timeout_seconds
        self._flow_id: UUID | None = None

    def __call__(self, reports: list[SweepReport]) -> int:
        with no_client_retries():  # a dead server: one refused connection, not a minute
            return asyncio.run(self._report(reports))

    async def _report(self, reports: list[SweepReport]) -> int:
        done = 0
        client = PrefectClient(api=self.api_url) if self.api_url else get_client()
        try:
            async with client:
                for report in reports:
                    try:
                        async with asyncio.timeout(self.timeout):
                            await self._one(client, report)
                    except Exception as exc:
                        if prefect_unavailable(exc):
                            log.info("prefect unavailable (%s: %s); %d sweep reports wait",
                                     type(exc).__name__, str(exc)[:120], len(reports) - done)
                            return done
                        log.warning("sweep report %d refused by Prefect (%s: %s); dropped",
                                    report.seq, type(exc).__name__, str(exc)[:200])
                    done += 1
        except Exception as exc:
            if not prefect_unavailable(exc):
                raise
        return done

    async def _one(self, client: PrefectClient, report: SweepReport) -> None:
        if self._flow_id is None:
            self._flow_id = await client.create_flow_from_name(FLOW_NAME)
        message = (f"{counts_message(report.counts)}; swept at "
                   f"{report.finished_at:%Y-%m-%d %H:%M:%S} UTC")
        body = FlowRunCreate(
            flow_id=self._flow_id,
            name=FLOW_NAME, parameters={"batch_size": DEFAULT_BATCH_SIZE},
            tags=["rehab", "timers", f"sweeper:{report.sweeper_id}"],
            idempotency_key=f"sweep:{report.sweeper_id}:{report.seq}",
            state=to_state_create(Completed(message=message)),
        )
        await client.request("POST", "/flow_runs/",
                             json=body.model_dump(mode="json", exclude_unset=True))


def run_sweeper_forever(interval_seconds: float = 60,
                        batch_size: int = DEFAULT_BATCH_SIZE) -> None:
    """``rehab sweeper``: sweep every ``interval_seconds`` on our own loop (Prefect is not
    needed to fire timers) and report each sweep to Prefect when it is up."""
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    reporter = PrefectSweepReporter(settings.prefect_api_url or None) \
        if settings.prefect_mirror else None
    loop = SweeperLoop(engine, make_clock(engine, settings), EngineConfig.from_settings(settings),
                       sweeper_id=default_sweeper_id(), interval_seconds=interval_seconds,
                       batch_size=batch_size, reporter=reporter)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def counters() -> dict[str, float]:
        return {"sweeps": loop.sweeps, "fired": loop.fired, "errors": loop.errors,
                "reported": loop.reported, "unreported": len(loop.unreported),
                "beat_interval_seconds": max(interval_seconds, settings.heartbeat_seconds)}

    heartbeats.register(engine, loop.sweeper_id, ProcessKind.sweeper)
    def beat() -> None:
        heartbeats.beat(engine, loop.sweeper_id, counters())

    loop.after_sweep = beat
    process_log.started("sweeper", settings, sweeper_id=loop.sweeper_id,
                        interval_seconds=interval_seconds,
                        reporting_to_prefect=reporter is not None)
    try:
        loop.run(stop)
    finally:
        try:
            heartbeats.stopped(engine, loop.sweeper_id, counters())
        finally:
            engine.dispose()
        process_log.stopped("sweeper", sweeper_id=loop.sweeper_id, sweeps=loop.sweeps,
                            fired=loop.fired)


def serve_sweeper(interval_seconds: float = 60, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
    """Serve the sweeper deployment on its interval schedule (blocks; ``rehab sweeper``).

    Several sweepers may serve it at once (each run claims its timers with row locks), so
    one of them stopping must not pause the shared schedule (``pause_on_shutdown=False``);
    a restarted sweeper applies it unpaused.
    """
    serve(sweeper_deployment(interval_seconds, batch_size), pause_on_shutdown=False,
          print_starting_message=True)
