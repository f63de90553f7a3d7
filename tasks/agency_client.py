"""Sending interagency requests to agencies over HTTP (httpx), signed like webhooks.

Retries with backoff on network errors and 5xx are the queue's: one call here is one
attempt, classified so the worker knows whether to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from tasks.signing import canonical_json, sign_headers


class Delivery(StrEnum):
    delivered = "delivered"
    retry = "retry"  # network error, timeout, 408/425/429, 5xx
    refused = "refused"  # other 4xx: the agency will not take it as it is


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Delivery
    status_code: int | None
    error: str | None = None


RETRYABLE = {408, 425, 429}


async def send_request(
    client: httpx.AsyncClient, *, url: str, secret: str, idempotency_key: str,
    body: dict[str, Any],
) -> DeliveryResult:
    """POST one request; the idempotency key doubles as ``webhook-id`` so a resend after a
    crash is the same request to the agency."""
    raw = canonical_json(body)
    headers = sign_headers(secret, idempotency_key, raw)
    headers["Idempotency-Key"] = idempotency_key
    headers["Content-Type"] = "application/json"
    try:
        resp = await client.post(url, content=raw, headers=headers)
    except httpx.HTTPError as exc:
        return DeliveryResult(Delivery.retry, None, f"{type(exc).__name__}: {exc}"[:300])
    if 200 <= resp.status_code < 300:
        return DeliveryResult(Delivery.delivered, resp.status_code)
    if resp.status_code >= 500 or resp.status_code in RETRYABLE:
        return DeliveryResult(Delivery.retry, resp.status_code, f"HTTP {resp.status_code}")
    return DeliveryResult(Delivery.refused, resp.status_code,
                          f"HTTP {resp.status_code}: {resp.text[:200]}")


def backoff_seconds(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff: base, 2·base, 4·base ... capped."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))
