"""Routes (one per person and programme) and their steps.

The rehabilitation organisation forms the individual rehabilitation route and ensures its
deadlines and completeness (363н п.10б); steps follow the template's order (298-п Регламент
п.16).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.agencies import RequestChannel
from models.types import UTCDateTime, utcnow


class RouteStatus(StrEnum):
    active = "active"
    completed = "completed"
    cancelled = "cancelled"
    suspended = "suspended"  # consent withdrawn (152-ФЗ art. 9 ч.2): nothing goes out
    terminated = "terminated"  # accompaniment ended (004 п.13): ``Route.end_reason`` says why


class StepStatus(StrEnum):
    """Life of a step. ``awaiting`` with an overdue answer stays ``awaiting`` (the ladder
    tracks lateness); terminal: answered, absent, cancelled."""

    planned = "planned"  # later in the route
    sending = "sending"  # request prepared, being delivered (send-by deadline runs)
    awaiting = "awaiting"  # delivered, waiting for the answer (answer-by deadline runs)
    needs_clarification = "needs_clarification"  # agency rejected: coordinator must clarify
    answered = "answered"  # information provided
    absent = "absent"  # notice that the information is absent (298-п п.11): completed
    cancelled = "cancelled"  # closed by a supervisor (or its route terminated, 004 п.13)
    paused = "paused"  # the person refused this participant's accompaniment (004 п.11)

    @property
    def terminal(self) -> bool:
        return self in (StepStatus.answered, StepStatus.absent, StepStatus.cancelled)


# A person's individual rehabilitation route.
class Route(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    person_id: str = Field(foreign_key="person.id", index=True, max_length=40)
    region: str = Field(max_length=8, index=True)
    template: str = Field(max_length=40, index=True)
    template_version: int = Field(
        default=0, sa_column_kwargs={"server_default": "0"},
        description="the template version the route started with and keeps: 0 the built-in "
                    "one (models/templates.py), n >= 1 models/route_templates/<code>-v<n>.toml")
    plan: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True),
        description="the route's own steps after its template's: the ИПРА's measures (004 "
                    "п.10 пп.б) and steps a template migration retired (models/ipra_plan.py)")
    status: RouteStatus = Field(default=RouteStatus.active, index=True)
    registered_at: datetime = Field(sa_type=UTCDateTime, description="application registered")
    current_seq: int = 0
    coordinator_id: str | None = Field(default=None, max_length=40)
    prefect_flow_run_id: str | None = Field(default=None, max_length=40)
    prefect_state: str | None = Field(default=None, max_length=200, description="last mirrored")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = Field(
        default=None, max_length=30,
        description="why a terminated route ended (004 п.13): ipra_expired, person_request, "
                    "grounds_removed")


# One step of a route: an interagency request and its answer.
class Step(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("route_id", "seq", name="uq_step_route_seq"),)

    id: str = Field(primary_key=True, max_length=40)
    route_id: str = Field(foreign_key="route.id", index=True, max_length=40)
    seq: int
    kind: str = Field(max_length=40)
    role: str = Field(max_length=20)
    agency_id: str | None = Field(default=None, foreign_key="agency.id", max_length=40)
    status: StepStatus = Field(default=StepStatus.planned, index=True)
    optional: bool = False
    current_request_id: str | None = Field(default=None, max_length=40)
    ready_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    send_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    send_by_date: date | None = None
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answer_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answer_by_date: date | None = None
    deadline_provisional: bool = False
    ipra_due_date: date | None = Field(
        default=None, description="execution deadline of the ИПРА measure («срок исполнения», "
        "545н) this step carries out, as given with the application")
    complete_by_date: date | None = Field(
        default=None, description="the step must be done by the end of this day (local time "
        "of its region): the ИПРА deadline, else the template's (363н п.10б)")
    complete_by_source: str | None = Field(default=None, max_length=20,
                                           description="ipra / template")
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    late_working_days: int | None = None
    outcome_note: str | None = None
    prefect_task_run_id: str | None = Field(default=None, max_length=40)
    prefect_state: str | None = Field(default=None, max_length=200, description="last mirrored")


class CancelState(StrEnum):
    queued = "queued"  # to be POSTed to the agency's endpoint (retried like a request)
    delivered = "delivered"  # the agency took it (2xx), or it was put in the agency's inbox
    failed = "failed"  # the agency refused it (4xx): recorded, a person may follow up


# A notice to an agency that a request addressed to it is withdrawn (step reassigned or
# closed); its id doubles as the idempotency key: "<request id>:cancel".
class CancelNotice(SQLModel, table=True):
    __tablename__ = "cancel_notice"

    id: str = Field(primary_key=True, max_length=60)
    request_id: str = Field(foreign_key="agency_request.id", unique=True, max_length=40)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=40)
    channel: RequestChannel
    state: CancelState = Field(default=CancelState.queued, index=True)
    reason: str
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
