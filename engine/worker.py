"""The engine's worker: claims due jobs and does them.

- ``send_request``: POST the request to the agency (same idempotency key on every attempt),
  then record the delivery; network errors and 5xx retry with backoff (298-п п.10).
- ``apply_answer``: move the route on a stored answer (298-п п.11, п.12).
- ``send_cancel``: POST a withdrawal notice to the agency (same signing and key scheme as a
  request, key + ``:cancel``), retried like a request.
- ``send_notification``: hand a notification to its channel adapter — in a lane of its own
  (``notify_concurrency`` threads, ``notify_timeout_seconds``), never awaited by the route
  work, so a slow or dead mail server cannot stall answers and requests.
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
from datetime import datetime
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

CORE_KINDS = [JobKind.apply_answer, JobKind.send_request, JobKind.send_cancel]


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
        self._notify_lane: set[asyncio.Future[None]] = set()
        self._notify_pool: Any = None
        #: the mirror lane: one batch of Prefect mirroring at a time, beside the route work
        self._mirror_task: asyncio.Task[int] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> Worker:
        if self.mirror_enabled:
            # Prefect's client takes a second or two of CPU to import: at start, not in the
            # middle of the first answers (the event loop would stand still meanwhile)
            import tasks.prefect_mirror  # noqa: F401
        released = queue.release_worker(self.engine, self.worker_id)
        if released:
            log.info("worker %s: took back %d leased jobs", self.worker_id, released)
        self._http = httpx.AsyncClient(
            timeout=self.settings.send_timeout_seconds,
            limits=httpx.Limits(max_connections=self.settings.worker_concurrency),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._notify_lane:  # each bounded by the channel timeout
            await asyncio.gather(*self._notify_lane, return_exceptions=True)
        if self._notify_pool is not None:
            self._notify_pool.shutdown(wait=False)
        if self._http is not None:
            await self._http.aclose()
        if self._prefect is not None:
            await self._prefect.__aexit__(None, None, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set.

        A pipeline: a claimed batch of requests is sent in a task of its own (at most
        ``worker_send_batches`` of them in flight), and the loop goes on claiming and
        applying answers while those requests are on the wire, so that a slow agency holds
        up no other route and the worker's CPU is never idle while there is work.
        """
        inflight: set[asyncio.Task[None]] = set()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                done = await self.run_once(background=inflight)
                if done:
                    continue
                if self.on_idle and not inflight:
                    self.on_idle()
                await asyncio.wait({stopping, *inflight},
                                   timeout=self.settings.worker_idle_poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            lanes: list[asyncio.Future[Any]] = [*inflight]
            if self._mirror_task is not None:
                lanes.append(self._mirror_task)
            if lanes:
                await asyncio.gather(*lanes, return_exceptions=True)

    async def run_once(self, *, refs: list[str] | None = None,
                       background: set[asyncio.Task[None]] | None = None) -> int:
        """Claim and do one batch of due jobs; return how many were claimed.

        ``background`` (the ``run`` loop's): requests are sent by a task added to that set
        instead of being awaited here; while the set is full, no requests are claimed."""
        lease = self.settings.job_lease_seconds
        n = self.settings.worker_batch_size
        kinds = CORE_KINDS
        if background is not None and len(background) >= self.settings.worker_send_batches:
            kinds = [k for k in CORE_KINDS if k is not JobKind.send_request]
        jobs = queue.claim(self.engine, self.worker_id, kinds=kinds, limit=n,
                           lease_seconds=lease, refs=refs)
        answers = [j for j in jobs if j.kind is JobKind.apply_answer]
        sends = [j for j in jobs if j.kind is JobKind.send_request]
        cancels = [j for j in jobs if j.kind is JobKind.send_cancel]
        for i in range(0, len(answers), self.settings.worker_txn_answers):
            # short transactions: the API's answer writer never waits long for the lock
            self._apply_answers(answers[i:i + self.settings.worker_txn_answers])
            await asyncio.sleep(0)
        if sends:
            if background is None:
                await self._send_all(sends)
            else:
                task = asyncio.create_task(self._send_all(sends))
                background.add(task)
                task.add_done_callback(background.discard)
        if cancels:
            await self._send_cancels(cancels)
        done = len(jobs) + self._start_notifications(refs)
        if self.mirror_enabled:
            if background is None:
                done += await self._mirror_batch(refs)
            elif self._mirror_task is None or self._mirror_task.done():
                # the mirror lane: Prefect's calls (and their CPU) never hold up the next
                # claimed answers and requests; its jobs coalesce while it is busy
                self._mirror_task = asyncio.create_task(self._mirror_batch(refs))
                self._mirror_task.add_done_callback(self._mirror_done)
        return done

    @staticmethod
    def _mirror_done(task: asyncio.Task[int]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("prefect mirror batch failed", exc_info=task.exception())

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

    async def _post(self, url: str, secrets: list[str], key: str,
                    body: dict[str, Any]) -> DeliveryResult:
        """One signed POST to an agency (at most ``worker_concurrency`` at once)."""
        assert self._http is not None
        async with self._sem:
            return await send_request(self._http, url=url, secret=secrets, idempotency_key=key,
                                      body=body)

    def _backoff(self, job: queue.ClaimedJob) -> float:
        return backoff_seconds(job.attempts, base=self.settings.send_backoff_base_seconds,
                               cap=self.settings.send_backoff_max_seconds)

    async def _send_all(self, jobs: list[queue.ClaimedJob]) -> None:
        """Send a batch of requests concurrently, then record the outcomes in one
        transaction. A crash between a send and its record resends with the same key."""
        from engine.agencies import usable_secrets

        production = self.settings.environment == "production"
        work: list[tuple[queue.ClaimedJob, str, list[str], str, dict[str, Any]]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for job in jobs:
                req = s.get(AgencyRequest, job.ref)
                agency = s.get(Agency, req.agency_id) if req else None
                if req is None or agency is None or req.state is not RequestState.queued \
                        or not agency.endpoint_url:
                    queue.finish(s, job)
                    continue
                # during a rotation: signed with both secrets (Standard Webhooks)
                work.append((job, agency.endpoint_url,
                             usable_secrets(agency, production=production),
                             req.idempotency_key, dict(req.body)))
            s.commit()
        results = await asyncio.gather(*(self._post(u, sec, k, b)
                                         for _, u, sec, k, b in work))
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

    #: Real seconds a side lane (notifications, mirror) that found nothing to do is not
    #: asked again: an idle worker's poll is then one claim, not three (their latency is
    #: not a route's: a notification or a Prefect update a quarter of a second later).
    LANE_IDLE_SECONDS = 0.25
    _notify_idle_until: float = 0.0
    _mirror_idle_until: float = 0.0

    def _start_notifications(self, refs: list[str] | None) -> int:
        """The notification lane: claim as many due notifications as it has free places and
        send each in a thread of its own pool, without waiting for them."""
        from time import monotonic

        free = self.settings.notify_concurrency - len(self._notify_lane)
        if free <= 0 or (refs is None and monotonic() < self._notify_idle_until):
            return 0
        jobs = queue.claim(self.engine, self.worker_id, kinds=[JobKind.send_notification],
                           limit=free, lease_seconds=self.settings.job_lease_seconds, refs=refs)
        if not jobs:
            self._notify_idle_until = monotonic() + self.LANE_IDLE_SECONDS
            return 0
        if self._notify_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._notify_pool = ThreadPoolExecutor(self.settings.notify_concurrency,
                                                   thread_name_prefix="notify")
        loop = asyncio.get_running_loop()
        now = self.clock.now()
        for j in jobs:
            fut = loop.run_in_executor(self._notify_pool, self._notify, j, now)
            self._notify_lane.add(fut)
            fut.add_done_callback(self._notify_lane.discard)
        return len(jobs)

    def _notify(self, job: queue.ClaimedJob, now: datetime) -> None:
        from engine.notify import deliver_notification

        try:
            ok = deliver_notification(self.engine, int(job.ref), settings=self.settings,
                                      now=now)
        except Exception as exc:  # the lane must go on; the job is retried
            log.exception("notification %s failed", job.ref)
            queue.retry_later(self.engine, job, delay_seconds=self._backoff(job),
                              error=f"{type(exc).__name__}: {exc}"[:300])
            return
        with Session(self.engine) as s:
            queue.finish(s, job)
            s.commit()
        self.stats.notifications += int(ok)

    async def _send_cancels(self, jobs: list[queue.ClaimedJob]) -> None:
        """POST withdrawal notices (``CancelNotice``) like requests: signed, the request's
        idempotency key + ``:cancel``; network errors and 5xx retry with backoff, a 2xx or
        4xx outcome is recorded in the audit (``routes.record_cancel_outcome``)."""
        from engine.agencies import usable_secrets
        from models.routes import CancelNotice, CancelState

        production = self.settings.environment == "production"
        work: list[tuple[queue.ClaimedJob, str, list[str], dict[str, Any]]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for job in jobs:
                notice = s.get(CancelNotice, job.ref)
                agency = s.get(Agency, notice.agency_id) if notice else None
                if notice is None or agency is None or notice.state is not CancelState.queued:
                    queue.finish(s, job)
                elif not agency.endpoint_url:  # the agency went to paper meanwhile
                    routes.record_cancel_outcome(s, notice.id, now=self.clock.now(),
                                                 delivered=True)
                    queue.finish(s, job)
                else:
                    work.append((job, agency.endpoint_url,
                                 usable_secrets(agency, production=production),
                                 routes.cancel_notice_body(notice)))
            s.commit()
        results = await asyncio.gather(*(self._post(u, sec, j.ref, b)
                                         for j, u, sec, b in work))
        now = self.clock.now()
        retry: list[tuple[queue.ClaimedJob, str]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            for (job, *_), result in zip(work, results, strict=True):
                if result.outcome is Delivery.retry:
                    notice = s.get(CancelNotice, job.ref)
                    if notice is not None:
                        notice.attempts += 1
                        notice.last_error = (result.error or "")[:500]
                        s.add(notice)
                    retry.append((job, result.error or ""))
                    continue
                routes.record_cancel_outcome(s, job.ref, now=now,
                                             delivered=result.outcome is Delivery.delivered,
                                             error=result.error)
                queue.finish(s, job)
            s.commit()
        for job, err in retry:
            queue.retry_later(self.engine, job, delay_seconds=self._backoff(job), error=err)

    #: Real-time instant (monotonic) before which Prefect is left alone (it was down).
    _prefect_down_until: float = 0.0

    async def _mirror_batch(self, refs: list[str] | None) -> int:
        """Mirror a batch of routes into Prefect (``CONCURRENCY`` at a time) for at most a
        short slice of real time (jobs not started within it are released for the next
        pass), so that answers and requests never wait long behind Prefect.

        Prefect unavailable (connection refused, timeout, 502/503/504): the batch's
        unfinished jobs wait ``DOWN_RETRY_SECONDS`` and no mirror job is claimed meanwhile;
        the routes go on and the mirror catches up. Any other error is one route's: only its
        job backs off (exponentially), the others are mirrored.
        """
        from time import monotonic

        from tasks import prefect_mirror as pm

        if monotonic() < self._prefect_down_until or (
                refs is None and monotonic() < self._mirror_idle_until):
            return 0
        jobs = queue.claim(self.engine, self.worker_id, kinds=[JobKind.mirror_route],
                           limit=pm.BATCH_SIZE, lease_seconds=self.settings.job_lease_seconds,
                           refs=refs)
        if not jobs:
            self._mirror_idle_until = monotonic() + self.LANE_IDLE_SECONDS
            return 0
        with pm.no_client_retries():  # our queue retries, not a minute-long client loop
            down, pending = await self._mirror_jobs(jobs)
        if down is not None:  # Prefect down: the routes go on, the mirror catches up
            self.stats.mirror_errors += 1
            self._prefect_down_until = monotonic() + pm.DOWN_RETRY_SECONDS
            client, self._prefect = self._prefect, None
            if client is not None:
                try:
                    await client.__aexit__(None, None, None)
                except Exception:  # noqa: BLE001 - a dead connection may not close cleanly
                    log.debug("closing the Prefect client failed", exc_info=True)
            log.warning("prefect unavailable (%s: %s); mirroring waits %.0f s",
                        type(down).__name__, str(down)[:300], pm.DOWN_RETRY_SECONDS)
            error = f"prefect unavailable: {type(down).__name__}: {down}"
            for j in pending:
                queue.retry_later(self.engine, j, delay_seconds=pm.DOWN_RETRY_SECONDS,
                                  error=error[:300])
        return len(jobs)

    async def _mirror_jobs(
        self, jobs: list[queue.ClaimedJob],
    ) -> tuple[BaseException | None, list[queue.ClaimedJob]]:
        """Reconcile the jobs' routes; return (why Prefect is unavailable or None, the jobs
        left unfinished because of it)."""
        from time import monotonic

        from tasks import prefect_mirror as pm

        try:
            if self._prefect is None:
                from prefect.client.orchestration import PrefectClient, get_client

                client = (PrefectClient(api=self.prefect_api_url)
                          if self.prefect_api_url else get_client())
                await client.__aenter__()
                self._prefect = client
        except Exception as exc:  # noqa: BLE001 - any failure to reach Prefect
            return exc, jobs
        prefect = self._prefect
        now = self.clock.now()
        slice_end = monotonic() + pm.SLICE_SECONDS

        async def one(job: queue.ClaimedJob) -> None:
            async with asyncio.timeout(pm.CALL_TIMEOUT_SECONDS):
                await pm.reconcile(prefect, self.engine, job.ref, now=now)
            with Session(self.engine) as s:
                queue.finish(s, job)
                s.commit()

        pending = list(jobs)
        while pending:
            chunk, pending = pending[:pm.CONCURRENCY], pending[pm.CONCURRENCY:]
            results = await asyncio.gather(*(one(j) for j in chunk), return_exceptions=True)
            down: BaseException | None = None
            for job, res in zip(chunk, results, strict=True):
                if res is None:
                    self.stats.mirrored += 1
                elif not isinstance(res, Exception):
                    raise res  # cancellation, KeyboardInterrupt: not ours to swallow
                elif pm.prefect_unavailable(res):
                    down = res
                    pending.append(job)
                else:
                    # this route's own trouble: it backs off alone, the others go on
                    self.stats.mirror_errors += 1
                    delay = backoff_seconds(job.attempts, base=pm.ERROR_BACKOFF_BASE_SECONDS,
                                            cap=pm.ERROR_BACKOFF_MAX_SECONDS)
                    log.warning("prefect mirror of route %s failed (%s: %s); retry in %.0f s",
                                job.ref, type(res).__name__, str(res)[:200], delay)
                    queue.retry_later(self.engine, job, delay_seconds=delay,
                                      error=f"{type(res).__name__}: {res}"[:300])
            if down is not None:
                return down, pending
            if pending and monotonic() >= slice_end:
                for j in pending:  # the slice is used up: core jobs go first
                    queue.retry_later(self.engine, j, delay_seconds=0.0,
                                      error="deferred: mirror time slice used up")
                return None, []
        return None, []


def run_worker_forever(settings: Settings, *, worker_id: str | None = None) -> None:
    """Entry point of ``rehab worker``."""
    from engine.clock import DbClock
    from engine.db import make_engine

    engine = make_engine()
    clock = DbClock(engine, ttl=settings.clock_cache_seconds)
    cfg = EngineConfig.from_settings(settings)

    async def main() -> None:
        stop = asyncio.Event()
        async with Worker(engine, clock, cfg, settings, worker_id=worker_id) as w:
            await w.run(stop)

    asyncio.run(main())
