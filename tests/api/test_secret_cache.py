"""The webhook endpoint keeps agencies' secrets for a moment (no database read per answer)
without ever refusing an answer signed with a secret issued a moment ago."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from api.app import create_app
from api.webhooks import SecretCache
from engine.agencies.participants import retire_previous, rotate_secret
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from models.persons import Person
from models.routes import Step
from tests.api.test_webhooks import post, task  # noqa: F401  (the fixture)


def _client(db: Engine, clock: DbClock, ttl: float) -> TestClient:
    app = create_app(db, settings=Settings(environment="test", prefect_mirror=False),
                     clock=clock)
    app.state.secret_cache = SecretCache(app.state.read_engine, production=False, ttl=ttl)
    return TestClient(app)


def _body(step: Step) -> dict[str, object]:
    return {"task_id": step.current_request_id, "outcome": "provided", "payload": {}}


def test_a_secret_rotated_a_moment_ago_is_accepted_at_once(
        db: Engine, clock: DbClock, task: Step) -> None:  # noqa: F811
    client = _client(db, clock, ttl=3600)  # the cache would hold the old list for an hour
    agency = task.agency_id or ""
    assert post(client, agency, {"task_id": "tk_none", "outcome": "provided"},
                msg_id="warm").status_code == 404  # the secrets are cached now
    with Session(db) as s:
        new = rotate_secret(s, agency)
        s.commit()
    r = post(client, agency, _body(task), msg_id="m-new", secret=new)
    assert r.status_code == 200, r.text


def test_a_retired_secret_is_refused_once_the_cache_expires(
        db: Engine, clock: DbClock, task: Step) -> None:  # noqa: F811
    client = _client(db, clock, ttl=0)
    agency = task.agency_id or ""
    with Session(db) as s:
        first = rotate_secret(s, agency)  # the public demo secret is not kept
        s.commit()
    with Session(db) as s:
        second = rotate_secret(s, agency)  # ``first`` stays valid as the previous secret
        s.commit()
    assert post(client, agency, _body(task), msg_id="m1", secret=first).status_code == 200
    with Session(db) as s:
        retire_previous(s, agency)
        s.commit()
    assert post(client, agency, _body(task), msg_id="m2", secret=first).status_code == 401
    assert post(client, agency, _body(task), msg_id="m3", secret=second).status_code == 200


def test_unknown_agencies_are_refused_and_reads_are_cached(
        db: Engine, seeded: list[Person]) -> None:
    from api.app import create_app as _  # noqa: F401  (the app builds the read engine)
    from engine.infra.db import make_engine

    reader = make_engine(db.url.render_as_string(hide_password=False), read_only=True)
    cache = SecretCache(reader, production=False, ttl=3600)
    with pytest.raises(HTTPException) as err:
        asyncio.run(cache.get("nobody"))
    assert err.value.status_code == 404 and "agency_id" in str(err.value.detail)
    first, cached_first = asyncio.run(cache.get("msp39"))
    again, cached_again = asyncio.run(cache.get("msp39"))
    fresh, cached_fresh = asyncio.run(cache.get("msp39", fresh=True))
    assert (cached_first, cached_again, cached_fresh) == (False, True, False)
    assert first == again == fresh and len(first) == 1
    reader.dispose()
