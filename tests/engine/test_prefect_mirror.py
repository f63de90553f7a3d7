"""Prefect shows one flow run per person: named and tagged by identifiers only, the steps
as task runs, the state saying where the route stands. Prefect being down holds no route."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.clock import DbClock
from engine.routes import (
    AnswerIn,
    EngineConfig,
    apply_answer,
    record_answer,
    register_application,
)
from engine.settings import Settings
from engine.worker import Worker
from models.agencies import Agency, AnswerOutcome
from models.persons import Person
from models.routes import Route, Step
from models.templates import Ladder
from tasks.prefect_server import PrefectServer
from tests.conftest import kaliningrad

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect server per test session (SQLite, or REHAB_PREFECT_DATABASE_URL)."""
    home = tmp_path_factory.mktemp("prefect")
    server = PrefectServer(home=Path(home),
                           database_url=os.environ.get("REHAB_PREFECT_DATABASE_URL") or None)
    server.start()
    yield server.api_url
    server.stop()


async def _drain(worker: Worker) -> None:
    async with worker:
        while await worker.run_once():
            pass


async def _runs(api: str, route_ids: list[str]) -> dict[str, object]:
    async with PrefectClient(api=api) as c:
        out: dict[str, object] = {}
        for rid in route_ids:
            runs = await c.read_flow_runs(flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"route:{rid}"])))
            tasks = []
            for fr in runs:
                from prefect.client.schemas.filters import FlowRunFilterId

                tasks = await c.read_task_runs(flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[fr.id])))
            out[rid] = (runs, tasks)
        return out


def test_one_flow_run_per_person_with_steps_as_task_runs(
    prefect_api: str, db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    cfg = EngineConfig(sender_region="39", public_base_url="http://127.0.0.1:9",
                       default_ladder=Ladder(1, 2), mirror=True)
    settings = Settings(environment="test")
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    with Session(db, expire_on_commit=False) as s:
        routes = [register_application(s, cfg, now=clock.now(), person_id=p.id,
                                       template_code="supported_living") for p in seeded]
        s.commit()
    ids = [r.id for r in routes]
    # Prefect is down: the routes go on, the mirror waits
    down = Worker(db, clock, cfg, settings, worker_id="w-down",
                  prefect_api_url="http://127.0.0.1:9/api")
    asyncio.run(_drain_once(down))
    assert down.stats.mirror_errors >= 1
    # route 0 moves on while Prefect is away
    with Session(db, expire_on_commit=False) as s:
        step = s.exec(select(Step).where(Step.route_id == ids[0], Step.seq == 0)).one()
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        ans, _ = record_answer(s, agency=agency, webhook_id="m1", now=clock.now(),
                               answer=AnswerIn(step.current_request_id, AnswerOutcome.provided,
                                               {}, None))
        s.commit()
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
    # Prefect is back: the mirror catches up (retry delays are skipped by re-dating them)
    with db.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("UPDATE job SET due_at = created_at"))
    up = Worker(db, clock, cfg, settings, worker_id="w-up", prefect_api_url=prefect_api)
    asyncio.run(_drain(up))
    assert up.stats.mirror_errors == 0 and up.stats.mirrored >= 3
    found = asyncio.run(_runs(prefect_api, ids))
    pd = [p.full_name for p in seeded] + [p.snils for p in seeded]
    for rid in ids:
        runs, tasks = found[rid]  # type: ignore[misc]
        assert len(runs) == 1, rid
        fr = runs[0]
        assert fr.name == f"route-{rid}"
        assert set(fr.tags) >= {f"route:{rid}", "region:39", "template:supported_living"}
        assert fr.parameters == {"route_id": rid}
        blob = " ".join([fr.name, *fr.tags, str(fr.parameters), fr.state.message or "",
                         *[t.name for t in tasks], *[t.state.message or "" for t in tasks]])
        assert not any(x in blob for x in pd), "personal data reached Prefect"
    runs0, tasks0 = found[ids[0]]  # type: ignore[misc]
    assert runs0[0].state.name == "AwaitingAnswer"
    assert "answer due 19.01.2026" in (runs0[0].state.message or "")
    assert sorted(t.state.name for t in tasks0) == ["Answered", "AwaitingAnswer"]
    runs1, tasks1 = found[ids[1]]  # type: ignore[misc]
    assert "answer due 19.01.2026" in (runs1[0].state.message or "")
    assert [t.state.name for t in tasks1] == ["AwaitingAnswer"]
    with Session(db) as s:
        stored = {r.id: r.prefect_flow_run_id for r in s.exec(select(Route))}
    assert {rid: str(found[rid][0][0].id) for rid in ids} == stored  # type: ignore[index]
    assert all(UUID(v) for v in stored.values() if v)


async def _drain_once(worker: Worker) -> None:
    async with worker:
        await worker.run_once()
