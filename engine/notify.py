"""The notification outbox: queue messages to people in the caller's transaction, deliver
them later through the channel adapters, retrying with backoff; never blocking the route.

The ladder's recipients (298-п Порядок п.13, Регламент п.17: the Ministry controls the
interaction; 363н п.10б: the rehabilitation organisation answers for the deadlines): the
agency (reminder), the route's coordinator (overdue), the region's supervisors (escalated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine import audit
from engine.queue import enqueue
from engine.settings import Settings, get_settings
from models.agencies import Agency
from models.jobs import JobKind
from models.notifications import Channel, Notification, NotificationStatus
from models.routes import Route
from models.staff import StaffRole, StaffUser
from models.types import utcnow
from tasks.notifications import ChannelAdapter, DeliveryError, OutgoingMessage

SYSTEM = "system:notify"


@dataclass(frozen=True)
class Recipient:
    """Who gets a message and where: ``key`` is an identifier (never an address) for logs."""

    key: str  # "agency:<id>" / "staff:<id>"
    channel: Channel
    address: str


def agency_recipient(agency: Agency) -> Recipient:
    """The agency by e-mail when it has one, else on its portal inbox."""
    key = f"agency:{agency.id}"
    if agency.email:
        return Recipient(key, Channel.email, agency.email)
    return Recipient(key, Channel.portal, key)


def staff_recipient(user: StaffUser) -> Recipient:
    key = f"staff:{user.id}"
    if user.email:
        return Recipient(key, Channel.email, user.email)
    return Recipient(key, Channel.portal, key)


def _staff_of_region(session: Session, region: str, role: StaffRole) -> list[StaffUser]:
    return list(session.exec(
        select(StaffUser)
        .where(StaffUser.region == region, StaffUser.role == role,
               col(StaffUser.active).is_(True))
        .order_by(col(StaffUser.id))
    ))


def coordinators_of(session: Session, route: Route) -> list[StaffUser]:
    """The route's coordinator; if it has none (or they left), the region's coordinators."""
    if route.coordinator_id:
        user = session.get(StaffUser, route.coordinator_id)
        if user is not None and user.active:
            return [user]
    return _staff_of_region(session, route.region, StaffRole.coordinator)


def supervisors_of(session: Session, region: str) -> list[StaffUser]:
    """The region's supervisors (298-п Порядок п.13: the Ministry's control)."""
    return _staff_of_region(session, region, StaffRole.supervisor)


def queue_notification(
    session: Session, *, dedupe_key: str, recipient: Recipient, subject: str, body: str,
    now: datetime, route_id: str | None = None, step_id: str | None = None,
) -> Notification | None:
    """Add a message to the outbox and its send job in the caller's transaction.

    Idempotent by ``dedupe_key``: a second call returns None and adds nothing.
    """
    exists = session.exec(
        select(Notification.id).where(Notification.dedupe_key == dedupe_key)
    ).first()
    if exists is not None:
        return None
    row = Notification(
        dedupe_key=dedupe_key, channel=recipient.channel, recipient=recipient.address,
        subject=subject, body=body, route_id=route_id, step_id=step_id,
    )
    session.add(row)
    session.flush()
    enqueue(session, JobKind.send_notification, str(row.id))
    audit.record(session, at=now, actor=SYSTEM, entity="notification", entity_id=str(row.id),
                 route_id=route_id, action="queued",
                 after={"channel": recipient.channel.value, "to": recipient.key,
                        "step_id": step_id})
    return row


def backoff_seconds(attempt: int, settings: Settings) -> float:
    """Retry delay after the ``attempt``-th failure: base * 2^(attempt-1), capped."""
    delay = settings.notify_backoff_base_seconds * (2 ** max(0, attempt - 1))
    return float(min(delay, settings.notify_backoff_max_seconds))


def deliver_notification(
    engine: Engine, notification_id: int, *,
    adapters: Mapping[Channel, ChannelAdapter] | None = None,
    settings: Settings | None = None,
) -> bool:
    """Send one queued notification (the worker calls it for ``send_notification`` jobs).

    Returns True when the notification needs no more work (sent now, sent before, or given
    up), False when this attempt failed and a retry is scheduled: the job is re-enqueued with
    a backoff delay here, so the worker just finishes the job it holds. After
    ``notify_max_attempts`` failures the notification is ``failed``. The database holds no
    transaction open while the channel is talking.
    """
    settings = settings or get_settings()
    if adapters is None:
        from tasks.notifications import adapters_from_settings

        adapters = adapters_from_settings(settings)
    with Session(engine, expire_on_commit=False) as s:
        row = s.get(Notification, notification_id)
        s.commit()
    if row is None or row.status is not NotificationStatus.pending:
        return True
    assert row.id is not None
    adapter = adapters.get(row.channel)
    error: str | None = None
    if adapter is None:
        error = f"channel: no adapter for {row.channel.value}"
    else:
        try:
            adapter.send(OutgoingMessage(row.id, row.channel, row.recipient, row.subject,
                                         row.body))
        except DeliveryError as exc:
            error = str(exc)
    with Session(engine, expire_on_commit=False) as s:
        fresh = s.get(Notification, notification_id)
        assert fresh is not None
        if fresh.status is not NotificationStatus.pending:
            s.commit()
            return True
        fresh.attempts += 1
        done = True
        if error is None:
            fresh.status = NotificationStatus.sent
            fresh.sent_at = utcnow()
            fresh.last_error = None
        else:
            fresh.last_error = error[:500]
            if fresh.attempts >= settings.notify_max_attempts:
                fresh.status = NotificationStatus.failed
            else:
                done = False
                due = utcnow() + timedelta(seconds=backoff_seconds(fresh.attempts, settings))
                enqueue(s, JobKind.send_notification, str(fresh.id), due_at=due)
        s.add(fresh)
        s.commit()
    return done
