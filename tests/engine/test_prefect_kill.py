"""SIGKILL the Prefect server, the mirror and the worker while routes are being mirrored.

Real processes over real HTTP on loopback: a Prefect server of this test's own (SQLite in its
home, or ``REHAB_PREFECT_DATABASE_URL``), the simulated agencies, our API, a worker and the
mirror process (``rehab mirror``). While the mirror is creating the routes' flow runs, the
Prefect server's process group and the mirror are killed. With Prefect dead the routes go on
(answers are applied, next requests go out; the worker is killed once meanwhile); then both
are restarted, and the mirror, killed once more while it catches up, catches up.

Afterwards: exactly one flow run per route (by its ``route:<id>`` tag) and one task run per
started step, each in the state our database says, no personal data anywhere in Prefect,
and the usual no-loss checks (one distinct request per request, each answer applied once).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pendulum
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterTags,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import Artifact, FlowRun, Log, TaskRun
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from engine.infra import queue
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from models.agencies import AgencyAnswer, AgencyRequest, AnswerEffect
from models.audit import AuditEvent
from models.jobs import Job, JobKind
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import Ladder
from sim.agencies import Profile
from sim.scenario import DemoOptions, demo_stack, wait_idle
from sim.seed import make_persons
from tasks.prefect_logs import LOGGED
from tasks.prefect_mirror import BATCH_SIZE, load_view, route_state, step_state
from tasks.prefect_server import PrefectServer

pytestmark = pytest.mark.slow

#: more routes than one mirror pass takes: a pass records its flow runs together, so with
#: fewer the first pass could mirror every route before the kill lands (a faster worker made
#: it do so); the second pass needs Prefect, dead by then
N_ROUTES = BATCH_SIZE + 10
FAST: dict[str, Profile] = {
    "msp39": Profile(late=0.0, never=0.0, absent=0.1, fail_first=0.1, max_days=2),
    "mz39": Profile(late=0.0, never=0.0, absent=0.1, fail_first=0.1, max_days=2),
    "mo39": Profile(late=0.0, never=0.0, absent=0.0, fail_first=0.1, max_days=2),
}


def _poll(cond: Callable[[], bool], *, timeout: float, what: str, step: float = 0.01) -> None:
    """Wait (real time: processes at work) until ``cond()`` holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    raise TimeoutError(f"timed out waiting for {what}")


def _count(engine: Engine, stmt: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(stmt).one())


def _mirrored(engine: Engine) -> int:
    return _count(engine, select(func.count()).select_from(Route)
                  .where(col(Route.prefect_flow_run_id).is_not(None)))


def _done_steps(engine: Engine) -> int:
    return _count(engine, select(func.count()).select_from(Step).where(
        col(Step.status).in_([StepStatus.answered, StepStatus.absent])))


def _pending_mirror(engine: Engine) -> int:
    return queue.pending_count(engine, [JobKind.mirror_route])


async def _prefect_runs(api: str, route_ids: list[str]
                        ) -> dict[str, tuple[list[FlowRun], list[TaskRun]]]:
    out: dict[str, tuple[list[FlowRun], list[TaskRun]]] = {}
    async with PrefectClient(api=api) as c:
        for rid in route_ids:
            runs = await c.read_flow_runs(flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"route:{rid}"])), limit=10)
            tasks = await c.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[fr.id for fr in runs])), limit=50) if runs else []
            out[rid] = (runs, tasks)
    return out


async def _logs_and_cards(api: str, flow_run_ids: list[str]
                          ) -> dict[str, tuple[list[Log], list[Artifact]]]:
    """Each flow run's log lines and artifacts (the route's card)."""
    out: dict[str, tuple[list[Log], list[Artifact]]] = {}
    async with PrefectClient(api=api) as c:
        for fid in flow_run_ids:
            run = [UUID(fid)]
            logs = await c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=run)))
            cards = await c.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=run)))
            out[fid] = (logs, cards)
    return out


def test_sigkill_prefect_server_and_worker_while_mirroring(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    t0 = time.monotonic()
    rng = random.Random(5)
    server = PrefectServer(home=tmp_path / "prefect",
                           database_url=os.environ.get("REHAB_PREFECT_DATABASE_URL") or None)
    server.start()
    # demo_stack exports PREFECT_API_URL into this process: restored when the test ends
    monkeypatch.setenv("PREFECT_API_URL", server.api_url)
    opts = DemoOptions(persons=0, prefect=True, work_dir=tmp_path / "stack",
                       database_url=db_url, profiles=FAST, worker_name="kill-worker",
                       job_lease_seconds=2.0)  # a restart waits for the old leases
    settings = Settings(environment="test", prefect_mirror=True,
                        prefect_api_url=server.api_url)
    kills = Counter[str]()
    marks: dict[str, float] = {"prefect up": time.monotonic() - t0}
    try:
        with demo_stack(opts, settings) as stack:
            engine: Engine = stack["engine"]
            _sim, _api, worker, mirror = stack["procs"]
            clock = DbClock(engine, ttl=0)
            clock.freeze(pendulum.datetime(2026, 2, 2, 12, tz="Europe/Kaliningrad"))  # Monday
            cfg = EngineConfig(sender_region="39", public_base_url=stack["api_url"],
                               default_ladder=Ladder(1, 2), mirror=True)
            with Session(engine, expire_on_commit=False) as s:
                people = make_persons(s, N_ROUTES, seed=9)
                ids = [register_application(s, cfg, now=clock.now(), person_id=p.id,
                                            template_code="supported_living", template_version=0).id
                       for p in people]
                s.commit()
            http = httpx.Client(timeout=60)
            marks["stack up"] = time.monotonic() - t0

            def day() -> None:
                """One business day: the agencies answer what is due, the worker applies."""
                clock.advance(pendulum.duration(days=1))
                http.post(f"{stack['sim_url']}/_sim/tick",
                          json={"now": clock.now().isoformat()}).raise_for_status()
                wait_idle(engine, timeout=60)

            # 1. kill Prefect's process group and the mirror while it is mirroring
            _poll(lambda: _mirrored(engine) >= 1, timeout=60, what="the first flow run")
            server.kill()
            kills["prefect"] += 1
            time.sleep(rng.uniform(0.0, 0.05))
            mirror.kill()
            kills["mirror"] += 1
            in_flight = _mirrored(engine)
            assert 1 <= in_flight < N_ROUTES, "the kill did not land while mirroring"
            assert _pending_mirror(engine) > 0
            mirror.start()

            # 2. Prefect is dead: the routes go on (answers applied, next requests sent),
            #    the worker killed once more meanwhile
            done_before = _done_steps(engine)
            for i in range(4):
                day()
                if i == 1:
                    time.sleep(rng.uniform(0.0, 0.03))
                    worker.kill()
                    kills["worker"] += 1
                    worker.start()
                    wait_idle(engine, timeout=60)
            marks["down phase"] = time.monotonic() - t0
            assert not server.is_running()
            assert _done_steps(engine) > done_before + N_ROUTES // 2, \
                "routes did not advance while Prefect was down"
            assert _mirrored(engine) == in_flight, "nothing reaches a dead Prefect"
            with Session(engine) as s:
                errors = [j.last_error or "" for j in s.exec(
                    select(Job).where(Job.kind == JobKind.mirror_route))]
            assert errors and any("prefect unavailable" in e for e in errors)

            # 3. Prefect restarted (same port and database); the mirror killed again while
            #    the mirror catches up; the routes finish
            server.start()
            marks["prefect restarted"] = time.monotonic() - t0
            _poll(lambda: _mirrored(engine) > in_flight, timeout=60,
                  what="the mirror to resume after Prefect's restart")
            mirror.kill()
            kills["mirror"] += 1
            mirror.start()
            for _ in range(20):
                with Session(engine) as s:
                    if all(r.status is RouteStatus.completed
                           for r in s.exec(select(Route))):
                        break
                day()
            marks["routes done"] = time.monotonic() - t0
            _poll(lambda: _pending_mirror(engine) == 0, timeout=60, step=0.1,
                  what="the mirror to catch up")
            marks["mirror caught up"] = time.monotonic() - t0
            stats = http.get(f"{stack['sim_url']}/_sim/stats").json()
            http.close()

            found = asyncio.run(_prefect_runs(server.api_url, ids))
            shown = asyncio.run(_logs_and_cards(
                server.api_url, [str(runs[0].id) for runs, _ in found.values() if runs]))
            with Session(engine) as s:
                routes = {r.id: r for r in s.exec(select(Route))}
                steps = list(s.exec(select(Step)))
                requests = list(s.exec(select(AgencyRequest)))
                answers = list(s.exec(select(AgencyAnswer)))
                audit = list(s.exec(select(AuditEvent)))
                persons = list(s.exec(select(Person)))
            views = {rid: load_view(engine, rid) for rid in ids}
    finally:
        server.stop()
    wall = time.monotonic() - t0
    print(f"\nprefect kill test: {N_ROUTES} routes, kills {dict(kills)}, "
          f"{in_flight} flow runs before the kill, wall {wall:.1f} s; "
          + ", ".join(f"{k} at {v:.1f} s" for k, v in marks.items()))

    assert kills == {"prefect": 1, "mirror": 2, "worker": 1}
    # -- Prefect: one flow run per route, one task run per started step, in our states
    assert all(r.status is RouteStatus.completed for r in routes.values())
    personal = [x for p in persons for x in (p.full_name, p.snils, p.birth_date.isoformat(),
                                             p.birth_date.strftime("%d.%m.%Y"))]
    for rid in ids:
        runs, tasks = found[rid]
        assert len(runs) == 1, f"{rid}: {len(runs)} flow runs"
        fr = runs[0]
        view = views[rid]
        assert view is not None
        assert str(fr.id) == routes[rid].prefect_flow_run_id
        assert fr.name == f"route-{rid}" and fr.parameters == {"route_id": rid}
        # completed: no state tag left
        assert set(fr.tags) == {f"route:{rid}", "region:39", "template:supported_living"}
        want = route_state(view)
        assert fr.state is not None
        assert (fr.state.type, fr.state.name, fr.state.message) == \
            (want.type, want.name, want.message)
        started = [st for st in view.steps if st.status is not StepStatus.planned]
        assert len(tasks) == len(started) == 3, f"{rid}: {len(tasks)} task runs"
        by_key = {t.dynamic_key: t for t in tasks}
        assert sorted(by_key) == sorted(st.id for st in started)  # keyed by step id
        for st in started:
            tr = by_key[st.id]
            want_t = step_state(st)
            assert want_t is not None and tr.state is not None
            assert (tr.state.type, tr.state.name, tr.state.message) == \
                (want_t.type, want_t.name, want_t.message)
            assert str(tr.id) == st.task_run_id
        blob = " ".join([fr.name, *fr.tags, str(fr.parameters), fr.state.message or "",
                         *[t.name for t in tasks], *[str(t.task_inputs) for t in tasks],
                         *[t.state.message or "" for t in tasks if t.state]])
        leaked = [x for x in personal if x in blob]
        assert not leaked, f"personal data reached Prefect: route {rid}"
        # -- its card once (updated in place), its log lines once each despite the kills
        logs, cards = shown[str(fr.id)]
        assert len(cards) == 1, f"{rid}: {len(cards)} cards"
        assert str(cards[0].data).splitlines()[0] == want.message
        names = Counter(lg.name for lg in logs)
        assert set(names.values()) == {1}, f"{rid}: lines written twice {names}"
        logged = {f"rehab.audit.{e.id}" for e in audit if e.route_id == rid
                  and (e.entity, e.action) in LOGGED}
        assert set(names) == logged, f"{rid}: lines missing"
        leaked = [x for x in personal
                  if x in " ".join([*(lg.message for lg in logs), str(cards[0].data)])]
        assert not leaked, f"personal data reached Prefect's logs or card: route {rid}"
    # -- no loss, nothing twice
    assert len(steps) == len(requests) == 3 * N_ROUTES
    assert all(st.status in (StepStatus.answered, StepStatus.absent) for st in steps)
    assert stats["distinct_keys"] == len(requests)
    assert stats["deliveries"] >= len(requests)
    moved = [a for a in answers if a.effect is AnswerEffect.moved_route]
    assert len(moved) == len({a.request_id for a in moved}) == len(steps)
    ready = Counter(e.entity_id for e in audit if e.action == "ready")
    answered = Counter(e.entity_id for e in audit
                       if e.entity == "step" and e.action.startswith("answer_"))
    assert set(ready.values()) == {1} and len(ready) == len(steps)
    assert set(answered.values()) == {1} and len(answered) == len(steps)
