"""Channel adapters of the notification outbox: the I/O of sending a message to a person.

E-mail goes out over SMTP (``smtplib``); SMS, messenger and portal are adapters that record
what they would send as JSON lines under ``var_dir/notifications/`` until a real gateway is
connected. An adapter raises :class:`DeliveryError` when a message could not be handed over;
retries and giving up are the outbox's business (``engine.notifications.outbox``).
"""

from __future__ import annotations

import json
import smtplib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from engine.infra.settings import Settings
from models.notifications import Channel
from models.types import utcnow


class DeliveryError(RuntimeError):
    """The channel did not accept the message (the outbox retries later)."""


@dataclass(frozen=True)
class OutgoingMessage:
    """What an adapter sends: no personal data of persons, identifiers only."""

    notification_id: int
    channel: Channel
    recipient: str
    subject: str
    body: str


class ChannelAdapter(Protocol):
    def send(self, message: OutgoingMessage) -> None: ...


def delivers(adapter: ChannelAdapter) -> bool:
    """Whether ``adapter`` hands messages to a real transport (its ``delivers`` attribute;
    an adapter without one is taken to be a transport). A recording adapter does not: what
    it handled is ``recorded``, never ``sent``."""
    return bool(getattr(adapter, "delivers", True))


class SmtpEmailAdapter:
    """Real e-mail over SMTP (plain, no authentication: a relay of the installation).

    ``timeout`` bounds each socket operation (connect, greeting, every command), so a server
    that accepts and never answers fails the attempt instead of holding the sender."""

    delivers = True

    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout = timeout

    def send(self, message: OutgoingMessage) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["X-Rehab-Notification"] = str(message.notification_id)
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {exc}") from exc


class RecordingAdapter:
    """Records what would be sent, one JSON object a line in ``<dir>/<channel>.jsonl``: no
    real transport (a notification it handles is ``recorded``, not ``sent``)."""

    delivers = False

    _lock = threading.Lock()

    def __init__(self, directory: Path, channel: Channel) -> None:
        self.path = directory / f"{channel.value}.jsonl"

    def send(self, message: OutgoingMessage) -> None:
        line = json.dumps({
            "at": utcnow().isoformat(), "notification_id": message.notification_id,
            "channel": message.channel.value, "recipient": message.recipient,
            "subject": message.subject, "body": message.body,
        }, ensure_ascii=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            raise DeliveryError(f"record {self.path}: {exc}") from exc


def recording_only(adapters: Mapping[Channel, ChannelAdapter],
                   channels: Iterable[Channel]) -> list[Channel]:
    """Those of ``channels`` whose adapter has no real transport (or no adapter at all)."""
    return [c for c in channels if c not in adapters or not delivers(adapters[c])]


def adapters_from_settings(settings: Settings) -> Mapping[Channel, ChannelAdapter]:
    """The adapters of an installation: SMTP e-mail when ``smtp_enabled``, else recorded."""
    directory = settings.var_dir / "notifications"
    out: dict[Channel, ChannelAdapter] = {c: RecordingAdapter(directory, c) for c in Channel}
    if settings.smtp_enabled:
        out[Channel.email] = SmtpEmailAdapter(
            settings.smtp_host, settings.smtp_port, settings.smtp_from,
            timeout=settings.notify_timeout_seconds,
        )
    return out
