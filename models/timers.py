"""Working-day timers of steps and the escalation ladder they drive.

Deadlines of a step (``DeadlineKind``):

- *send by*: the request is prepared and sent within 1 working day of registration
  (298-п Порядок п.10), counted in the sender's region;
- *answer by*: answered within 5 working days of receipt (298-п Порядок п.11, Регламент
  п.12), counted in the agency's region;
- *complete by*: the step's measure must be carried out by the execution deadline of the
  ИПРА measure («срок исполнения»: the ИПРА form lists each measure with its executor and
  deadline, Mintrud order 545н), or by a deadline the route template sets in working days
  from registration — the rehabilitation organisation ensures the route's deadlines and
  completeness (363н п.10б).

The Ministry of Social Policy controls interagency interaction (298-п Порядок п.13,
Регламент п.17): level 2 of every ladder goes to the region's supervisors.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum, StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class DeadlineKind(StrEnum):
    send_by = "send_by"  # 298-п Порядок п.10: 1 working day to send
    answer_by = "answer_by"  # 298-п Порядок п.11, Регламент п.12: 5 working days to answer
    complete_by = "complete_by"  # ИПРА measure deadline (545н) or the template's (363н п.10б)


class TimerKind(StrEnum):
    send_overdue = "send_overdue"  # level 1: the request was not delivered by its send-by
    send_escalation = "send_escalation"  # level 2: still not delivered some days later
    answer_reminder = "answer_reminder"  # level 0: remind the agency before the deadline
    answer_overdue = "answer_overdue"  # level 1: overdue, notify the coordinator
    answer_escalation = "answer_escalation"  # level 2: escalate to the supervisor
    complete_overdue = "complete_overdue"  # level 1: the step is not done by complete-by
    complete_escalation = "complete_escalation"  # level 2: still not done some days later
    recur_next = "recur_next"  # a recurring step's next occurrence is due (no escalation)

    @property
    def deadline_kind(self) -> DeadlineKind:
        return DEADLINE_OF[self]


DEADLINE_OF: dict[TimerKind, DeadlineKind] = {
    TimerKind.send_overdue: DeadlineKind.send_by,
    TimerKind.send_escalation: DeadlineKind.send_by,
    TimerKind.answer_reminder: DeadlineKind.answer_by,
    TimerKind.answer_overdue: DeadlineKind.answer_by,
    TimerKind.answer_escalation: DeadlineKind.answer_by,
    TimerKind.complete_overdue: DeadlineKind.complete_by,
    TimerKind.complete_escalation: DeadlineKind.complete_by,
}

KINDS_OF: dict[DeadlineKind, tuple[TimerKind, ...]] = {
    dk: tuple(k for k, d in DEADLINE_OF.items() if d is dk) for dk in DeadlineKind
}

OVERDUE_KIND: dict[DeadlineKind, TimerKind] = {
    DeadlineKind.send_by: TimerKind.send_overdue,
    DeadlineKind.answer_by: TimerKind.answer_overdue,
    DeadlineKind.complete_by: TimerKind.complete_overdue,
}
"""The timer that marks each deadline itself (its ``due_at`` is the deadline)."""

REQUEST_KINDS: tuple[TimerKind, ...] = KINDS_OF[DeadlineKind.send_by] + \
    KINDS_OF[DeadlineKind.answer_by]
"""Timers of the step's current request: they stop when the request is delivered,
answered, withdrawn or refused; the complete-by timers run until the step is done."""


class TimerStatus(StrEnum):
    pending = "pending"
    fired = "fired"
    cancelled = "cancelled"


# One timer; (step, kind, deadline_version) is unique: each level fires once per deadline.
class Timer(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("step_id", "kind", "deadline_version", name="uq_timer_step_kind_ver"),
        Index("ix_timer_due_pending", "status", "due_at"),
        Index("ix_timer_pending_calver", "status", "calendar_version"),
        # a step's pending timers (cancelled on every answer and delivery): without it
        # SQLite walks every pending timer of every route
        Index("ix_timer_step_status", "step_id", "status"),
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
    calendar_version: str | None = Field(
        default=None, max_length=40,
        description="calendars.data_version() the due time was computed with; the sweeper "
        "recomputes pending timers whose version is not the current one")
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
    acknowledged = "acknowledged"  # a supervisor took it into work
    resolved = "resolved"  # settled: the answer or delivery came, or the deadline was moved
    closed = "closed"  # the step was closed (cancelled) by a supervisor: it will not be met


# A rung of the ladder reached by a step for one deadline.
class Escalation(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("step_id", "deadline_kind", "level", "deadline_version",
                         name="uq_escalation_rung"),
    )

    id: int | None = Field(default=None, primary_key=True)
    step_id: str = Field(foreign_key="step.id", index=True, max_length=40)
    route_id: str = Field(foreign_key="route.id", index=True, max_length=40)
    region: str = Field(max_length=8, index=True)
    agency_id: str | None = Field(default=None, max_length=40, index=True)
    level: EscalationLevel
    deadline_kind: DeadlineKind = DeadlineKind.answer_by
    deadline_version: int = 0
    due_date: date
    cause: str | None = Field(default=None, max_length=300, description="why it was opened")
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
