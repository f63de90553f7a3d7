"""Prefect shows one flow run per person: named and tagged by identifiers only, the steps
as task runs, the state saying where the route stands. Prefect being down holds no route;
one route's trouble holds no other route; a run deleted in Prefect is created again."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun
from sqlalchemy import Engine, event, text
from sqlmodel import Session, select

from engine.infra import queue
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import (
    AnswerIn,
    EngineConfig,
    apply_answer,
    record_answer,
    register_application,
)
from engine.runtime.sweeper import sweep_due_timers
from engine.runtime.worker import Worker
from engine.staff.accounts import create_staff
from engine.supervisor.actions import close_step
from models.agencies import Agency, AnswerOutcome
from models.jobs import Job, JobKind
from models.mirror import RouteMirror
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import Ladder
from models.timers import EscalationLevel
from models.types import utcnow
from tasks import prefect_mirror as pm
from tasks.prefect_mirror import RouteView, StepView, load_view, reconcile, route_state, step_state
from tests.conftest import kaliningrad
from tests.ladder.conftest import receive_inbox

slow = pytest.mark.slow
MIRROR = EngineConfig(sender_region="39", public_base_url="http://127.0.0.1:9",
                      default_ladder=Ladder(1, 2), mirror=True)


async def _drain(worker: Worker) -> None:
    async with worker:
        while await worker.run_once():
            pass


async def _runs(api: str, route_ids: list[str]) -> dict[str, tuple[list[FlowRun], list[TaskRun]]]:
    async with PrefectClient(api=api) as c:
        out: dict[str, tuple[list[FlowRun], list[TaskRun]]] = {}
        for rid in route_ids:
            runs = await c.read_flow_runs(flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"route:{rid}"])), limit=10)
            tasks: list[TaskRun] = []
            if runs:
                tasks = await c.read_task_runs(flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[fr.id for fr in runs])), limit=50)
            out[rid] = (runs, tasks)
        return out


def _register(db: Engine, clock: DbClock, people: list[Person]) -> list[str]:
    with Session(db, expire_on_commit=False) as s:
        ids = [register_application(s, MIRROR, now=clock.now(), person_id=p.id,
                                    template_code="supported_living", template_version=0).id
               for p in people]
        s.commit()
    for rid in ids:
        receive_inbox(db, clock, MIRROR, rid)  # the agency opens its inbox at once
    return ids


def _answer(db: Engine, clock: DbClock, route_id: str, seq: int, hook: str,
            outcome: AnswerOutcome = AnswerOutcome.provided) -> None:
    """The agency of step ``seq`` answers, and the engine applies it."""
    with Session(db, expire_on_commit=False) as s:
        step = s.exec(select(Step).where(Step.route_id == route_id, Step.seq == seq)).one()
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        ans, _ = record_answer(s, agency=agency, webhook_id=hook, now=clock.now(),
                               answer=AnswerIn(step.current_request_id, outcome, {}, None))
        s.commit()
        assert ans.id is not None
        apply_answer(s, MIRROR, ans.id, now=clock.now())
        s.commit()
    receive_inbox(db, clock, MIRROR, route_id)  # the next agency opens its inbox at once


def _jobs(db: Engine) -> dict[str, Job]:
    with Session(db) as s:
        return {j.ref: j for j in s.exec(select(Job).where(Job.kind == JobKind.mirror_route))}


# --------------------------------------------------------------------------- with Prefect
@slow
def test_one_flow_run_per_person_with_steps_as_task_runs(
    prefect_api: str, db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    settings = Settings(environment="test")
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    ids = _register(db, clock, seeded)
    # Prefect is down: the routes go on, the mirror waits
    down = Worker(db, clock, MIRROR, settings, worker_id="w-down",
                  handlers=[pm.PrefectMirrorHandler("http://127.0.0.1:9/api")])
    asyncio.run(_drain_once(down))
    assert down.stats.mirror_errors >= 1
    # route 0 moves on while Prefect is away
    _answer(db, clock, ids[0], 0, "m1")
    # Prefect is back: the mirror catches up (retry delays are skipped by re-dating them)
    with db.begin() as conn:
        conn.execute(text("UPDATE job SET due_at = created_at"))
    up = Worker(db, clock, MIRROR, settings, worker_id="w-up",
                handlers=[pm.PrefectMirrorHandler(prefect_api)])
    asyncio.run(_drain(up))
    assert up.stats.mirror_errors == 0 and up.stats.mirrored >= 3
    found = asyncio.run(_runs(prefect_api, ids))
    pd = [p.full_name for p in seeded] + [p.snils for p in seeded]
    for rid in ids:
        runs, tasks = found[rid]
        assert len(runs) == 1, rid
        fr = runs[0]
        assert fr.name == f"route-{rid}"
        assert set(fr.tags) >= {f"route:{rid}", "region:39", "template:supported_living"}
        assert fr.parameters == {"route_id": rid}
        assert fr.state is not None
        blob = " ".join([fr.name, *fr.tags, str(fr.parameters), fr.state.message or "",
                         *[t.name for t in tasks],
                         *[t.state.message or "" for t in tasks if t.state]])
        assert not any(x in blob for x in pd), "personal data reached Prefect"
    runs0, tasks0 = found[ids[0]]
    assert runs0[0].state is not None and runs0[0].state.name == "AwaitingAnswer"
    assert "до 19.01.2026" in (runs0[0].state.message or "")
    assert (runs0[0].state.message or "").endswith("шаг 2 из 3")
    assert sorted(str(t.state.name) for t in tasks0 if t.state) == ["Answered", "AwaitingAnswer"]
    runs1, tasks1 = found[ids[1]]
    assert runs1[0].state is not None
    assert "до 19.01.2026" in (runs1[0].state.message or "")
    assert [t.state.name for t in tasks1 if t.state] == ["AwaitingAnswer"]
    with Session(db) as s:
        stored = {r.id: r.prefect_flow_run_id for r in s.exec(select(Route))}
    assert {rid: str(found[rid][0][0].id) for rid in ids} == stored
    assert all(UUID(v) for v in stored.values() if v)


async def _drain_once(worker: Worker) -> None:
    async with worker:
        await worker.run_once()


@slow
def test_a_flow_run_deleted_in_prefect_is_created_again(
    prefect_api: str, db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    """Prefect's database reset (here: the run deleted through its API): the stored ids are
    forgotten and the run is created again with the route's whole history."""
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    [rid] = _register(db, clock, seeded[:1])
    _answer(db, clock, rid, 0, "d1")

    async def go() -> tuple[str, str, int]:
        async with PrefectClient(api=prefect_api) as c:
            await reconcile(c, db, rid)
            with Session(db) as s:
                route = s.get(Route, rid)
                assert route is not None and route.prefect_flow_run_id
                old = route.prefect_flow_run_id
            await c.delete_flow_run(UUID(old))
            _answer(db, clock, rid, 1, "d2")  # a change to mirror, onto a run that is gone
            calls = await reconcile(c, db, rid)
            with Session(db) as s:
                route = s.get(Route, rid)
                assert route is not None and route.prefect_flow_run_id
                return old, route.prefect_flow_run_id, calls

    old, new, calls = asyncio.run(go())
    assert new != old and calls > 0
    runs, tasks = asyncio.run(_runs(prefect_api, [rid]))[rid]
    assert [str(r.id) for r in runs] == [new]
    view = load_view(db, rid)
    assert view is not None
    assert runs[0].state is not None and runs[0].state.message == route_state(view).message
    assert sorted((t.dynamic_key.rsplit("-s", 1)[1], t.state.name) for t in tasks if t.state) == [
        ("0", "Answered"), ("1", "Answered"), ("2", "AwaitingAnswer")]
    with Session(db) as s:
        steps = list(s.exec(select(Step).where(Step.route_id == rid)))
    assert {st.prefect_task_run_id for st in steps if st.prefect_task_run_id} == \
        {str(t.id) for t in tasks}
    # the worker's path: the next change is mirrored without an error
    _answer(db, clock, rid, 2, "d3")
    w = Worker(db, clock, MIRROR, Settings(environment="test"), worker_id="w-del",
               handlers=[pm.PrefectMirrorHandler(prefect_api)])
    asyncio.run(_drain(w))
    assert w.stats.mirror_errors == 0 and w.stats.mirrored == 1
    runs, _ = asyncio.run(_runs(prefect_api, [rid]))[rid]
    assert len(runs) == 1 and runs[0].state is not None
    assert runs[0].state.type is StateType.COMPLETED


class _CountingClient(PrefectClient):
    """Counts flow-run creations (POST /flow_runs/)."""

    creations = 0

    async def request(self, method: Any, path: Any, *args: Any, **kwargs: Any
                      ) -> httpx.Response:
        if method == "POST" and path == "/flow_runs/":
            type(self).creations += 1
        return await super().request(method, path, *args, **kwargs)


@slow
def test_two_reconcilers_racing_create_one_flow_run(
    prefect_api: str, db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    """After a lease expiry two workers may reconcile one route at once: both create its
    flow run, Prefect's idempotency key ``route:<id>`` makes it one run."""
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    [rid] = _register(db, clock, seeded[:1])
    _CountingClient.creations = 0

    async def go() -> None:
        async with _CountingClient(api=prefect_api) as a, _CountingClient(api=prefect_api) as b:
            await asyncio.gather(reconcile(a, db, rid), reconcile(b, db, rid))

    asyncio.run(go())
    assert _CountingClient.creations == 2  # both really tried to create it
    runs, tasks = asyncio.run(_runs(prefect_api, [rid]))[rid]
    assert len(runs) == 1 and len(tasks) == 1
    # a reconciler that created the run but died before storing its id: the same run again
    with db.begin() as conn:
        conn.execute(text("UPDATE route SET prefect_flow_run_id = NULL, prefect_state = NULL"))
        conn.execute(text("UPDATE step SET prefect_task_run_id = NULL, prefect_state = NULL"))
    _answer(db, clock, rid, 0, "r1")

    async def again() -> None:
        async with PrefectClient(api=prefect_api) as c:
            await reconcile(c, db, rid)

    asyncio.run(again())
    runs2, tasks2 = asyncio.run(_runs(prefect_api, [rid]))[rid]
    assert [r.id for r in runs2] == [runs[0].id]
    assert sorted((t.dynamic_key.rsplit("-s", 1)[1], t.state.name)
                  for t in tasks2 if t.state) == [
        ("0", "Answered"), ("1", "AwaitingAnswer")]
    with Session(db) as s:
        route = s.get(Route, rid)
        assert route is not None and route.prefect_flow_run_id == str(runs[0].id)


@slow
def test_overdue_escalated_and_cancelled_routes_show_in_prefect(
    prefect_api: str, db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    """Where the route stands now: overdue and escalated (the ladder's rungs), then
    cancelled by a supervisor; the flow run and the task run say so."""
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    [rid] = _register(db, clock, seeded[:1])
    # answer due 19.01.2026: overdue from 20.01, escalated when 21.01 ends (Ladder(1, 2))
    clock.freeze(kaliningrad(2026, 1, 22, 10, 0))
    sweep_due_timers(db, clock, MIRROR, sweeper_id="t")

    async def mirror() -> None:
        async with PrefectClient(api=prefect_api) as c:
            await reconcile(c, db, rid)

    asyncio.run(mirror())
    [fr], [tr] = asyncio.run(_runs(prefect_api, [rid]))[rid]
    with Session(db) as s:
        agency = s.get(Agency, s.exec(select(Step.agency_id).where(
            Step.route_id == rid, Step.seq == 0)).one())
        assert agency is not None
    text_now = (f"ожидается ответ участника «{agency.short_name}» до 19.01.2026, "
                f"просрочен на 3 раб. дн. (эскалация)")
    assert fr.state is not None and tr.state is not None
    assert (fr.state.name, fr.state.message) == ("Escalated", f"{text_now} — шаг 1 из 3")
    assert (tr.state.type, tr.state.name, tr.state.message) == (
        StateType.PAUSED, "Escalated", text_now)
    # a supervisor cancels the route
    with Session(db, expire_on_commit=False) as s:
        boss, _ = create_staff(s, id="sup1", display_name="Supervisor", role="supervisor",
                               region="39")
        step = s.exec(select(Step).where(Step.route_id == rid, Step.seq == 0)).one()
        close_step(s, MIRROR, staff=boss, step_id=step.id, reason="person withdrew",
                   now=clock.now(), cancel_route=True)
        s.commit()
    asyncio.run(mirror())
    [fr], [tr] = asyncio.run(_runs(prefect_api, [rid]))[rid]
    assert fr.state is not None and tr.state is not None
    assert (fr.state.type, fr.state.name, fr.state.message) == (
        StateType.CANCELLED, "Cancelled", "маршрут отменён куратором после 0 из 3 шагов")
    assert (tr.state.type, tr.state.name) == (StateType.CANCELLED, "Closed")


# --------------------------------------------------------------------------- without Prefect
def _sv(status: StepStatus, *, seq: int = 1, overdue: int | None = None,
        rung: EscalationLevel | None = None, late: int | None = None) -> StepView:
    return StepView(f"rt1-s{seq}", seq, "medical_check", status, "Минздрав",
                    date(2026, 1, 19), date(2026, 1, 13), None, None,
                    overdue_days=overdue, escalation=rung, late_days=late)


STEP_CASES: list[tuple[StepView, StateType, str, str]] = [
    (_sv(StepStatus.sending), StateType.RUNNING, "Sending",
     "запрос участника «Минздрав» направляется, направить до 13.01.2026"),
    (_sv(StepStatus.sending, overdue=1, rung=EscalationLevel.overdue), StateType.RUNNING,
     "SendOverdue",
     "запрос участника «Минздрав» направляется, направить до 13.01.2026, просрочен на 1 раб. "
     "дн. (координатор уведомлён)"),
    (_sv(StepStatus.awaiting), StateType.PAUSED, "AwaitingAnswer",
     "ожидается ответ участника «Минздрав» до 19.01.2026"),
    (_sv(StepStatus.awaiting, overdue=0), StateType.PAUSED, "Overdue",
     "ожидается ответ участника «Минздрав» до 19.01.2026, просрочен"),
    (_sv(StepStatus.awaiting, overdue=1, rung=EscalationLevel.overdue), StateType.PAUSED,
     "Overdue",
     "ожидается ответ участника «Минздрав» до 19.01.2026, просрочен на 1 раб. дн. "
     "(координатор уведомлён)"),
    (_sv(StepStatus.awaiting, overdue=2, rung=EscalationLevel.escalated), StateType.PAUSED,
     "Escalated",
     "ожидается ответ участника «Минздрав» до 19.01.2026, просрочен на 2 раб. дн. (эскалация)"),
    (_sv(StepStatus.needs_clarification), StateType.PAUSED, "NeedsClarification",
     "участник «Минздрав» вернул запрос на уточнение; ожидается уточнённый запрос "
     "координатора"),
    (_sv(StepStatus.answered), StateType.COMPLETED, "Answered", "участник «Минздрав» ответил"),
    (_sv(StepStatus.answered, late=3), StateType.COMPLETED, "Answered",
     "участник «Минздрав» ответил, опоздание 3 раб. дн."),
    (_sv(StepStatus.absent), StateType.COMPLETED, "InformationAbsent",
     "участник «Минздрав» сообщил об отсутствии сведений"),
    (_sv(StepStatus.cancelled), StateType.CANCELLED, "Closed", "шаг закрыт куратором"),
]


@pytest.mark.parametrize(("view", "type_", "name", "message"), STEP_CASES,
                         ids=[f"{c[0].status.value}-{c[2]}-{i}" for i, c in enumerate(STEP_CASES)])
def test_every_step_state_says_where_it_stands(view: StepView, type_: StateType, name: str,
                                               message: str) -> None:
    state = step_state(view)
    assert state is not None
    assert (state.type, state.name, state.message) == (type_, name, message)
    # Russian (coordinators read it), identifiers and agency names only: no Latin letters
    assert not any("a" <= ch.lower() <= "z" for ch in state.message or "")


def test_a_step_never_started_has_no_task_run() -> None:
    assert step_state(_sv(StepStatus.planned)) is None
    closed_unstarted = StepView("rt1-s2", 2, "training", StepStatus.cancelled, "—", None, None,
                                None, None, started=False)  # closed with its route
    assert step_state(closed_unstarted) is None


def _rv(status: RouteStatus, *steps: StepView) -> RouteView:
    return RouteView("rt1", "39", "supported_living", status, None, None, list(steps))


def _steps(*statuses: StepStatus, **current: Any) -> list[StepView]:
    out = []
    for seq, st in enumerate(statuses):
        extra = current if st in (StepStatus.sending, StepStatus.awaiting) else {}
        out.append(_sv(st, seq=seq, **extra))
    return out


ROUTE_CASES: list[tuple[RouteView, StateType, str, str]] = [
    (_rv(RouteStatus.active, *_steps(StepStatus.answered, StepStatus.awaiting,
                                     StepStatus.planned)),
     StateType.RUNNING, "AwaitingAnswer",
     "ожидается ответ участника «Минздрав» до 19.01.2026 — шаг 2 из 3"),
    (_rv(RouteStatus.active, *_steps(StepStatus.answered, StepStatus.awaiting,
                                     StepStatus.planned, overdue=2,
                                     rung=EscalationLevel.escalated)),
     StateType.RUNNING, "Escalated",
     "ожидается ответ участника «Минздрав» до 19.01.2026, просрочен на 2 раб. дн. (эскалация)"
     " — шаг 2 из 3"),
    (_rv(RouteStatus.active, *_steps(StepStatus.sending, StepStatus.planned)),
     StateType.RUNNING, "Sending",
     "запрос участника «Минздрав» направляется, направить до 13.01.2026 — шаг 1 из 2"),
    (_rv(RouteStatus.active, *_steps(StepStatus.absent, StepStatus.needs_clarification)),
     StateType.RUNNING, "NeedsClarification",
     "участник «Минздрав» вернул запрос на уточнение; ожидается уточнённый запрос "
     "координатора — шаг 2 из 2"),
    (_rv(RouteStatus.active, *_steps(StepStatus.answered, StepStatus.planned)),
     StateType.RUNNING, "Running", "переход к следующему шагу"),
    (_rv(RouteStatus.completed, *_steps(StepStatus.answered, StepStatus.absent,
                                        StepStatus.answered)),
     StateType.COMPLETED, "Completed",
     "маршрут завершён: шагов 3, ответов 2, сведений нет 1"),
    (_rv(RouteStatus.completed, *_steps(StepStatus.answered, StepStatus.cancelled)),
     StateType.COMPLETED, "Completed",
     "маршрут завершён: шагов 2, ответов 1, закрыто 1"),
    (_rv(RouteStatus.cancelled, *_steps(StepStatus.answered, StepStatus.cancelled,
                                        StepStatus.cancelled)),
     StateType.CANCELLED, "Cancelled",
     "маршрут отменён куратором после 1 из 3 шагов"),
]


@pytest.mark.parametrize(("view", "type_", "name", "message"), ROUTE_CASES,
                         ids=[c[2] + str(i) for i, c in enumerate(ROUTE_CASES)])
def test_every_route_state_says_where_it_stands(view: RouteView, type_: StateType, name: str,
                                                message: str) -> None:
    state = route_state(view)
    assert (state.type, state.name, state.message) == (type_, name, message)


def test_load_view_counts_overdue_working_days_and_open_rungs(
    db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    [rid] = _register(db, clock, seeded[:1])
    view = load_view(db, rid, clock.now())
    assert view is not None
    assert view.steps[0].status is StepStatus.awaiting
    assert view.steps[0].answer_by_date == date(2026, 1, 19)
    assert view.steps[0].overdue_days is None and view.steps[0].escalation is None
    # Tuesday 20.01: one working day over, the coordinator has been told (rung 1)
    clock.freeze(kaliningrad(2026, 1, 20, 10, 0))
    sweep_due_timers(db, clock, MIRROR, sweeper_id="t")
    view = load_view(db, rid, clock.now())
    assert view is not None
    assert (view.steps[0].overdue_days, view.steps[0].escalation) == (
        1, EscalationLevel.overdue)
    # Saturday 24.01 after the escalation on 21.01: 4 working days (the weekend not counted)
    clock.freeze(kaliningrad(2026, 1, 24, 10, 0))
    sweep_due_timers(db, clock, MIRROR, sweeper_id="t")
    view = load_view(db, rid)  # business time from the clock
    assert view is not None
    assert (view.steps[0].overdue_days, view.steps[0].escalation) == (
        4, EscalationLevel.escalated)
    # the answer comes: the rungs are resolved, the lateness stays on the step
    _answer(db, clock, rid, 0, "late1")
    view = load_view(db, rid, clock.now())
    assert view is not None
    assert view.steps[0].escalation is None and view.steps[0].late_days == 4
    answered = step_state(view.steps[0])
    assert answered is not None and answered.name == "Answered"
    assert (answered.message or "").endswith(" ответил, опоздание 4 раб. дн.")


def _worker(db: Engine, clock: DbClock, name: str) -> Worker:
    # a URL nobody serves: the client is created, reconcile is replaced in these tests
    return Worker(db, clock, MIRROR, Settings(environment="test"), worker_id=name,
                  handlers=[pm.PrefectMirrorHandler("http://127.0.0.1:9/api")])


async def _mirror_batch(w: Worker) -> int:
    """One pass of the worker's mirror handler."""
    return await w.handlers[0].run_once(w, None)


def test_one_routes_error_backs_off_only_that_route(
    db: Engine, clock: DbClock, seeded: list[Person], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _register(db, clock, seeded)
    bad = ids[1]
    seen: list[str] = []

    async def fake(client: Any, engine: Engine, route_id: str, **kw: Any) -> int:
        seen.append(route_id)
        if route_id == bad:
            raise ValueError("this route's data is wrong")
        return 1

    monkeypatch.setattr(pm, "reconcile", fake)
    w = _worker(db, clock, "w-one")
    before = queue.pending_count(db, [JobKind.mirror_route])

    async def go() -> int:
        async with w:
            return await _mirror_batch(w)

    assert asyncio.run(go()) == before == 3
    assert sorted(seen) == sorted(ids)
    left = _jobs(db)
    assert list(left) == [bad], "the others were mirrored and finished"
    job = left[bad]
    assert job.locked_by is None and "ValueError" in (job.last_error or "")
    assert job.due_at.replace(tzinfo=None) > (
        utcnow() + timedelta(seconds=pm.ERROR_BACKOFF_BASE_SECONDS / 2)
    ).replace(tzinfo=None)
    assert w.stats.mirrored == 2 and w.stats.mirror_errors == 1
    assert w.handlers[0].down_until == 0.0, "one route's error is not Prefect being down"


def test_a_failed_routes_job_is_released_only_after_its_pass_is_recorded(
    db: Engine, clock: DbClock, seeded: list[Person], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A route that fails after reaching Prefect (log lines written, then the card failed)
    has what its pass showed recorded before its job is released for the retry: another
    worker's later pass of it is never overwritten by this one's recording."""
    ids = _register(db, clock, seeded)
    bad = ids[1]
    events: list[str] = []

    async def fake(client: Any, engine: Engine, route_id: str, **kw: Any) -> int:
        kw["batch"].add(route_id, [], {"log_through": 7})  # what reached Prefect
        if route_id == bad:
            raise ValueError("the card failed")
        return 1

    store = pm.MirrorBatch.store

    def recorded(self: pm.MirrorBatch, engine: Engine) -> int:
        events.append("stored " + ",".join(sorted(self.routes)))
        return store(self, engine)

    retry = Worker.retry_job

    def released(self: Worker, job: queue.ClaimedJob, error: str, **kw: Any) -> None:
        events.append(f"retry {job.ref}")
        retry(self, job, error, **kw)

    monkeypatch.setattr(pm, "reconcile", fake)
    monkeypatch.setattr(pm.MirrorBatch, "store", recorded)
    monkeypatch.setattr(Worker, "retry_job", released)
    w = _worker(db, clock, "w-order")

    async def go() -> int:
        async with w:
            return await _mirror_batch(w)

    assert asyncio.run(go()) == 3
    assert events == ["stored " + ",".join(sorted(ids)), f"retry {bad}"]
    assert list(_jobs(db)) == [bad]


def test_a_batch_records_its_routes_in_ascending_route_id_order(
    db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    """The ``route_mirror`` rows of a batch are written in route id order across statements
    (rows with the same columns share a statement only when consecutive): two overlapping
    batches never lock them in opposite orders (a deadlock on PostgreSQL aborts the batch)."""
    a, b, c = sorted(_register(db, clock, seeded))
    written: list[str] = []

    @event.listens_for(db, "before_cursor_execute")
    def upserts(_conn: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
        if "INSERT INTO route_mirror" in statement:  # the row's values, in order
            values = params.values() if isinstance(params, dict) else params
            written.extend(v for v in values if v in (a, b, c))

    try:
        assert pm._store(db, [], shown=[(c, {"log_through": 2}), (a, {"log_through": 1}),
                                         (b, {"tags": "x"})]) == 3
    finally:
        event.remove(db, "before_cursor_execute", upserts)
    assert written == [a, b, c]
    with Session(db) as s:
        assert {m.route_id: (m.log_through, m.tags) for m in s.exec(select(RouteMirror))} \
            == {a: (1, None), b: (0, "x"), c: (2, None)}


def test_prefect_down_backs_off_the_whole_batch(
    db: Engine, clock: DbClock, seeded: list[Person], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _register(db, clock, seeded)
    calls: list[str] = []

    async def fake(client: Any, engine: Engine, route_id: str, **kw: Any) -> int:
        calls.append(route_id)
        if len(calls) > 1:
            raise httpx.ConnectError("connection refused")
        return 1

    monkeypatch.setattr(pm, "reconcile", fake)
    w = _worker(db, clock, "w-down")

    async def go() -> tuple[int, int]:
        async with w:
            first = await _mirror_batch(w)
            return first, await _mirror_batch(w)  # Prefect is left alone meanwhile

    first, second = asyncio.run(go())
    assert (first, second) == (3, 0)
    assert len(calls) == 2, "after the connection error no other route was tried"
    left = _jobs(db)
    assert len(left) == 2 and calls[0] not in left
    assert set(left) == set(ids) - {calls[0]}
    for job in left.values():
        assert job.locked_by is None and "prefect unavailable" in (job.last_error or "")
        assert job.due_at.replace(tzinfo=None) > (
            utcnow() + timedelta(seconds=pm.DOWN_RETRY_SECONDS / 2)).replace(tzinfo=None)
    assert w.stats.mirrored == 1 and w.handlers[0].client is None


def test_the_mirror_yields_to_core_work_after_its_time_slice(
    db: Engine, clock: DbClock, seeded: list[Person], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _register(db, clock, seeded)
    seen: list[str] = []

    async def fake(client: Any, engine: Engine, route_id: str, **kw: Any) -> int:
        seen.append(route_id)
        return 1

    monkeypatch.setattr(pm, "reconcile", fake)
    monkeypatch.setattr(pm, "SLICE_SECONDS", 0.0)
    w = _worker(db, clock, "w-slice")

    async def go() -> None:
        async with w:
            await _mirror_batch(w)

    asyncio.run(go())
    assert len(seen) == pm.CONCURRENCY
    left = _jobs(db)
    assert set(left) == set(ids) - set(seen)
    # released, due now: the next pass takes them
    assert all(j.locked_by is None and j.due_at.replace(tzinfo=None)
               <= utcnow().replace(tzinfo=None) for j in left.values())
    asyncio.run(go())
    assert len(seen) == len(set(seen)) == min(len(ids), 2 * pm.CONCURRENCY)


def test_prefect_unavailable_tells_outage_from_one_routes_error() -> None:
    req = httpx.Request("POST", "http://127.0.0.1:9/api/flow_runs/")

    def status(code: int) -> httpx.HTTPStatusError:
        return httpx.HTTPStatusError("x", request=req, response=httpx.Response(code, request=req))

    assert pm.prefect_unavailable(httpx.ConnectError("refused"))
    assert pm.prefect_unavailable(httpx.ReadTimeout("slow"))
    assert pm.prefect_unavailable(TimeoutError())
    assert pm.prefect_unavailable(status(503)) and pm.prefect_unavailable(status(502))
    assert not pm.prefect_unavailable(status(404))
    assert not pm.prefect_unavailable(status(409))
    assert not pm.prefect_unavailable(status(500))
    assert not pm.prefect_unavailable(ValueError("bad data"))


def test_routes_in_every_state_are_mirrored_to_completion_states(
    db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    """A completed route (answered + absent steps) reads as completed with its counts."""
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    [rid] = _register(db, clock, seeded[:1])
    _answer(db, clock, rid, 0, "c1")
    _answer(db, clock, rid, 1, "c2", AnswerOutcome.absent)
    _answer(db, clock, rid, 2, "c3")
    view = load_view(db, rid)
    assert view is not None and view.status is RouteStatus.completed
    state = route_state(view)
    assert (state.type, state.name, state.message) == (
        StateType.COMPLETED, "Completed",
        "маршрут завершён: шагов 3, ответов 2, сведений нет 1")


def test_the_worker_makes_one_attempt_per_prefect_call() -> None:
    """Prefect's client retries a refused connection for up to a minute (2+4+8+16+32 s) once
    it has connected before; inside the mirror it makes one attempt (the queue retries)."""
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES

    default = PREFECT_CLIENT_MAX_RETRIES.value()
    assert default > 0
    with pm.no_client_retries():
        assert PREFECT_CLIENT_MAX_RETRIES.value() == 0

        async def inside() -> int:  # tasks started inside inherit it
            return int(PREFECT_CLIENT_MAX_RETRIES.value())

        assert asyncio.run(inside()) == 0
    assert PREFECT_CLIENT_MAX_RETRIES.value() == default


def test_a_busy_prefect_is_asked_again_shortly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's SQLite server answers 503 when its write lock is taken: the call is repeated
    after short waits, then it counts as Prefect being unavailable."""
    from prefect.exceptions import PrefectHTTPStatusError

    monkeypatch.setattr(pm, "BUSY_ATTEMPTS", 4)
    monkeypatch.setattr(pm, "BUSY_BACKOFF_BASE_SECONDS", 0.001)
    req = httpx.Request("POST", "http://127.0.0.1:9/api/flow_runs/")
    answers = [503, 503, 200]

    async def call() -> str:
        code = answers.pop(0)
        if code != 200:
            raise PrefectHTTPStatusError("busy", request=req,
                                         response=httpx.Response(code, request=req))
        return "ok"

    calls = [0]
    assert asyncio.run(pm._call(call, calls)) == "ok" and calls == [3]
    answers[:] = [503] * 10
    calls = [0]
    with pytest.raises(PrefectHTTPStatusError) as err:
        asyncio.run(pm._call(call, calls))
    assert calls == [4] and pm.prefect_unavailable(err.value)
    answers[:] = [404]
    calls = [0]
    with pytest.raises(PrefectHTTPStatusError):
        asyncio.run(pm._call(call, calls))
    assert calls == [1], "only 503 is asked again"


def test_a_recurring_check_between_occurrences_shows_as_open() -> None:
    """001 Регламент п.6 пп.8: the health check answered, its next occurrence scheduled —
    the step is Scheduled (not Completed) and the route says it is open beside the others."""
    check = StepView("rt1-s2", 2, "health_monitoring", StepStatus.answered, "Минздрав",
                     date(2026, 1, 19), date(2026, 1, 13), None, None,
                     next_check=date(2026, 4, 8))
    state = step_state(check)
    assert state is not None
    assert (state.type, state.name, state.message) == (
        StateType.SCHEDULED, "NextCheck",
        "участник «Минздрав» ответил; следующая проверка 08.04.2026")
    view = _rv(RouteStatus.active, _sv(StepStatus.answered, seq=0),
               _sv(StepStatus.awaiting, seq=1), check)
    route = route_state(view)
    assert route.message == (
        "открыто шагов: 2 из 3 — шаг 2 «сведения о здоровье»: ожидается ответ участника "
        "«Минздрав» до 19.01.2026; "
        "шаг 3 «мониторинг здоровья»: участник «Минздрав» ответил; следующая проверка "
        "08.04.2026")
