"""The engine's durable work queue: what a worker must do next (infrastructure time).

A waiting route holds no job: a job exists only while there is work to do now (send a
request, apply a received answer, mirror a route into Prefect).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class JobKind(StrEnum):
    send_request = "send_request"
    apply_answer = "apply_answer"
    mirror_route = "mirror_route"
    send_notification = "send_notification"
    send_cancel = "send_cancel"  # tell an agency its request is withdrawn (CancelNotice)


#: the routes' own work (a worker's core): the rest (notifications, the Prefect mirror) gives
#: way to it
ROUTE_WORK: tuple[JobKind, ...] = (JobKind.apply_answer, JobKind.send_request,
                                   JobKind.send_cancel)


# A unit of work; (kind, ref) is unique so that enqueueing twice is harmless.
class Job(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("kind", "ref", name="uq_job_kind_ref"),
        Index("ix_job_due", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: JobKind
    ref: str = Field(max_length=80)
    due_at: datetime = Field(sa_type=UTCDateTime, description="real time")
    generation: int = 0  # bumped when re-enqueued while running (coalescing)
    attempts: int = 0
    locked_by: str | None = Field(default=None, max_length=80)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: fencing token of the current lease (a fresh random value per claim)
    lease_token: str | None = Field(default=None, max_length=32)
    #: set when the job was retried past its maximum: not claimed again until revived
    dead_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
