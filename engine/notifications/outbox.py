"""The notification outbox: queue messages to people in the caller's transaction, deliver
them later through the channel adapters, retrying with backoff; never blocking the route
(the worker sends them in a lane of their own, engine/runtime/worker.py).

The ladder's recipients (298-п Порядок п.13, Регламент п.17: the Ministry controls the
interaction; 363н п.10б: the rehabilitation organisation answers for the deadlines): the
agency (reminder), the route's coordinator (overdue), the region's supervisors (escalated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from engine.infra import audit, backoff
from engine.infra.clock import DbClock
from engine.infra.queue import enqueue
from engine.infra.settings import Settings, get_settings
from models.agencies import Agency
from models.jobs import JobKind
from models.notifications import Channel, Notification, NotificationStatus
from models.routes import Route
from models.staff import StaffRole, StaffUser
from models.types import utcnow
from tasks.notifications import (
    ChannelAdapter,
    DeliveryError,
    OutgoingMessage,
    adapters_from_settings,
    delivers,
    recording_only,
)

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


class NoTransportError(RuntimeError):
    """Production with a channel in use that only records notifications."""


def channels_in_use(session: Session) -> dict[Channel, int]:
    """The channels notifications go out on, with how many active recipients use each
    (agencies and staff: e-mail where they have an address, else the portal; and any
    channel of a notification still pending)."""
    used: dict[Channel, int] = {}
    rows: list[str | None] = [
        *session.exec(select(Agency.email).where(col(Agency.active).is_(True))),
        *session.exec(select(StaffUser.email).where(col(StaffUser.active).is_(True)))]
    for email in rows:
        channel = Channel.email if email else Channel.portal
        used[channel] = used.get(channel, 0) + 1
    for pending in session.exec(select(Notification.channel).distinct().where(
            col(Notification.status).in_([NotificationStatus.pending,
                                          NotificationStatus.sending]))):
        used.setdefault(Channel(pending), 0)
    return used


def refuse_recording_channels(engine: Engine, settings: Settings) -> None:
    """Production must not pretend: raise :class:`NoTransportError` (one line naming the
    channels) when a channel in use has only a recording adapter (298-п Порядок п.13,
    363н п.10б: the ladder's notices must reach the people they are for)."""
    adapters = adapters_from_settings(settings)
    with Session(engine) as s:
        used = channels_in_use(s)
    bad = recording_only(adapters, sorted(used))
    if bad:
        names = ", ".join(f"{c.value} ({used[c]} recipients)" for c in bad)
        raise NoTransportError(
            f"notifications: channel(s) in use with no real transport, only recorded: "
            f"{names}; connect one (REHAB_SMTP_ENABLED=true for email) or give those "
            "recipients an e-mail address")


def backoff_seconds(attempt: int, settings: Settings) -> float:
    """Retry delay after the ``attempt``-th failure (``engine.infra.backoff``: base · 2^(n-1),
    capped, with jitter)."""
    return backoff.backoff_seconds(attempt, base=settings.notify_backoff_base_seconds,
                                   cap=settings.notify_backoff_max_seconds)


def deliver_notification(
    engine: Engine, notification_id: int, *,
    adapters: Mapping[Channel, ChannelAdapter] | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> bool:
    """Send one queued notification (the worker's notification lane calls it for
    ``send_notification`` jobs).

    The row is claimed first — ``pending`` → ``sending`` by a conditional UPDATE, committed
    before the channel is called — so a second worker that gets the job after a lease
    expiry never sends it again while the first is still talking: it finds ``sending``,
    counts that attempt as lost (its outcome unknown: the first worker died or hung) and
    schedules a retry with a backoff; the first worker's outcome, if it comes, still wins.
    The database holds no transaction open while the channel is talking.

    Returns True when the notification needs no more work (sent now, sent before, or given
    up), False when this attempt failed and a retry is scheduled (the job is re-enqueued
    with a backoff delay here, so the worker just finishes the job it holds). After
    ``notify_max_attempts`` failures the notification is ``failed``. Sending and failing
    are audited (business time ``now``; default: the business clock).
    """
    settings = settings or get_settings()
    if adapters is None:
        adapters = adapters_from_settings(settings)
    if now is None:
        now = DbClock(engine).now()
    table = Notification.__table__  # type: ignore[attr-defined]
    with Session(engine, expire_on_commit=False) as s:
        claimed = s.execute(
            update(table).where(table.c.id == notification_id,
                                table.c.status == NotificationStatus.pending)
            .values(status=NotificationStatus.sending, attempts=table.c.attempts + 1)
        ).rowcount  # type: ignore[attr-defined]
        row = s.get(Notification, notification_id)
        if not claimed:
            done = _lost_attempt(s, row, settings=settings, now=now)
            s.commit()
            return done
        s.commit()
    assert row is not None and row.id is not None
    adapter = adapters.get(row.channel)
    error: str | None = None
    real = adapter is not None and delivers(adapter)
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
        if fresh.status in (NotificationStatus.sent, NotificationStatus.recorded,
                            NotificationStatus.failed):
            s.commit()
            return True
        done = _record_attempt(s, fresh, error=error, settings=settings, now=now,
                               delivered=real)
        s.commit()
    return done


def _record_attempt(s: Session, row: Notification, *, error: str | None, settings: Settings,
                    now: datetime, delivered: bool = True) -> bool:
    """The outcome of an attempt (``row.attempts`` already counts it): sent (a real
    transport took it) or recorded (a channel without one wrote it down), retry later, or
    failed for good; audited."""
    done = True
    if error is None:
        row.status = NotificationStatus.sent if delivered else NotificationStatus.recorded
        row.sent_at = utcnow() if delivered else None
        row.last_error = None
        action = row.status.value
    else:
        row.last_error = error[:500]
        if row.attempts >= settings.notify_max_attempts:
            row.status = NotificationStatus.failed
            action = "failed"
        else:
            done = False
            row.status = NotificationStatus.pending
            due = utcnow() + timedelta(seconds=backoff_seconds(row.attempts, settings))
            enqueue(s, JobKind.send_notification, str(row.id), due_at=due)
            action = "attempt_failed"
    s.add(row)
    audit.record(s, at=now, actor=SYSTEM, entity="notification", entity_id=str(row.id),
                 route_id=row.route_id, action=action,
                 after={"status": row.status.value, "channel": row.channel.value,
                        "attempts": row.attempts,
                        **({"error": error[:200]} if error is not None else {})})
    return done


def _lost_attempt(s: Session, row: Notification | None, *, settings: Settings,
                  now: datetime) -> bool:
    """The job came again but the row is not ``pending``: done (sent / failed), or an
    attempt still ``sending`` whose worker lost its lease — counted as failed, retried
    later (never sent twice at once)."""
    if row is None or row.status is not NotificationStatus.sending:
        return True
    return _record_attempt(s, row, settings=settings, now=now,
                           error="attempt lost: the worker's lease ended while sending")
