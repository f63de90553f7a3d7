"""Working-day timers of steps and the escalation ladder they drive.

Deadlines: send by 1 working day from registration (298-п п.10), answer by 5 working days
from receipt (298-п п.11, п.12). The Ministry of Social Policy controls interagency
interaction (298-п Порядок п.13, Регламент п.17); the rehabilitation organisation answers
for the route's deadlines (363н п.10б).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class TimerKind(StrEnum):
    send_overdue = "send_overdue"  # the request was not delivered by its send-by deadline
    answer_reminder = "answer_reminder"  # level 0: remind the agency before the deadline
    answer_overdue = "answer_overdue"  # level 1: overdue, notify the coordinator
    answer_escalation = "answer_escalation"  # level 2: escalate to the supervisor


class TimerStatus(StrEnum):
    pending = "pending"
    fired = "fired"
    cancelled = "cancelled"


# One timer; (step, kind, deadline_version) is unique: each level fires once per deadline.
class Timer(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("step_id", "kind", "deadline_version", name="uq_timer_step_kind_ver"),
        Index("ix_timer_due_pending", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    step_id: str = Field(foreign_key="step.id", index=True, max_length=40)
    route_id: str = Field(foreign_key="route.id", index=True, max_length=40)
    kind: TimerKind
    deadline_version: int = 0
    due_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    due_date: date
    region: str = Field(max_length=8)
    working_days: int = Field(description="N of the rule this timer was computed from")
    anchor_at: datetime = Field(sa_type=UTCDateTime, description="event the count starts from")
    status: TimerStatus = TimerStatus.pending
    fired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fired_by: str | None = Field(default=None, max_length=80)
    cancelled_reason: str | None = None


class EscalationLevel(IntEnum):
    reminder = 0
    overdue = 1
    escalated = 2


class EscalationStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"  # the answer came, or a supervisor action settled it
    closed = "closed"


# A rung of the ladder reached by a step for one deadline.
class Escalation(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("step_id", "level", "deadline_version", name="uq_escalation_level"),
    )

    id: int | None = Field(default=None, primary_key=True)
    step_id: str = Field(foreign_key="step.id", index=True, max_length=40)
    route_id: str = Field(foreign_key="route.id", index=True, max_length=40)
    region: str = Field(max_length=8, index=True)
    agency_id: str | None = Field(default=None, max_length=40, index=True)
    level: EscalationLevel
    deadline_version: int = 0
    due_date: date
    status: EscalationStatus = Field(default=EscalationStatus.open, index=True)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=80)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution: str | None = None


# The calendar data version the open deadlines were last computed with (one row, id=1).
class CalendarStamp(SQLModel, table=True):
    __tablename__ = "calendar_stamp"

    id: int = Field(default=1, primary_key=True)
    data_version: str = Field(max_length=40)
    computed_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
