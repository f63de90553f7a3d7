"""Heartbeats of the product's long-running processes (workers, sweepers, API processes).

Each process keeps one row up to date while it runs: when it started, when it last beat, what
it holds (jobs under its lease), its counters since start, and when it stopped (a clean
shutdown says so; a killed process simply stops beating). Readiness, ``rehab status`` and
``/metrics`` read these rows. Infrastructure time (real time), never business time.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class ProcessKind(StrEnum):
    worker = "worker"
    #: ``rehab mirror``: mirrors routes into Prefect, nothing of the route's own work
    mirror = "mirror"
    sweeper = "sweeper"
    api = "api"


class ProcessBeat(SQLModel, table=True):
    __tablename__ = "process_beat"

    process_id: str = Field(primary_key=True, max_length=80)
    kind: ProcessKind
    host: str = Field(max_length=80)
    pid: int
    version: str = Field(max_length=40)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    beat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: set by a clean shutdown (SIGTERM): the process released what it held and stopped
    stopped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    #: jobs under this process's lease at the last beat
    holding: int = 0
    #: the process's counters since it started (sent, answers_applied, sweeps, fired, ...)
    counters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
