"""The notification outbox: real e-mail over SMTP (a local aiosmtpd server), recorded
channels, retries with backoff and giving up — never blocking the route: a hung mail server
holds only the notification lane, and a row claimed (``sending``) is never sent twice."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.notifications.outbox import Recipient, deliver_notification, queue_notification
from engine.routes.transitions import AnswerIn, EngineConfig, record_answer
from engine.runtime.worker import Worker
from models.agencies import Agency, AnswerOutcome
from models.jobs import Job, JobKind
from models.notifications import Channel, Notification, NotificationStatus
from models.persons import Person
from models.routes import StepStatus
from tasks.notifications import (
    DeliveryError,
    OutgoingMessage,
    RecordingAdapter,
    SmtpEmailAdapter,
    adapters_from_settings,
)
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, new_route, step_of, sweep


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
    row = _row(db, nid)  # honest: no real transport took it
    assert row.status is NotificationStatus.recorded and row.sent_at is None


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


# --------------------------------------------------------------------- never blocking routes
@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A mail server that accepts TCP connections and never says a word (hung)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # the kernel completes the handshakes; nobody ever answers
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def test_route_advances_while_the_mail_server_hangs(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], tmp_path: Path, silent_smtp: int,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])
    clock.freeze(kaliningrad(2025, 3, 13, 10, 0))
    sweep(db, clock, cfg)  # e-mails to the coordinator and the supervisor are queued
    step = step_of(db, route_id)
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        record_answer(s, agency=agency, webhook_id="a1", now=clock.now(),
                      answer=AnswerIn(step.current_request_id, AnswerOutcome.provided, {},
                                      None))
        s.commit()
    settings = Settings(var_dir=tmp_path, prefect_mirror=False, smtp_enabled=True,
                        smtp_port=silent_smtp, notify_timeout_seconds=1.5,
                        notify_concurrency=3)

    async def go() -> tuple[float, list[NotificationStatus]]:
        async with Worker(db, clock, cfg, settings, worker_id="w1") as w:
            t0 = time.monotonic()
            await w.run_once()  # applies the answer; the e-mails start in their lane
            took = time.monotonic() - t0
            # the route has moved on while both e-mails are still waiting for the server
            assert step_of(db, route_id).status is StepStatus.answered
            # the next request lies in its agency's inbox, awaiting receipt (298-п п.11)
            assert step_of(db, route_id, 1).status is StepStatus.sending
            states: list[NotificationStatus] = []
            for _ in range(50):  # the lane's threads claim their rows within moments
                with Session(db) as s:
                    states = [n.status for n in s.exec(select(Notification).where(
                        Notification.channel == Channel.email))]
                if states.count(NotificationStatus.sending) == 2:
                    break
                await asyncio.sleep(0.02)
        return took, states

    took, states = asyncio.run(go())
    assert took < 1.0  # well under the mail server's timeout
    assert states.count(NotificationStatus.sending) == 2
    with Session(db) as s:  # after the timeout: each attempt failed, retried later
        mails = list(s.exec(select(Notification).where(Notification.channel == Channel.email)))
    assert {n.status for n in mails} == {NotificationStatus.pending}
    assert all(n.attempts == 1 and n.last_error and "smtp" in n.last_error for n in mails)


class _Slow:
    """An adapter that holds its first send until released, and counts what it sends."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.sent: list[int] = []

    def send(self, message: OutgoingMessage) -> None:
        self.started.set()
        assert self.release.wait(30)
        self.sent.append(message.notification_id)


def test_a_second_worker_after_a_lease_expiry_does_not_send_again(
    db: Engine, tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path, notify_backoff_base_seconds=10)
    nid = _queue(db, Recipient("staff:sup39", Channel.sms, "+70000000000"))
    slow = _Slow()
    first: list[bool] = []
    t = threading.Thread(target=lambda: first.append(deliver_notification(
        db, nid, adapters={Channel.sms: slow}, settings=settings)))
    t.start()
    assert slow.started.wait(10)
    assert _row(db, nid).status is NotificationStatus.sending  # claimed before the call
    # the job's lease ran out: another worker gets it while the first is still sending
    other = _Slow()
    assert deliver_notification(db, nid, adapters={Channel.sms: other},
                                settings=settings) is False
    assert not other.started.is_set()  # it did not send
    row = _row(db, nid)
    assert row.status is NotificationStatus.pending and row.last_error is not None
    assert row.last_error.startswith("attempt lost")
    slow.release.set()
    t.join(10)
    assert first == [True] and slow.sent == [nid]
    assert _row(db, nid).status is NotificationStatus.sent
    # the retry it scheduled finds the message sent: nothing is sent twice
    assert deliver_notification(db, nid, adapters={Channel.sms: other}, settings=settings)
    assert not other.started.is_set()


def test_production_refuses_a_channel_in_use_that_only_records(
        db: Engine, seeded: list[Person], tmp_path: Path) -> None:
    from engine.notifications.outbox import (
        NoTransportError,
        channels_in_use,
        refuse_recording_channels,
    )
    from models.agencies import Agency
    from models.staff import StaffUser

    recording = Settings(var_dir=tmp_path)
    with Session(db) as s:
        used = channels_in_use(s)
    assert used  # the seeded agencies are recipients
    with pytest.raises(NoTransportError, match=r"^notifications: channel\(s\) in use with no "
                                               r"real transport, only recorded: "):
        refuse_recording_channels(db, recording)
    # every recipient on e-mail, and e-mail over a real SMTP relay: accepted
    with Session(db) as s:
        for a in s.exec(select(Agency)):
            a.email = f"{a.id}@example.org"
            s.add(a)
        for u in s.exec(select(StaffUser)):
            u.email = f"{u.id}@example.org"
            s.add(u)
        s.commit()
        assert set(channels_in_use(s)) == {Channel.email}
    with pytest.raises(NoTransportError, match=r"email \(\d+ recipients\)"):
        refuse_recording_channels(db, recording)
    refuse_recording_channels(db, Settings(var_dir=tmp_path, smtp_enabled=True))
