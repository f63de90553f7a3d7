"""Sending interagency requests to agencies over HTTP (httpx), signed like webhooks.

Retries with backoff on network errors and 5xx are the queue's: one call here is one
attempt, classified so the worker knows whether to retry (298-п Порядок п.10: the request
is sent within 1 working day; a transport failure must not lose it).

Personal data (152-ФЗ): what an agency replies may echo the request's subject (name, SNILS),
so a reply's text is never stored, logged or put into the audit: a refusal is recorded as
its status code and a short SHA-256 of the reply, enough to match it with the agency's logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
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


class PerAgencyTransport(httpx.AsyncBaseTransport):
    """At most ``connections_per_origin`` connections to each agency origin (scheme, host,
    port), and as many requests to it at once; a slow agency holds only its own.

    Each connection is a pool of its own (``make_pool`` with ``max_connections=1``) that
    holds one request at a time: a request waits for its origin's place (an
    ``asyncio.Semaphore``), takes an idle pool of that origin (the one freed last: its
    connection is the likeliest to be kept alive) or makes one, and gives both back when
    its response is closed. httpcore's pool looks over every connection it holds, and
    every request waiting for one, each time a request starts or ends (and polls each idle
    connection's socket); several requests let into one pool at once were all given the
    same idle connection, and all but one had to start over (10 tries a request in a
    burst): one pool of 64 connections cost the worker more CPU than the rest of a
    transition, one of 16 a fifth of it."""

    def __init__(self, *, connections_per_origin: int,
                 make_pool: Callable[[httpx.Limits], httpx.AsyncBaseTransport] | None = None,
                 ) -> None:
        self._size = connections_per_origin
        self._limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._make_pool = make_pool or self._http_pool
        self._tls: ssl.SSLContext | None = None
        self._origins: dict[tuple[bytes, bytes, int | None], _Origin] = {}

    def _http_pool(self, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        if self._tls is None:  # one for all: httpx would load the CA certificates for each
            self._tls = httpx.create_ssl_context()
        return httpx.AsyncHTTPTransport(verify=self._tls, limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(self._size)
        await origin.places.acquire()
        if origin.idle:
            pool = origin.idle.pop()
        else:  # fewer pools than places: every pool made is held by a request
            pool = self._make_pool(self._limits)
            origin.pools.append(pool)

        def give_back() -> None:
            origin.idle.append(pool)
            origin.places.release()

        try:
            resp = await pool.handle_async_request(request)
        except BaseException:
            give_back()
            raise
        assert isinstance(resp.stream, httpx.AsyncByteStream)
        return httpx.Response(status_code=resp.status_code, headers=resp.headers,
                              stream=_ReleasingStream(resp.stream, give_back),
                              extensions=resp.extensions)

    async def aclose(self) -> None:
        origins, self._origins = list(self._origins.values()), {}
        for origin in origins:
            for pool in origin.pools:
                await pool.aclose()


class _Origin:
    """One agency origin's places, its pools (one connection each) and the idle ones."""

    __slots__ = ("idle", "places", "pools")

    def __init__(self, size: int) -> None:
        self.places = asyncio.Semaphore(size)
        self.pools: list[httpx.AsyncBaseTransport] = []
        self.idle: list[httpx.AsyncBaseTransport] = []


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its request's place back when it is closed (once)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    def __aiter__(self) -> AsyncIterator[bytes]:  # the body's own chunks, no layer more
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class AgencyClient(httpx.AsyncClient):
    """The worker's HTTP client for agency requests (an ``httpx.AsyncClient`` over the
    transport it is made with, ``PerAgencyTransport``).

    ``send_request`` builds its request with the client, as ``post`` does (the same headers,
    body and timeout), and hands it to ``send_direct``, which leaves out what the client
    does around each request and agency requests never use — the auth flow, the redirect
    and event-hook loops, a pass of every reply through the cookie jar (kept only for a
    reply that sets a cookie) — a fifth of a send's CPU. Without auth or hooks and with
    redirects not followed (httpx's default), the request on the wire and the response are
    the same as ``send``'s."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport, timeout: float) -> None:
        super().__init__(transport=transport, timeout=timeout)
        self._agency_transport = transport

    async def send_direct(self, request: httpx.Request) -> httpx.Response:
        """``send(request)`` (body read) without the per-request machinery it skips."""
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = await self._agency_transport.handle_async_request(request)
        response.request = request
        try:
            if "set-cookie" in response.headers or "set-cookie2" in response.headers:
                self.cookies.extract_cookies(response)
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response


log = logging.getLogger(__name__)


def reply_digest(content: bytes) -> str:
    """A short fingerprint of a reply body (never the body itself: it may hold PII)."""
    return hashlib.sha256(content).hexdigest()[:16]


async def send_request(
    client: httpx.AsyncClient, *, url: str, secret: str | Sequence[str], idempotency_key: str,
    body: dict[str, Any],
) -> DeliveryResult:
    """POST one request; the idempotency key doubles as ``webhook-id`` so a resend after a
    crash is the same request to the agency.

    ``secret``: the agency's secret, or its current and previous secrets during a rotation
    (the request then carries a signature by each, so the agency verifies it whichever of
    the two it holds).
    """
    if not secret:
        # e.g. production with only a (refused) demo secret: kept queued until rotated
        return DeliveryResult(Delivery.retry, None,
                              "secret: the agency has no usable secret; rotate it")
    raw = canonical_json(body)
    headers = sign_headers(secret, idempotency_key, raw)
    headers["Idempotency-Key"] = idempotency_key
    headers["Content-Type"] = "application/json"
    try:
        request = client.build_request("POST", url, content=raw, headers=headers)
        resp = await (client.send_direct(request) if isinstance(client, AgencyClient)
                      else client.send(request))
    except httpx.HTTPError as exc:
        return DeliveryResult(Delivery.retry, None,
                              f"network error: {type(exc).__name__}: {exc}"[:300])
    except Exception as exc:  # noqa: BLE001 - see below
        # The transport stack does not always wrap a connection the peer closed mid-connect
        # (httpcore 1.0.9 + anyio 4.16 raise AttributeError from getpeername() on the
        # closed socket). No response came, so it is one failed attempt like any network
        # error: retried with the same key, never a crash of the whole send batch.
        log.warning("request %s: transport failure", idempotency_key, exc_info=True)
        return DeliveryResult(Delivery.retry, None,
                              f"transport error: {type(exc).__name__}: {exc}"[:300])
    if 200 <= resp.status_code < 300:
        return DeliveryResult(Delivery.delivered, resp.status_code)
    if resp.status_code >= 500 or resp.status_code in RETRYABLE:
        return DeliveryResult(Delivery.retry, resp.status_code, f"HTTP {resp.status_code}")
    return DeliveryResult(Delivery.refused, resp.status_code,
                          f"HTTP {resp.status_code}; reply sha256:{reply_digest(resp.content)}")

