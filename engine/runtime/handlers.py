"""The worker's job handlers beyond its core work, from a registry assembled at start-up.

The worker's core — apply answers, send requests and cancel notices, hand notifications to
their channels — is the engine's own. Anything else a worker does with jobs (today: mirroring
routes into Prefect, ``tasks/prefect_mirror.py:PrefectMirrorHandler``) is a
:class:`JobHandler` registered by the process that starts the worker
(``cli/runtime.py:mirror_handlers``, for ``rehab mirror``), so the engine knows nothing of
what it talks to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine

from engine.infra.clock import Clock
from engine.infra.queue import ClaimedJob
from engine.infra.settings import Settings
from models.jobs import JobKind


@dataclass
class WorkerStats:
    sent: int = 0
    send_retries: int = 0
    send_refused: int = 0
    answers_applied: int = 0
    notifications: int = 0
    mirrored: int = 0
    mirror_errors: int = 0
    #: jobs whose lease another worker had taken by the time their outcome was recorded
    lease_lost: int = 0
    #: jobs retried past ``job_max_attempts`` (now ``dead``)
    dead: int = 0
    #: items of a batch whose recording failed (each retried alone)
    item_errors: int = 0
    #: exceptions raised by background tasks (send batches, notifications), logged
    background_errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class WorkerContext(Protocol):
    """What a handler may use of the worker that runs it."""

    engine: Engine
    clock: Clock
    settings: Settings
    worker_id: str
    stats: WorkerStats

    def retry_job(self, job: ClaimedJob, error: str, *, delay: float | None = None,
                  count_attempt: bool = True) -> None:
        """Retry later (backoff) or make dead past the maximum; synchronous (a thread)."""

    def finish_job(self, job: ClaimedJob) -> None:
        """Finish the job in a transaction of its own; synchronous (a thread)."""

    def finish_jobs(self, jobs: list[ClaimedJob]) -> None:
        """Finish the jobs together in a transaction of their own (one statement, not one
        a job); synchronous (a thread)."""


class JobHandler(Protocol):
    """Does the jobs of ``kinds``: each worker pass calls ``run_once``, which claims a batch
    of its own jobs (under the worker's name), does them within a short slice of real time
    and returns how many it claimed. Database calls go to threads, never on the loop."""

    kinds: tuple[JobKind, ...]

    async def run_once(self, worker: WorkerContext, refs: list[str] | None) -> int: ...

    async def aclose(self) -> None: ...


class HandlerRegistry:
    """The handlers of one worker process, one per job kind (assembled at start-up)."""

    def __init__(self) -> None:
        self._handlers: list[JobHandler] = []
        self._kinds: dict[JobKind, JobHandler] = {}

    def register(self, handler: JobHandler) -> HandlerRegistry:
        for kind in handler.kinds:
            if kind in WORKER_OWN_KINDS:
                raise ValueError(f"kinds: {kind.value} is the worker's core work")
            if kind in self._kinds:
                raise ValueError(f"kinds: {kind.value} has a handler already")
        for kind in handler.kinds:
            self._kinds[kind] = handler
        self._handlers.append(handler)
        return self

    def __iter__(self) -> Iterator[JobHandler]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    def handler_for(self, kind: JobKind) -> JobHandler | None:
        return self._kinds.get(kind)


#: The worker's own work, all its lanes (never a registered handler's).
WORKER_OWN_KINDS = frozenset({JobKind.apply_answer, JobKind.send_request, JobKind.send_cancel,
                              JobKind.send_notification})
