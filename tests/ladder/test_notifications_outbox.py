"""The notification outbox: real e-mail over SMTP (a local aiosmtpd server), recorded
channels, retries with backoff and giving up — never blocking the route."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.notify import Recipient, deliver_notification, queue_notification
from engine.settings import Settings
from models.jobs import Job, JobKind
from models.notifications import Channel, Notification, NotificationStatus
from tasks.notifications import (
    DeliveryError,
    OutgoingMessage,
    RecordingAdapter,
    SmtpEmailAdapter,
    adapters_from_settings,
)
from tests.conftest import kaliningrad


class _Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Sink]]:
    sink = _Sink()
    port = _free_port()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield port, sink
    finally:
        ctl.stop()


def _queue(db: Engine, recipient: Recipient, key: str = "k1") -> int:
    with Session(db) as s:
        row = queue_notification(
            s, dedupe_key=key, recipient=recipient,
            subject="Напоминание: срок ответа на межведомственный запрос истекает 19.01.2026",
            body="Напоминание: срок ответа ... истекает 19.01.2026.",
            now=kaliningrad(2026, 1, 16, 9, 0), route_id="rt_x", step_id="rt_x-s0")
        assert row is not None and row.id is not None
        again = queue_notification(
            s, dedupe_key=key, recipient=recipient, subject="x", body="x",
            now=kaliningrad(2026, 1, 16, 9, 0))
        assert again is None  # idempotent by dedupe_key
        s.commit()
        return row.id


def _row(db: Engine, nid: int) -> Notification:
    with Session(db) as s:
        row = s.get(Notification, nid)
        assert row is not None
        return row


def test_email_is_sent_over_smtp(db: Engine, tmp_path: Path,
                                 smtp: tuple[int, _Sink]) -> None:
    port, sink = smtp
    settings = Settings(var_dir=tmp_path, smtp_enabled=True, smtp_port=port,
                        smtp_from="noreply@rehab.example")
    nid = _queue(db, Recipient("staff:coord39", Channel.email, "coord39@example.org"))
    with Session(db) as s:
        job = s.exec(select(Job).where(Job.kind == JobKind.send_notification)).one()
        assert job.ref == str(nid)
    assert deliver_notification(db, nid, settings=settings) is True
    assert len(sink.messages) == 1
    mail = message_from_bytes(sink.messages[0])
    assert mail["To"] == "coord39@example.org"
    assert "истекает 19.01.2026" in str(make_header(decode_header(mail["Subject"])))
    row = _row(db, nid)
    assert row.status is NotificationStatus.sent and row.attempts == 1
    assert deliver_notification(db, nid, settings=settings) is True  # already sent
    assert len(sink.messages) == 1


def test_other_channels_record_what_they_would_send(db: Engine, tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    nid = _queue(db, Recipient("agency:msp39", Channel.portal, "agency:msp39"))
    assert deliver_notification(db, nid, adapters=adapters_from_settings(settings),
                                settings=settings)
    lines = (tmp_path / "notifications" / "portal.jsonl").read_text("utf-8").splitlines()
    rec = json.loads(lines[0])
    assert rec["recipient"] == "agency:msp39" and "19.01.2026" in rec["subject"]
    assert _row(db, nid).status is NotificationStatus.sent


class _Down:
    def send(self, message: OutgoingMessage) -> None:
        raise DeliveryError("gateway down")


def test_retries_with_backoff_then_gives_up(db: Engine, tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, notify_max_attempts=3,
                        notify_backoff_base_seconds=10)
    nid = _queue(db, Recipient("staff:sup39", Channel.sms, "+70000000000"))
    adapters = {Channel.sms: _Down()}
    with Session(db) as s:
        first_due = s.exec(select(Job.due_at).where(Job.ref == str(nid))).one()
    assert deliver_notification(db, nid, adapters=adapters, settings=settings) is False
    with Session(db) as s:
        job = s.exec(select(Job).where(Job.ref == str(nid))).one()
    assert (job.due_at - first_due).total_seconds() >= 9  # re-enqueued with a backoff
    assert job.generation == 1
    row = _row(db, nid)
    assert row.status is NotificationStatus.pending and row.attempts == 1
    assert row.last_error == "gateway down"
    assert deliver_notification(db, nid, adapters=adapters, settings=settings) is False
    assert deliver_notification(db, nid, adapters=adapters, settings=settings) is True
    row = _row(db, nid)
    assert row.status is NotificationStatus.failed and row.attempts == 3


def test_smtp_refusal_is_a_delivery_error() -> None:
    adapter = SmtpEmailAdapter("127.0.0.1", _free_port(), "noreply@rehab.example", timeout=2)
    with pytest.raises(DeliveryError, match="smtp"):
        adapter.send(OutgoingMessage(1, Channel.email, "a@example.org", "s", "b"))


def test_recording_adapter_appends(tmp_path: Path) -> None:
    a = RecordingAdapter(tmp_path, Channel.messenger)
    for i in range(2):
        a.send(OutgoingMessage(i, Channel.messenger, "staff:x", "s", "b"))
    assert len((tmp_path / "messenger.jsonl").read_text("utf-8").splitlines()) == 2
