"""The API's access log and request ids (issue 13).

Each request gets an id — the caller's ``X-Request-ID`` when it is a short token, else a new
one — returned in the response's ``X-Request-ID`` header, written on the access-log line and
kept in a context variable for the engine's records written while the request runs. The line
holds the method, the path (never the query string: a search may carry a SNILS), the status
and the duration: identifiers only, no personal data. Webhook calls are also counted and
timed for ``/metrics``.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.infra.request_ids import current_request_id
from ops.metrics import ANSWERS, WEBHOOK_SECONDS

log = logging.getLogger("rehab.api.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
WEBHOOK_PREFIX = "/webhooks/agencies/"


class AccessLog:
    """A pure ASGI middleware (no body buffering: the webhook streams its body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.match(given) else secrets.token_hex(8)
        token = current_request_id.set(rid)
        status = 500
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - t0
            path = str(scope.get("path", ""))
            if path.startswith(WEBHOOK_PREFIX):
                WEBHOOK_SECONDS.labels(code=str(status)).observe(seconds)
                if status >= 400:
                    ANSWERS.labels(outcome="unknown", result=f"refused_{status}").inc()
            log.info("%s %s %d %.1f ms request_id=%s", scope.get("method"), path, status,
                     seconds * 1000, rid, extra={
                         "event": "access", "method": scope.get("method"), "path": path,
                         "status": status, "ms": round(seconds * 1000, 1),
                         "request_id": rid})
            current_request_id.reset(token)
