"""Participant agencies, the interagency requests sent to them, and their answers.

Participants: 298-п Порядок п.3, Регламент п.4; 363н п.3, п.4.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class AgencyRole(StrEnum):
    """The kind of service a participant provides (298-п Порядок п.3, 363н п.3)."""

    mse = "mse"  # МСЭ bureau
    sfr = "sfr"  # Social Fund territorial body
    social_policy = "social_policy"
    education = "education"
    health = "health"
    sport = "sport"
    culture = "culture"
    provider = "provider"  # social service provider / rehabilitation organisation
    municipality = "municipality"


# A participant of interagency interaction.
class Agency(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=300, description="Russian name shown to people")
    short_name: str = Field(max_length=60, description="e.g. МСЭ, Минздрав")
    role: AgencyRole = Field(index=True)
    region: str = Field(max_length=8, index=True)
    district: str | None = Field(
        default=None, max_length=200,
        description="the municipality / district it serves (as the form's address names "
                    "it): the provider rule `nearest` (engine/agencies/providers.py)")
    endpoint_url: str | None = Field(
        default=None, description="Agency system URL; None: tasks go to its inbox (paper/page)"
    )
    email: str | None = Field(
        default=None, max_length=200, description="Where reminders of the ladder go (level 0)"
    )
    secret_current: str = Field(max_length=200)
    secret_previous: str | None = Field(default=None, max_length=200)
    active: bool = True


class RequestState(StrEnum):
    """Delivery state of an interagency request."""

    queued = "queued"
    delivered = "delivered"  # agency acknowledged receipt (or placed in its inbox)
    failed = "failed"  # agency refused the request (4xx): a person must look
    cancelled = "cancelled"  # superseded (reassigned / step closed)


class RequestChannel(StrEnum):
    http = "http"
    inbox = "inbox"


# One interagency request (межведомственный запрос) of a step to an agency.
class AgencyRequest(SQLModel, table=True):
    __tablename__ = "agency_request"

    id: str = Field(primary_key=True, max_length=40, description="task_id the agency sees")
    step_id: str = Field(foreign_key="step.id", index=True, max_length=40)
    agency_id: str = Field(foreign_key="agency.id", index=True, max_length=40)
    idempotency_key: str = Field(unique=True, max_length=80)
    channel: RequestChannel
    state: RequestState = Field(default=RequestState.queued, index=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AnswerOutcome(StrEnum):
    """What an agency answered (298-п п.11, п.12)."""

    provided = "provided"  # the requested information / action
    absent = "absent"  # a notice that the information is absent: a valid completion
    rejected = "rejected"  # the request needs clarification


class AnswerEffect(StrEnum):
    """What applying an answer did to the route."""

    pending = "pending"
    moved_route = "moved_route"
    already_answered = "already_answered"
    request_cancelled = "request_cancelled"


# An answer received from an agency (stored before it is acknowledged).
class AgencyAnswer(SQLModel, table=True):
    __tablename__ = "agency_answer"
    __table_args__ = (UniqueConstraint("agency_id", "webhook_id", name="uq_answer_webhook"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: str = Field(foreign_key="agency.id", max_length=40)
    webhook_id: str = Field(max_length=200)
    body_sha256: str | None = Field(
        default=None, max_length=64,
        description="hex SHA-256 of the raw body as signed: a reused webhook-id with another "
        "body is refused (409), a byte-identical one is a duplicate (migration 0006)")
    request_id: str = Field(foreign_key="agency_request.id", index=True, max_length=40)
    outcome: AnswerOutcome
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    comment: str | None = None
    channel: RequestChannel = RequestChannel.http
    received_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    received_real_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    late_working_days: int = 0
    effect: AnswerEffect = AnswerEffect.pending
