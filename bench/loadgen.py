"""An open-loop HTTP load generator for the webhook benchmark (no coordinated omission).

Request ``i`` is due at ``start + i / rate``, whatever happened to the others; its latency is
measured from that due time to the end of its response, so a server that falls behind shows
it in the figures instead of slowing the generator down (the mistake ``wrk`` makes and
``wrk2`` fixes). Requests go over ``connections`` persistent HTTP/1.1 connections written
on raw asyncio streams: an httpx pool with hundreds of queued requests spends more CPU
scanning its own pool than the server spends answering (measured here: the generator, not
the API, was the bottleneck at 200 requests/s).

Bodies and headers are prepared before the clock starts, so signing costs nothing in the
timed loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class PreparedRequest:
    """One POST: its path, headers and raw body."""

    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Sample:
    """One request's outcome: latency from its due time (s) and HTTP status (0: failed)."""

    latency_s: float
    status: int


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def post(self, req: PreparedRequest) -> int:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        head = [f"POST {req.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(req.body)}"]
        head += [f"{k}: {v}" for k, v in req.headers.items()
                 if k.lower() not in ("host", "content-length")]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + req.body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        keep_alive = True
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection" and value.strip().lower() == "close":
                keep_alive = False
            elif name == "transfer-encoding":
                raise ConnectionError("chunked responses are not supported by this generator")
        if length:
            await self.reader.readexactly(length)
        if not keep_alive:
            await self.close()
        return status


async def paced_posts(base_url: str, requests: Sequence[PreparedRequest], *, rate: float,
                      connections: int = 64) -> list[Sample]:
    """POST ``requests`` to ``base_url`` at ``rate`` per second (open loop)."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    samples: list[Sample | None] = [None] * len(requests)
    next_index = 0
    start = time.perf_counter() + 0.05

    async def lane() -> None:
        nonlocal next_index
        conn = _Conn(host, port)
        try:
            while next_index < len(requests):
                i = next_index
                next_index += 1
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    status = await conn.post(requests[i])
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                    await conn.close()
                    status = 0
                samples[i] = Sample(time.perf_counter() - due, status)
        finally:
            await conn.close()

    await asyncio.gather(*(lane() for _ in range(max(1, connections))))
    return [s for s in samples if s is not None]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of already sorted values, nearest-rank."""
    if not sorted_values:
        raise ValueError("percentile: no values")
    rank = max(1, min(len(sorted_values), math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]
