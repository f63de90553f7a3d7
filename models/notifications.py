"""The notification outbox: messages to people, sent by channel adapters, retried."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class Channel(StrEnum):
    email = "email"
    sms = "sms"
    messenger = "messenger"
    portal = "portal"


class NotificationStatus(StrEnum):
    pending = "pending"
    sending = "sending"  # claimed: an adapter is talking to the channel (never sent twice)
    sent = "sent"  # handed to a real transport (an SMTP server accepted it)
    recorded = "recorded"  # written down by a channel with no real transport: nobody got it
    failed = "failed"  # gave up after the last attempt


# A message to one recipient on one channel; dedupe_key makes enqueueing idempotent.
class Notification(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=160)
    channel: Channel
    recipient: str = Field(max_length=200)
    subject: str = Field(max_length=300)
    body: str
    route_id: str | None = Field(default=None, max_length=40, index=True)
    step_id: str | None = Field(default=None, max_length=40)
    status: NotificationStatus = Field(default=NotificationStatus.pending, index=True)
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
