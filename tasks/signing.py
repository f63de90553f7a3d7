"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}``, verified in constant time with a replay window.
Two secrets may be valid at once (rotation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook


class SignatureError(ValueError):
    """A webhook whose headers or signature do not verify (the message says which rule)."""


def canonical_json(body: Mapping[str, Any]) -> bytes:
    """The exact bytes we send: sorted keys, UTF-8, no spaces (stable across resends)."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign_headers(
    secret: str | Sequence[str], msg_id: str, body: bytes, *, at: float | None = None
) -> dict[str, str]:
    """Headers of a signed message (``at``: Unix time of signing, default now).

    ``secret`` may be several secrets (a rotation: the new one and the previous one): the
    ``webhook-signature`` header then carries one space-separated ``v1,`` signature per
    secret, so a receiver holding either secret verifies the message (Standard Webhooks).
    """
    secrets = [secret] if isinstance(secret, str) else list(dict.fromkeys(secret))
    if not secrets:
        raise ValueError("secret: at least one secret is needed to sign")
    ts = int(at if at is not None else time.time())
    when = datetime.fromtimestamp(ts, tz=UTC)
    sig = " ".join(Webhook(s).sign(msg_id, when, body.decode()) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def _key(secret: str) -> bytes:
    s = secret.removeprefix("whsec_")
    return base64.b64decode(s + "==")


def verify(
    secrets: Sequence[str], headers: Mapping[str, str], body: bytes, *,
    tolerance_seconds: int = 300, now: float | None = None,
) -> str:
    """Verify a signed message against any of ``secrets``; return its ``webhook-id``.

    Raises SignatureError naming the header and the rule that failed.
    """
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sig = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", ts),
                        ("webhook-signature", sig)):
        if not value:
            raise SignatureError(f"{name}: header is required")
    assert msg_id is not None and ts is not None and sig is not None
    if len(msg_id) > 200:
        raise SignatureError("webhook-id: at most 200 characters")
    try:
        ts_int = int(ts)
    except ValueError:
        raise SignatureError("webhook-timestamp: must be Unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - ts_int) > tolerance_seconds:
        raise SignatureError(
            f"webhook-timestamp: outside the {tolerance_seconds // 60}-minute replay window"
        )
    signed = f"{msg_id}.{ts_int}.".encode() + body
    candidates = []
    for part in sig.split(" "):
        version, _, value = part.partition(",")
        if version == "v1" and value:
            try:
                candidates.append(base64.b64decode(value, validate=True))
            except ValueError:
                continue
    for secret in secrets:
        expected = hmac.new(_key(secret), signed, hashlib.sha256).digest()
        for cand in candidates:
            if hmac.compare_digest(expected, cand):
                return msg_id
    raise SignatureError("webhook-signature: no v1 signature matches the agency's secrets")
