"""The engine's worker: claims due jobs and does them.

- ``send_request``: POST the request to the agency (same idempotency key on every attempt),
  then record the delivery; network errors and 5xx retry with backoff (298-п п.10).
- ``apply_answer``: move the route on a stored answer (298-п п.11, п.12).
- ``send_cancel``: POST a withdrawal notice to the agency (same signing and key scheme as a
  request, key + ``:cancel``), retried like a request.
- ``send_notification``: hand a notification to its channel adapter — in a lane of its own
  (``notify_concurrency`` threads, ``notify_timeout_seconds``), never awaited by the route
  work, so a slow or dead mail server cannot stall answers and requests.
- other kinds (``mirror_route``: the route's Prefect flow run) are done by the handlers of
  a registry assembled at start-up (``engine/runtime/handlers.py``); the worker knows nothing of
  Prefect.

A worker holds nothing per waiting route: it holds only the jobs it has claimed, under a
fenced lease (engine/infra/queue.py); killed at any moment, its jobs are claimed again when their
leases end and redone idempotently. A worker's name is unique across hosts and containers
(host, pid, random suffix); starting one never frees another's leases, even under the same
``--name`` (nothing proves the old holder is dead). A batch of sends keeps its leases alive
while it is on the wire (a heartbeat every third of the lease).

The event loop never waits for the database: the database work runs in threads
(``asyncio.to_thread``; one hand-off per batch — a claim and the answers it brought are one),
so a slow ``FOR UPDATE`` stalls no request on the wire. The outcomes of a batch are recorded
in one transaction; if one of them fails, the batch is recorded again with each outcome in
a savepoint of its own, so the failing one fails alone and is retried, and the others go
through (``_each_alone``). An exception of a background task is logged and counted
(``WorkerStats``), never lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime
from time import monotonic
from typing import Any, Literal, TypeVar

import httpx
from sqlalchemy import Engine, bindparam, text
from sqlmodel import Session, col, select

from engine.agencies.participants import usable_secrets
from engine.infra import audit, heartbeats, process_log, queue
from engine.infra.backoff import backoff_seconds
from engine.infra.clock import Clock, make_clock
from engine.infra.db import make_engine
from engine.infra.settings import Settings
from engine.notifications.outbox import deliver_notification
from engine.routes import transitions as routes
from engine.routes.transitions import EngineConfig
from engine.runtime.handlers import JobHandler, WorkerStats
from models.agencies import Agency, AgencyRequest, RequestState
from models.heartbeats import ProcessKind
from models.jobs import ROUTE_WORK, JobKind
from models.routes import CancelNotice, CancelState
from tasks.agency_client import (
    AgencyClient,
    Delivery,
    DeliveryResult,
    PerAgencyTransport,
    send_request,
)

__all__ = ["ROUTE_LANE_KINDS", "Worker", "WorkerStats", "default_worker_id", "run_worker_forever"]

log = logging.getLogger("rehab.worker")

#: What the worker's route lane claims (``run_once``): answers, requests, cancel notices.
#: Notifications and handlers' kinds run in lanes of their own.
ROUTE_LANE_KINDS = list(ROUTE_WORK)

_COUNT_ATTEMPTS = text("UPDATE agency_request SET attempts = attempts + 1 WHERE id IN :ids"
                       ).bindparams(bindparam("ids", expanding=True))
_COUNT_CANCEL_ATTEMPTS = text(
    "UPDATE cancel_notice SET attempts = attempts + 1 WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))


T = TypeVar("T")
R = TypeVar("R")

#: One item's end in ``Worker._each_alone``: done (with its result), lease lost (its work
#: undone: another worker holds the job), or failed (undone; the error to retry it with).
Outcome = tuple[Literal["done", "lost", "failed"], R | None, str]


#: A request ready to send: its job, the agency's URL, the secrets to sign with, the
#: idempotency key and the body.
_SendWork = tuple[queue.ClaimedJob, str, list[str], str, dict[str, Any]]


#: ``Session.info`` key of the jobs a batch's items finished, for one ``finish_many``.
_FINISH_LATER = "rehab.worker.finish_later"


class _LeaseLost(Exception):
    """An item's job is no longer this worker's (``queue.finish`` said so): undo its work."""


def default_worker_id() -> str:
    """A name no other worker has, on any host or in any container (where the pid alone is
    often 1): ``<hostname>-<pid>-<random>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    """One worker process's loop (several may run side by side)."""

    def __init__(self, engine: Engine, clock: Clock, cfg: EngineConfig, settings: Settings,
                 *, worker_id: str | None = None,
                 handlers: Iterable[JobHandler] = (), core: bool = True) -> None:
        self.engine = engine
        #: the route's own work (answers, requests, cancel notices, notifications); False
        #: in a process that only runs registered handlers (``rehab mirror``)
        self.core = core
        self.clock = clock
        self.cfg = cfg
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self.handlers = list(handlers)
        self.stats = WorkerStats()
        self._http: httpx.AsyncClient | None = None
        self._sem = asyncio.Semaphore(settings.worker_concurrency)
        self.on_idle: Callable[[], None] | None = None
        self._notify_lane: set[asyncio.Future[None]] = set()
        self._notify_pool: ThreadPoolExecutor | None = None
        #: the handlers' lanes: one pass of each registered handler at a time, in a task
        #: beside the route work (Prefect's calls and their CPU never hold up answers)
        self._lanes: dict[int, asyncio.Task[int]] = {}
        self._lane_idle_until: dict[int, float] = {}

    # -- lifecycle ---------------------------------------------------------------------
    async def __aenter__(self) -> Worker:
        self._http = AgencyClient(
            timeout=self.settings.send_timeout_seconds,
            transport=PerAgencyTransport(
                connections_per_origin=self.settings.worker_connections_per_agency),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._notify_lane:  # each bounded by the channel timeout
            await asyncio.gather(*self._notify_lane, return_exceptions=True)
        if self._notify_pool is not None:
            self._notify_pool.shutdown(wait=False)
        if self._http is not None:
            await self._http.aclose()
        for handler in self.handlers:
            try:
                await handler.aclose()
            except Exception:  # noqa: BLE001 - closing one must not keep the others open
                log.warning("closing a job handler failed", exc_info=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set.

        A pipeline: a claimed batch of requests is sent in a task of its own (at most
        ``worker_send_batches`` of them in flight), and the loop goes on claiming and
        applying answers while those requests are on the wire, so that a slow agency holds
        up no other route and the worker's CPU is never idle while there is work.
        """
        inflight: set[asyncio.Task[None]] = set()
        stopping = asyncio.ensure_future(stop.wait())
        poll = self.settings.worker_idle_poll_seconds
        idle = 0  # passes in a row that found nothing: the poll backs off
        # a handlers-only process awaits each pass (there is no route work to go on with)
        # and, idle, polls no faster than a side lane is asked again
        background = inflight if self.core else None
        idle_max = self.IDLE_POLL_MAX_SECONDS if self.core else self.LANE_IDLE_SECONDS
        try:
            while not stop.is_set():
                try:
                    done = await self.run_once(background=background)
                except Exception as exc:  # noqa: BLE001 - see below
                    if self.core:
                        raise
                    # a handler's failed pass fails alone, as in a worker's side lane:
                    # logged and counted, its jobs' leases end and they are done again
                    self._background_failed("handler pass", exc)
                    done = 0
                if done:
                    idle = 0
                    continue
                if self.on_idle and not inflight:
                    self.on_idle()
                await asyncio.wait({stopping, *inflight},
                                   timeout=min(poll * 2 ** idle, max(poll, idle_max)),
                                   return_when=asyncio.FIRST_COMPLETED)
                idle = min(idle + 1, 16)
        finally:
            stopping.cancel()
            lanes: list[asyncio.Future[Any]] = [*inflight, *self._lanes.values()]
            if lanes:
                await asyncio.gather(*lanes, return_exceptions=True)

    async def run_once(self, *, refs: list[str] | None = None,
                       background: set[asyncio.Task[None]] | None = None) -> int:
        """Claim and do one batch of due jobs; return how many were claimed.

        ``background`` (the ``run`` loop's): requests are sent by a task added to that set
        instead of being awaited here; while the set is full, no requests are claimed."""
        if not self.core:
            return await self._run_handlers(refs, background)
        lease = self.settings.job_lease_seconds
        n = self.settings.worker_batch_size
        kinds = ROUTE_LANE_KINDS
        if background is not None and len(background) >= self.settings.worker_send_batches:
            kinds = [k for k in ROUTE_LANE_KINDS if k is not JobKind.send_request]
        jobs, work = await asyncio.to_thread(self._claim_and_apply, kinds, n, lease, refs)
        cancels = [j for j in jobs if j.kind is JobKind.send_cancel]
        if work:
            if background is None:
                await self._send_all(work)
            else:
                self._spawn(background, self._send_all(work), "send batch")
        if cancels:
            await self._send_cancels(cancels)
        done = len(jobs) + await self._start_notifications(refs)
        return done + await self._run_handlers(refs, background)

    async def _run_handlers(self, refs: list[str] | None,
                            background: set[asyncio.Task[None]] | None) -> int:
        done = 0
        for lane, handler in enumerate(self.handlers):
            done += await self._run_handler(lane, handler, refs, background)
        return done

    async def _run_handler(self, lane: int, handler: JobHandler, refs: list[str] | None,
                           background: set[asyncio.Task[None]] | None) -> int:
        """One pass of a registered handler: awaited here when the caller drives the worker
        by hand (``background`` is None), else started in the handler's own lane — at most
        one pass in flight; a lane that found nothing is not asked again for
        ``LANE_IDLE_SECONDS``."""
        if background is None:
            return await handler.run_once(self, refs)
        running = self._lanes.get(lane)
        if running is not None and not running.done():
            return 0
        if refs is None and monotonic() < self._lane_idle_until.get(lane, 0.0):
            return 0
        task: asyncio.Task[int] = asyncio.ensure_future(handler.run_once(self, refs))
        self._lanes[lane] = task

        def reap(t: asyncio.Task[int]) -> None:
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                self._background_failed(f"handler {type(handler).__name__}", exc)
            elif t.result() == 0:
                self._lane_idle_until[lane] = monotonic() + self.LANE_IDLE_SECONDS

        task.add_done_callback(reap)
        return 0

    # -- helpers -----------------------------------------------------------------------
    def _spawn(self, into: set[asyncio.Task[None]], coro: Awaitable[None], what: str) -> None:
        """Run ``coro`` as a background task of ``into``; its exception is logged and
        counted when it ends (never lost with the task)."""
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        into.add(task)

        def reap(t: asyncio.Task[None]) -> None:
            into.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self._background_failed(what, t.exception())

        task.add_done_callback(reap)

    def _background_failed(self, what: str, exc: BaseException | None) -> None:
        self.stats.background_errors += 1
        log.error("worker %s: %s failed: %s: %s", self.worker_id, what,
                  type(exc).__name__, exc, exc_info=exc)

    def retry_job(self, job: queue.ClaimedJob, error: str, *, delay: float | None = None,
                  count_attempt: bool = True) -> None:
        """``queue.retry_later`` with this worker's backoff and maximum (synchronous: call it
        in a thread)."""
        outcome = queue.retry_later(
            self.engine, job, delay_seconds=self._backoff(job) if delay is None else delay,
            error=error, max_attempts=self.settings.job_max_attempts,
            count_attempt=count_attempt)
        if outcome == "dead":
            self.stats.dead += 1
        elif outcome == "lost":
            self.stats.lease_lost += 1

    async def _heartbeat(self, jobs: list[queue.ClaimedJob], work: Awaitable[Any]) -> Any:
        """Await ``work`` while renewing the leases of ``jobs`` every third of the lease, so
        that a long batch of sends is not taken over by another worker mid-flight."""
        lease = self.settings.job_lease_seconds
        task = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({task}, timeout=lease / 3)
            if done:
                return task.result()
            try:
                await asyncio.to_thread(queue.renew, self.engine, jobs, lease_seconds=lease)
            except Exception:  # noqa: BLE001 - a missed beat: the lease may still hold
                log.warning("worker %s: renewing leases failed", self.worker_id,
                            exc_info=True)

    def _each_alone(self, items: Sequence[T], do: Callable[[Session, T], R], what: str,
                    key: Callable[[T], str], *,
                    preload: Callable[[Session], object] | None = None,
                    ) -> list[Outcome[R]]:
        """``do(session, item)`` for each item, in one transaction; an item whose job is no
        longer ours raises ``_LeaseLost`` and its work is undone.

        A failed item fails alone: the batch is first done without savepoints (two round
        trips an item fewer), its jobs finished together at its end (``queue.finish_many``:
        one statement, not one an item; still fenced, in the same transaction) and the
        audit records its items write kept for one statement at its end (``audit.buffered``:
        the same rows, in the same order); if an item fails or a lease was lost, that
        transaction is rolled back and the batch done again with each item in a savepoint
        of its own, its job finished with it and its records written (a batch of one
        needs no second pass). ``preload(session)`` runs first in each transaction (one
        query for what every item reads; what it returns is held until the transaction
        ends, so the rows it loaded stay in the identity map). Synchronous: call it in a
        thread."""
        if not items:
            return []
        with Session(self.engine, expire_on_commit=False) as s:
            try:
                # held while the items run: the identity map keeps loaded rows only while
                # something refers to them
                _kept = preload(s) if preload is not None else None
                later: list[queue.ClaimedJob] = []
                s.info[_FINISH_LATER] = later
                try:
                    # the items' audit records written together at the end (one COPY for
                    # the batch, not one an item), and the jobs they ask for (one upsert,
                    # its rows locked in (kind, ref) order: ``queue.lock_order``)
                    with audit.buffered(s), queue.buffered(s):
                        results = [do(s, item) for item in items]
                finally:
                    s.info.pop(_FINISH_LATER, None)
                if queue.finish_many(s, later):  # a lease lost: its item's work is undone
                    raise _LeaseLost([j.id for j in later])
                s.commit()
                return [("done", r, "") for r in results]
            except _LeaseLost:
                s.rollback()
                if len(items) == 1:
                    return [("lost", None, "")]
            except Exception as exc:
                s.rollback()
                if len(items) == 1:
                    log.exception("%s %s failed", what, key(items[0]))
                    return [("failed", None, f"{type(exc).__name__}: {exc}")]
                log.info("%s: a batch of %d failed (%s); each item again alone", what,
                         len(items), type(exc).__name__)
        out: list[Outcome[R]] = []
        with Session(self.engine, expire_on_commit=False) as s:
            _kept = preload(s) if preload is not None else None
            for item in items:
                sp = s.begin_nested()
                try:
                    r = do(s, item)
                    sp.commit()
                    out.append(("done", r, ""))
                except _LeaseLost:
                    sp.rollback()
                    out.append(("lost", None, ""))
                except Exception as exc:
                    sp.rollback()
                    log.exception("%s %s failed", what, key(item))
                    out.append(("failed", None, f"{type(exc).__name__}: {exc}"))
            s.commit()
        return out

    @staticmethod
    def _finish(s: Session, job: queue.ClaimedJob) -> None:
        """Finish the job in the item's transaction, or raise ``_LeaseLost`` (in a batch's
        first pass: kept for the batch's one ``finish_many`` at its end)."""
        later: list[queue.ClaimedJob] | None = s.info.get(_FINISH_LATER)
        if later is not None:
            later.append(job)
        elif not queue.finish(s, job):  # another worker has it: leave it to it
            raise _LeaseLost(job.id)

    # -- handlers ----------------------------------------------------------------------
    def _claim_and_apply(self, kinds: list[JobKind], limit: int, lease: float,
                         refs: list[str] | None,
                         ) -> tuple[list[queue.ClaimedJob], list[_SendWork]]:
        """Claim a batch of due jobs, apply the answers among them (``worker_txn_answers``
        a transaction: the API's answer writer never waits long for the lock) and prepare
        the requests among them for sending — one thread hand-off for the three. Returns
        every claimed job and the requests to send."""
        jobs = queue.claim(self.engine, self.worker_id, kinds=kinds, limit=limit,
                           lease_seconds=lease, refs=refs)
        answers = [j for j in jobs if j.kind is JobKind.apply_answer]
        step = self.settings.worker_txn_answers
        for i in range(0, len(answers), step):
            self._apply_answers(answers[i:i + step])
        sends = [j for j in jobs if j.kind is JobKind.send_request]
        return jobs, self._prepare_sends(sends) if sends else []

    def _apply_answers(self, jobs: list[queue.ClaimedJob]) -> None:
        """Apply a batch of stored answers in one transaction (a failing one is retried
        alone and the others go through: ``_each_alone``)."""
        now = self.clock.now()

        def apply(s: Session, job: queue.ClaimedJob) -> None:
            routes.apply_answer(s, self.cfg, int(job.ref), now=now)
            self._finish(s, job)

        outcomes = self._each_alone(jobs, apply, "applying answer", lambda j: j.ref)
        for job, (end, _, err) in zip(jobs, outcomes, strict=True):
            if end == "done":
                self.stats.answers_applied += 1
            elif end == "lost":
                self.stats.lease_lost += 1
            else:
                self.retry_job(job, err)

    async def _post(self, url: str, secrets: list[str], key: str,
                    body: dict[str, Any]) -> DeliveryResult:
        """One signed POST to an agency (at most ``worker_concurrency`` at once)."""
        assert self._http is not None
        async with self._sem:
            return await send_request(self._http, url=url, secret=secrets, idempotency_key=key,
                                      body=body)

    def finish_job(self, job: queue.ClaimedJob) -> None:
        """Finish a job in a transaction of its own (synchronous: call it in a thread)."""
        with Session(self.engine) as s:
            held = queue.finish(s, job)
            s.commit()
        if not held:
            self.stats.lease_lost += 1

    def finish_jobs(self, jobs: list[queue.ClaimedJob]) -> None:
        """Finish jobs together in a transaction of their own, one statement (synchronous:
        call it in a thread); their rows are locked in the order transitions lock them
        (``queue.finish_many(lock_in_order=True)``): a handler's jobs are enqueued again
        by the routes' transitions meanwhile."""
        if not jobs:
            return
        with Session(self.engine) as s:
            lost = queue.finish_many(s, jobs, lock_in_order=True)
            s.commit()
        self.stats.lease_lost += len(lost)

    def _backoff(self, job: queue.ClaimedJob) -> float:
        return backoff_seconds(job.attempts, base=self.settings.send_backoff_base_seconds,
                               cap=self.settings.send_backoff_max_seconds)

    async def _send_all(self, work: list[_SendWork]) -> None:
        """Send a batch of prepared requests (``_prepare_sends``) concurrently (leases
        renewed meanwhile), then record the outcomes (a failing one fails alone). Every
        attempt is counted on the request before its POST (``attempts``), so a resend after
        a crash or an expired lease shows in the history. A crash between a send and its
        record resends with the same key."""
        results = await self._heartbeat([w[0] for w in work], asyncio.gather(
            *(self._post(u, sec, k, b) for _, u, sec, k, b in work)))
        await asyncio.to_thread(self._record_sends, work, results)

    def _prepare_sends(self, jobs: list[queue.ClaimedJob]) -> list[_SendWork]:
        """The requests to send (job, URL, secrets, key, body), their attempts counted;
        the jobs of requests not to send any more are finished."""
        production = self.settings.environment == "production"
        work: list[_SendWork] = []
        with Session(self.engine, expire_on_commit=False) as s:
            # the batch's requests and their agencies in one query
            found = {req.id: (req, agency) for req, agency in s.exec(
                select(AgencyRequest, Agency)
                .join(Agency, col(Agency.id) == col(AgencyRequest.agency_id))
                .where(col(AgencyRequest.id).in_({j.ref for j in jobs})))}
            todo: list[tuple[queue.ClaimedJob, AgencyRequest, Agency]] = []
            for job in jobs:
                req, agency = found.get(job.ref, (None, None))
                if req is None or agency is None or req.state is not RequestState.queued \
                        or not agency.endpoint_url:
                    queue.finish(s, job)
                    continue
                todo.append((job, req, agency))
            subjects = routes.request_subjects(s, [req.step_id for _, req, _ in todo])
            for job, req, agency in todo:
                assert agency.endpoint_url is not None
                # during a rotation: signed with both secrets (Standard Webhooks)
                work.append((job, agency.endpoint_url,
                             usable_secrets(agency, production=production),
                             req.idempotency_key,
                             routes.request_body(req.body, subjects[req.step_id])))
            if work:  # counted before the POST: an attempt cut short by a crash counts too
                s.execute(_COUNT_ATTEMPTS, {"ids": [w[0].ref for w in work]})
            s.commit()
        return work

    def _record_sends(
        self, work: list[_SendWork],
        results: list[DeliveryResult],
    ) -> None:
        """Each outcome recorded with its job finished (one transaction for the batch; a
        failing one fails alone and is retried: ``_each_alone``)."""
        now = self.clock.now()
        items = [(job, result) for (job, *_), result in zip(work, results, strict=True)]
        refs = [job.ref for job, _ in items]

        def preload(s: Session) -> list[AgencyRequest]:  # the requests in one query
            return list(s.exec(select(AgencyRequest).where(col(AgencyRequest.id).in_(refs))))

        def record(s: Session, item: tuple[queue.ClaimedJob, DeliveryResult]
                   ) -> tuple[int, int]:
            job, result = item
            req = s.get(AgencyRequest, job.ref)
            assert req is not None
            if result.outcome is Delivery.retry:
                req.last_error = result.error
                s.add(req)
                return -1, 0  # retried; its job stays claimed until retry_job
            sent = refused = 0
            if req.state is RequestState.queued:
                if result.outcome is Delivery.delivered:
                    routes.mark_delivered(s, self.cfg, req, now=now)
                    sent = 1
                else:
                    routes.mark_failed(s, self.cfg, req, now=now, error=result.error or "")
                    refused = 1
            self._finish(s, job)  # else another worker has it and records it
            return sent, refused

        outcomes = self._each_alone(items, record, "recording the send of request",
                                    lambda it: it[0].ref, preload=preload)
        for (job, result), (end, counts, err) in zip(items, outcomes, strict=True):
            if end == "lost":
                self.stats.lease_lost += 1
                continue
            if end == "failed":
                self.stats.item_errors += 1
            elif counts is not None and counts[0] >= 0:
                self.stats.sent += counts[0]
                self.stats.send_refused += counts[1]
                continue
            else:
                err = result.error or ""
            self.retry_job(job, err)
            self.stats.send_retries += 1

    #: The longest wait of an idle worker between two looks for jobs: an empty look is a
    #: claim (a write transaction, on SQLite the database's write lock), so an idle
    #: worker's poll doubles from ``worker_idle_poll_seconds`` up to this after each empty
    #: one; the end of a send batch, and any claimed job, wake it at once.
    IDLE_POLL_MAX_SECONDS = 0.1

    #: Real seconds a side lane (notifications, mirror) that found nothing to do is not
    #: asked again: an idle worker's poll is then one claim, not three (their latency is
    #: not a route's: a notification or a Prefect update a quarter of a second later).
    LANE_IDLE_SECONDS = 0.25
    _notify_idle_until: float = 0.0

    async def _start_notifications(self, refs: list[str] | None) -> int:
        """The notification lane: claim as many due notifications as it has free places and
        send each in a thread of its own pool, without waiting for them."""
        free = self.settings.notify_concurrency - len(self._notify_lane)
        if free <= 0 or (refs is None and monotonic() < self._notify_idle_until):
            return 0
        jobs = await asyncio.to_thread(
            queue.claim, self.engine, self.worker_id, kinds=[JobKind.send_notification],
            limit=free, lease_seconds=self.settings.job_lease_seconds, refs=refs)
        if not jobs:
            self._notify_idle_until = monotonic() + self.LANE_IDLE_SECONDS
            return 0
        if self._notify_pool is None:
            self._notify_pool = ThreadPoolExecutor(self.settings.notify_concurrency,
                                                   thread_name_prefix="notify")
        loop = asyncio.get_running_loop()
        now = self.clock.now()
        for j in jobs:
            fut = loop.run_in_executor(self._notify_pool, self._notify, j, now)
            self._notify_lane.add(fut)
            fut.add_done_callback(self._notify_done)
        return len(jobs)

    def _notify_done(self, fut: asyncio.Future[None]) -> None:
        self._notify_lane.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self._background_failed("notification", fut.exception())

    def _notify(self, job: queue.ClaimedJob, now: datetime) -> None:
        try:
            ok = deliver_notification(self.engine, int(job.ref), settings=self.settings,
                                      now=now)
        except Exception as exc:  # the lane must go on; the job is retried
            log.exception("notification %s failed", job.ref)
            self.retry_job(job, f"{type(exc).__name__}: {exc}"[:300])
            return
        self.finish_job(job)
        self.stats.notifications += int(ok)

    async def _send_cancels(self, jobs: list[queue.ClaimedJob]) -> None:
        """POST withdrawal notices (``CancelNotice``) like requests: signed, the request's
        idempotency key + ``:cancel``; network errors and 5xx retry with backoff, a 2xx or
        4xx outcome is recorded in the audit (``routes.record_cancel_outcome``)."""
        work = await asyncio.to_thread(self._prepare_cancels, jobs)
        results = await self._heartbeat([w[0] for w in work], asyncio.gather(
            *(self._post(u, sec, j.ref, b) for j, u, sec, b in work)))
        await asyncio.to_thread(self._record_cancels, work, results)

    def _prepare_cancels(self, jobs: list[queue.ClaimedJob],
                         ) -> list[tuple[queue.ClaimedJob, str, list[str], dict[str, Any]]]:
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
            if work:  # counted before the POST, like a request's
                s.execute(_COUNT_CANCEL_ATTEMPTS, {"ids": [w[0].ref for w in work]})
            s.commit()
        return work

    def _record_cancels(self, work: list[tuple[queue.ClaimedJob, str, list[str],
                                               dict[str, Any]]],
                        results: list[DeliveryResult]) -> None:
        """Each notice's outcome recorded with its job finished (a failing one fails alone
        and is retried: ``_each_alone``)."""
        now = self.clock.now()
        items = [(job, result) for (job, *_), result in zip(work, results, strict=True)]

        def record(s: Session, item: tuple[queue.ClaimedJob, DeliveryResult]) -> bool:
            job, result = item
            if result.outcome is Delivery.retry:
                notice = s.get(CancelNotice, job.ref)
                if notice is not None:
                    notice.last_error = (result.error or "")[:500]
                    s.add(notice)
                return False  # retried; its job stays claimed until retry_job
            routes.record_cancel_outcome(
                s, job.ref, now=now, delivered=result.outcome is Delivery.delivered,
                error=result.error, count_attempt=False)
            self._finish(s, job)
            return True

        outcomes = self._each_alone(items, record, "recording the cancel notice",
                                    lambda it: it[0].ref)
        for (job, result), (end, recorded, err) in zip(items, outcomes, strict=True):
            if end == "lost":
                self.stats.lease_lost += 1
            elif end == "failed":
                self.stats.item_errors += 1
                self.retry_job(job, err)
            elif not recorded:
                self.retry_job(job, result.error or "")


def run_worker_forever(settings: Settings, *, worker_id: str | None = None,
                       handlers: Iterable[JobHandler] = (),
                       kind: ProcessKind = ProcessKind.worker) -> None:
    """Entry point of ``rehab worker`` (``handlers``: the registry ``cli/runtime.py``
    assembled) and of ``rehab mirror`` (``kind=ProcessKind.mirror``: the handlers only, no
    route work).

    Graceful shutdown: on SIGTERM or SIGINT the worker stops claiming, finishes what is in
    flight (each send is bounded by ``send_timeout_seconds``), gives back the leases it still
    holds, writes its last heartbeat with ``stopped_at`` and logs that it stopped."""
    engine = make_engine()
    clock = make_clock(engine, settings)
    cfg = EngineConfig.from_settings(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with Worker(engine, clock, cfg, settings, worker_id=worker_id,
                          handlers=handlers, core=kind is ProcessKind.worker) as w:
            def counters() -> dict[str, Any]:
                return {**asdict(w.stats), "beat_interval_seconds": settings.heartbeat_seconds}

            await asyncio.to_thread(heartbeats.register, engine, w.worker_id, kind)
            process_log.started(kind.value, settings, worker_id=w.worker_id)
            beating = asyncio.create_task(heartbeats.beat_forever(
                engine, w.worker_id, counters, interval_seconds=settings.heartbeat_seconds,
                stop=stop))
            await w.run(stop)
            await beating
        released = await asyncio.to_thread(queue.release_held, engine, w.worker_id)
        await asyncio.to_thread(heartbeats.stopped, engine, w.worker_id, counters())
        process_log.stopped(kind.value, worker_id=w.worker_id, released_leases=released,
                            sent=w.stats.sent, answers_applied=w.stats.answers_applied,
                            mirrored=w.stats.mirrored)

    try:
        asyncio.run(main())
    finally:
        engine.dispose()
