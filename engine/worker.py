"""The engine's worker: claims due jobs and does them.

- ``send_request``: POST the request to the agency (same idempotency key on every attempt),
  then record the delivery; network errors and 5xx retry with backoff (298-п п.10).
- ``apply_answer``: move the route on a stored answer (298-п п.11, п.12).
- ``send_notification``: hand a notification to its channel adapter.
- ``mirror_route``: bring the route's Prefect flow run up to date (never blocks a route).

A worker holds nothing per waiting route: it holds only the jobs it has claimed, under a
lease; killed at any moment, its jobs are claimed again (at once, by a worker restarted under
the same name) and redone idempotently.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from engine import queue, routes
from engine.clock import Clock
from engine.routes import EngineConfig
from engine.settings import Settings
from models.agencies import Agency, AgencyRequest, RequestState
from models.jobs import JobKind
from tasks.agency_client import Delivery, DeliveryResult, backoff_seconds, send_request

log = logging.getLogger("rehab.worker")

CORE_KINDS = [JobKind.apply_answer, JobKind.send_request, JobKind.send_notification]


@dataclass
class WorkerStats:
    sent: int = 0
    send_retries: int = 0
    send_refused: int = 0
    answers_applied: int = 0
    notifications: int = 0
    mirrored: int = 0
    mirror_errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Worker:
    """One worker process's loop (several may run side by side)."""

    def __init__(self, engine: Engine, clock: Clock, cfg: EngineConfig, settings: Settings,
                 *, worker_id: str | None = None, mirror: bool | None = None,
                 prefect_api_url: str | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.cfg = cfg
        self.settings = settings
        self.worker_id = worker_id or f"worker-{os.getpid()}"
        self.mirror_enabled = cfg.mirror if mirror is None else mirror
        self.prefect_api_url = prefect_api_url or settings.prefect_api_url or None
        self.stats = WorkerStats()
        self._http: httpx.AsyncClient | None = None
        self._prefect: Any = None
        self._sem = asyncio.Semaphore(settings.worker_concurrency)
        self.on_idle: Callable[[], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> Worker:
        released = queue.release_worker(self.engine, self.worker_id)
        if released:
            log.info("worker %s: took back %d leased jobs", self.worker_id, released)
        self._http = httpx.AsyncClient(
            timeout=self.settings.send_timeout_seconds,
            limits=httpx.Limits(max_connections=self.settings.worker_concurrency),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._prefect is not None:
            await self._prefect.__aexit__(None, None, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set."""
        while not stop.is_set():
            done = await self.run_once()
            if done == 0:
                if self.on_idle:
                    self.on_idle()
                try:
                    await asyncio.wait_for(stop.wait(), self.settings.worker_idle_poll_seconds)
                except TimeoutError:
                    pass

    async def run_once(self, *, refs: list[str] | None = None) -> int:
        """Claim and do one batch of due jobs; return how many were done."""
        lease = self.settings.job_lease_seconds
        n = self.settings.worker_batch_size
        jobs = queue.claim(self.engine, self.worker_id, kinds=CORE_KINDS, limit=n,
                           lease_seconds=lease, refs=refs)
        answers = [j for j in jobs if j.kind is JobKind.apply_answer]
        sends = [j for j in jobs if j.kind is JobKind.send_request]
        notes = [j for j in jobs if j.kind is JobKind.send_notification]
        for i in range(0, len(answers), self.settings.worker_txn_answers):
            # short transactions: the API's answer writer never waits long for the lock
            self._apply_answers(answers[i:i + self.settings.worker_txn_answers])
            await asyncio.sleep(0)
        if sends:
            await self._send_all(sends)
        for j in notes:
            await asyncio.to_thread(self._notify, j)
        done = len(jobs)
        if self.mirror_enabled:
            done += await self._mirror_batch(refs)
        return done

    # -- handlers ----------------------------------------------------------------------
    def _apply_answers(self, jobs: list[queue.ClaimedJob]) -> None:
        """Apply a batch of stored answers in one transaction (each in its own savepoint,
        so that one failing answer is retried alone and the others go through)."""
        now = self.clock.now()
        failed: list[tuple[queue.ClaimedJob, str]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for job in jobs:
                sp = s.begin_nested()
                try:
                    routes.apply_answer(s, self.cfg, int(job.ref), now=now)
                    queue.finish(s, job)
                    sp.commit()
                    self.stats.answers_applied += 1
                except Exception as exc:
                    sp.rollback()
                    log.exception("applying answer %s failed", job.ref)
                    failed.append((job, f"{type(exc).__name__}: {exc}"))
            s.commit()
        for job, err in failed:
            queue.retry_later(self.engine, job, delay_seconds=self._backoff(job), error=err)

    def _backoff(self, job: queue.ClaimedJob) -> float:
        return backoff_seconds(job.attempts, base=self.settings.send_backoff_base_seconds,
                               cap=self.settings.send_backoff_max_seconds)

    async def _send_all(self, jobs: list[queue.ClaimedJob]) -> None:
        """Send a batch of requests concurrently, then record the outcomes in one
        transaction. A crash between a send and its record resends with the same key."""
        work: list[tuple[queue.ClaimedJob, str, str, str, dict[str, Any]]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for job in jobs:
                req = s.get(AgencyRequest, job.ref)
                agency = s.get(Agency, req.agency_id) if req else None
                if req is None or agency is None or req.state is not RequestState.queued \
                        or not agency.endpoint_url:
                    queue.finish(s, job)
                    continue
                work.append((job, agency.endpoint_url, agency.secret_current,
                             req.idempotency_key, dict(req.body)))
            s.commit()
        assert self._http is not None
        http = self._http

        async def one(url: str, secret: str, key: str, body: dict[str, Any]) -> DeliveryResult:
            async with self._sem:
                return await send_request(http, url=url, secret=secret, idempotency_key=key,
                                          body=body)

        results = await asyncio.gather(*(one(u, sec, k, b) for _, u, sec, k, b in work))
        now = self.clock.now()
        retry: list[tuple[queue.ClaimedJob, str]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for (job, *_), result in zip(work, results, strict=True):
                req = s.get(AgencyRequest, job.ref)
                assert req is not None
                req.attempts += 1
                if result.outcome is Delivery.retry:
                    req.last_error = result.error
                    s.add(req)
                    retry.append((job, result.error or ""))
                    continue
                if req.state is RequestState.queued:
                    if result.outcome is Delivery.delivered:
                        routes.mark_delivered(s, self.cfg, req, now=now)
                        self.stats.sent += 1
                    else:
                        routes.mark_failed(s, self.cfg, req, now=now, error=result.error or "")
                        self.stats.send_refused += 1
                queue.finish(s, job)
            s.commit()
        for job, err in retry:
            queue.retry_later(self.engine, job, delay_seconds=self._backoff(job), error=err)
            self.stats.send_retries += 1

    def _notify(self, job: queue.ClaimedJob) -> None:
        from engine.notify import deliver_notification

        ok = deliver_notification(self.engine, int(job.ref))
        with Session(self.engine) as s:
            queue.finish(s, job)
            s.commit()
        self.stats.notifications += int(ok)

    async def _mirror_batch(self, refs: list[str] | None) -> int:
        jobs = queue.claim(self.engine, self.worker_id, kinds=[JobKind.mirror_route],
                           limit=20, lease_seconds=self.settings.job_lease_seconds, refs=refs)
        if not jobs:
            return 0
        from tasks.prefect_mirror import reconcile

        try:
            if self._prefect is None:
                from prefect.client.orchestration import PrefectClient, get_client

                self._prefect = (PrefectClient(api=self.prefect_api_url)
                                 if self.prefect_api_url else get_client())
                await self._prefect.__aenter__()
            for j in jobs:
                await reconcile(self._prefect, self.engine, j.ref)
                with Session(self.engine) as s:
                    queue.finish(s, j)
                    s.commit()
                self.stats.mirrored += 1
        except Exception as exc:  # Prefect down: the route goes on, the mirror catches up
            self.stats.mirror_errors += 1
            if self._prefect is not None:
                try:
                    await self._prefect.__aexit__(None, None, None)
                finally:
                    self._prefect = None
            log.warning("prefect mirror failed (%s); retrying later", type(exc).__name__)
            for j in jobs:
                queue.retry_later(self.engine, j, delay_seconds=5.0, error=str(exc)[:300])
        return len(jobs)


def run_worker_forever(settings: Settings, *, worker_id: str | None = None) -> None:
    """Entry point of ``rehab worker``."""
    from engine.clock import DbClock
    from engine.db import make_engine

    engine = make_engine()
    clock = DbClock(engine)
    cfg = EngineConfig.from_settings(settings)

    async def main() -> None:
        stop = asyncio.Event()
        async with Worker(engine, clock, cfg, settings, worker_id=worker_id) as w:
            await w.run(stop)

    asyncio.run(main())
