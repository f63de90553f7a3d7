"""The worker's HTTP transport: at most as many connections to an agency, and requests to it
at once, as it has places; each connection a pool of its own that holds one request at a
time (tasks/agency_client.py, ``PerAgencyTransport``)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tasks.agency_client import PerAgencyTransport


def test_a_slow_agency_holds_only_its_own_places() -> None:
    inside: Counter[str] = Counter()
    most: Counter[str] = Counter()
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        inside[host] += 1
        most[host] = max(most[host], inside[host])
        try:
            if host == "slow.test":
                await release.wait()
            return httpx.Response(202)
        finally:
            inside[host] -= 1

    pools: list[httpx.Limits] = []
    served: dict[int, set[str]] = {}  # pool → the hosts it was asked for

    def make_pool(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        pools.append(limits)
        hosts = served.setdefault(len(pools), set())

        async def pool_handler(request: httpx.Request) -> httpx.Response:
            hosts.add(request.url.host)
            return await handler(request)

        return httpx.MockTransport(pool_handler)

    async def run() -> None:
        transport = PerAgencyTransport(connections_per_origin=2, make_pool=make_pool)
        async with httpx.AsyncClient(transport=transport) as client:
            slow = [asyncio.ensure_future(client.post(f"http://slow.test/r/{i}"))
                    for i in range(5)]
            await asyncio.sleep(0)
            # the slow agency's two places are taken; another agency is not held up
            fast = await asyncio.wait_for(asyncio.gather(
                *(client.post(f"http://fast.test/r/{i}") for i in range(3))), timeout=5)
            assert [r.status_code for r in fast] == [202] * 3
            assert not any(t.done() for t in slow)
            assert inside["slow.test"] == 2
            release.set()
            done = await asyncio.wait_for(asyncio.gather(*slow), timeout=5)
            assert [r.status_code for r in done] == [202] * 5

    asyncio.run(run())
    assert most["slow.test"] == 2  # five asked, never more than its places at once
    # a pool is one connection, to one agency; the slow one's five requests went through
    # its two pools, and no agency was given more pools than its places
    assert all(p.max_connections == 1 for p in pools)
    assert all(len(hosts) == 1 for hosts in served.values())
    by_host = Counter(h for hosts in served.values() for h in hosts)
    assert by_host["slow.test"] == 2 and 1 <= by_host["fast.test"] <= 2


def test_a_place_is_given_back_when_the_request_fails() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(202)

    async def run() -> None:
        transport = PerAgencyTransport(connections_per_origin=1,
                                       make_pool=lambda _l: httpx.MockTransport(handler))
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):
                try:
                    await client.post("http://a.test/r")
                except httpx.ConnectError:
                    pass
            resp = await asyncio.wait_for(client.post("http://a.test/r"), timeout=5)
            assert resp.status_code == 202

    asyncio.run(run())


def test_requests_one_after_another_keep_to_one_connection() -> None:
    made = 0

    def make_pool(_limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        nonlocal made
        made += 1
        return httpx.MockTransport(lambda _request: httpx.Response(202))

    async def run() -> None:
        transport = PerAgencyTransport(connections_per_origin=4, make_pool=make_pool)
        async with httpx.AsyncClient(transport=transport) as client:
            for i in range(5):
                assert (await client.post(f"http://a.test/r/{i}")).status_code == 202

    asyncio.run(run())
    assert made == 1  # the idle connection is taken again, no new one made
