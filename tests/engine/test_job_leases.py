"""Fenced leases, dead jobs, worker identity, failures that stay alone, and an event loop that
the database never blocks (issue 9, "Correctness"; issue 13, attempts in the history)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra import queue
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes import transitions as routes
from engine.routes.transitions import AnswerIn, EngineConfig, record_answer, register_application
from engine.runtime.worker import Worker, default_worker_id
from models.agencies import Agency, AgencyRequest, AnswerOutcome, RequestState
from models.audit import AuditEvent
from models.jobs import Job, JobKind
from models.persons import Person
from models.routes import Step, StepStatus
from tests.engine.test_worker_pipeline import SlowAgency, two_routes, worker_in_thread


def _enqueue(db: Engine, kind: JobKind = JobKind.apply_answer, ref: str = "1") -> None:
    with Session(db) as s:
        queue.enqueue(s, kind, ref)
        s.commit()


def _job(db: Engine) -> Job:
    with Session(db) as s:
        return s.exec(select(Job)).one()


# ------------------------------------------------------------------ fenced leases
def test_finish_and_retry_act_only_for_the_lease_holder(db: Engine) -> None:
    _enqueue(db)
    (a,) = queue.claim(db, "w-a", kinds=[JobKind.apply_answer], limit=1, lease_seconds=-1)
    # a's lease ran out (a hung); b takes the job
    (b,) = queue.claim(db, "w-b", kinds=[JobKind.apply_answer], limit=1, lease_seconds=30)
    assert a.id == b.id and a.token != b.token
    with Session(db) as s:
        assert queue.finish(s, a) is False  # a changes nothing
        s.commit()
    assert queue.retry_later(db, a, delay_seconds=60, error="late") == "lost"
    job = _job(db)
    assert job.locked_by == "w-b" and job.lease_token == b.token and job.last_error is None
    with Session(db) as s:
        assert queue.finish(s, b) is True
        s.commit()
    with Session(db) as s:
        assert s.exec(select(Job)).first() is None


def test_finishing_a_batch_at_once_is_fenced_job_by_job(db: Engine) -> None:
    for ref in ("held", "again", "taken"):
        _enqueue(db, ref=ref)
    jobs = {j.ref: j for j in queue.claim(db, "w-a", kinds=[JobKind.apply_answer], limit=3,
                                         lease_seconds=30)}
    _enqueue(db, ref="again")  # re-enqueued while held: a new generation, done again later
    with db.begin() as conn:  # "taken": a's lease ran out and b holds it now
        conn.exec_driver_sql("UPDATE job SET locked_until = NULL WHERE ref = 'taken'")
    (b,) = queue.claim(db, "w-b", kinds=[JobKind.apply_answer], limit=1, lease_seconds=30,
                       refs=["taken"])
    with Session(db) as s:
        lost = queue.finish_many(s, list(jobs.values()))
        s.commit()
    assert [j.ref for j in lost] == ["taken"]
    with Session(db) as s:
        left = {j.ref: j for j in s.exec(select(Job))}
    assert set(left) == {"again", "taken"}
    assert left["again"].locked_by is None and left["again"].generation == 1
    assert left["taken"].locked_by == "w-b" and left["taken"].lease_token == b.token


def test_the_same_name_claiming_again_is_fenced_too(db: Engine) -> None:
    _enqueue(db)
    (old,) = queue.claim(db, "w", kinds=[JobKind.apply_answer], limit=1, lease_seconds=-1)
    (new,) = queue.claim(db, "w", kinds=[JobKind.apply_answer], limit=1, lease_seconds=30)
    with Session(db) as s:
        assert queue.finish(s, old) is False
        s.commit()
    assert _job(db).lease_token == new.token


def test_renew_extends_only_leases_still_held(db: Engine) -> None:
    _enqueue(db, ref="1")
    _enqueue(db, ref="2")
    jobs = queue.claim(db, "w", kinds=[JobKind.apply_answer], limit=2, lease_seconds=-1)
    queue.claim(db, "other", kinds=[JobKind.apply_answer], limit=1, lease_seconds=30,
                refs=[jobs[0].ref])
    assert queue.renew(db, jobs, lease_seconds=30) == 1


def test_a_job_retried_past_its_maximum_goes_dead_and_can_be_revived(db: Engine) -> None:
    _enqueue(db, JobKind.send_request, "tk_x")
    for attempt in (1, 2, 3):
        (job,) = queue.claim(db, "w", kinds=[JobKind.send_request], limit=1, lease_seconds=30)
        assert job.attempts == attempt
        outcome = queue.retry_later(db, job, delay_seconds=-1, error="HTTP 503",
                                    max_attempts=3)
        assert outcome == ("dead" if attempt == 3 else "retry")
    assert queue.claim(db, "w", kinds=[JobKind.send_request], limit=1, lease_seconds=30) == []
    assert queue.pending_count(db) == 0
    (dead,) = queue.list_jobs(db, dead=True, kind=JobKind.send_request)
    assert dead.ref == "tk_x" and dead.attempts == 3 and dead.last_error == "HTTP 503"
    assert dead.as_dict()["state"] == "dead"
    assert queue.list_jobs(db, dead=False) == []
    with pytest.raises(ValueError, match="job_id: no job 999"):
        queue.revive(db, 999)
    queue.revive(db, dead.id)
    with pytest.raises(ValueError, match="is not dead"):
        queue.revive(db, dead.id)
    (again,) = queue.claim(db, "w", kinds=[JobKind.send_request], limit=1, lease_seconds=30)
    assert again.attempts == 1


def test_deferred_work_is_not_counted_against_the_maximum(db: Engine) -> None:
    _enqueue(db, JobKind.mirror_route, "rt_1")
    for _ in range(5):  # Prefect down five times: no attempt of the route's own
        (job,) = queue.claim(db, "w", kinds=[JobKind.mirror_route], limit=1, lease_seconds=30)
        assert queue.retry_later(db, job, delay_seconds=-1, error="prefect down",
                                 max_attempts=2, count_attempt=False) == "retry"
    assert _job(db).attempts == 0 and _job(db).dead_at is None


# ------------------------------------------------------------------ worker identity
def test_default_worker_names_are_unique_across_hosts_and_containers() -> None:
    a, b = default_worker_id(), default_worker_id()
    assert a != b and a.startswith(f"{socket.gethostname()}-")
    assert not a.startswith("worker-")


def test_starting_a_worker_frees_no_lease_a_live_worker_holds(
        db: Engine, clock: DbClock, cfg: EngineConfig, tmp_path: Any) -> None:
    _enqueue(db, JobKind.apply_answer, "12345")
    (held,) = queue.claim(db, "same-name", kinds=[JobKind.apply_answer], limit=1,
                          lease_seconds=300)
    settings = Settings(var_dir=tmp_path, prefect_mirror=False)

    async def go() -> int:
        async with Worker(db, clock, cfg, settings, worker_id="same-name") as w:
            return await w.run_once()

    assert asyncio.run(go()) == 0
    job = _job(db)
    assert job.locked_by == "same-name" and job.lease_token == held.token


# ------------------------------------------------------------------ failures stay alone
@pytest.fixture
def http_routes(db: Engine, clock: DbClock, cfg: EngineConfig,
                seeded: list[Person]) -> list[AgencyRequest]:
    """Two routes whose first requests go out over HTTP."""
    with Session(db, expire_on_commit=False) as s:
        for a in s.exec(select(Agency)):
            a.endpoint_url = f"http://agency.test/{a.id}"
            s.add(a)
        s.flush()
        out = []
        for person in seeded[:2]:
            route = register_application(s, cfg, now=clock.now(), person_id=person.id,
                                         template_code="supported_living", template_version=0)
            s.flush()
            step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
            req = s.get(AgencyRequest, step.current_request_id)
            assert req is not None
            out.append(req)
        s.commit()
        return out


def _worker_run(db: Engine, clock: DbClock, cfg: EngineConfig, handler: Any,
                settings: Settings | None = None) -> Worker:
    settings = settings or Settings(environment="test", prefect_mirror=False)
    worker: list[Worker] = []

    async def go() -> None:
        async with Worker(db, clock, cfg, settings, worker_id="t") as w:
            assert w._http is not None
            await w._http.aclose()
            w._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
            await w.run_once()
            worker.append(w)

    asyncio.run(go())
    return worker[0]


def test_one_failing_outcome_of_a_send_batch_fails_alone(
        db: Engine, clock: DbClock, cfg: EngineConfig, http_routes: list[AgencyRequest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    bad, good = http_routes
    real = routes.mark_delivered

    def flaky(session: Session, cfg: EngineConfig, req: AgencyRequest, **kw: Any) -> None:
        if req.id == bad.id:
            raise RuntimeError("disk full")
        real(session, cfg, req, **kw)

    monkeypatch.setattr(routes, "mark_delivered", flaky)
    w = _worker_run(db, clock, cfg, lambda _r: httpx.Response(202))
    assert w.stats.item_errors == 1 and w.stats.sent == 1
    with Session(db) as s:
        ok = s.get(AgencyRequest, good.id)
        failed = s.get(AgencyRequest, bad.id)
        assert ok is not None and ok.state is RequestState.delivered
        assert failed is not None and failed.state is RequestState.queued
        job = s.exec(select(Job).where(Job.ref == bad.id)).one()
        assert job.locked_by is None and job.last_error == "RuntimeError: disk full"


def test_a_send_recorded_after_its_lease_was_taken_over_changes_nothing(
        db: Engine, clock: DbClock, cfg: EngineConfig, http_routes: list[AgencyRequest]
) -> None:
    first = http_routes[0]

    def handler(request: httpx.Request) -> httpx.Response:
        # while this worker's request is on the wire its lease ends; another takes the job
        with db.begin() as conn:
            conn.exec_driver_sql("UPDATE job SET locked_until = NULL")
        queue.claim(db, "other", kinds=[JobKind.send_request], limit=10, lease_seconds=300)
        return httpx.Response(202)

    w = _worker_run(db, clock, cfg, handler)
    assert w.stats.lease_lost == 2 and w.stats.sent == 0
    with Session(db) as s:
        req = s.get(AgencyRequest, first.id)
        assert req is not None and req.state is RequestState.queued  # the holder records it
        assert req.attempts == 1  # but the attempt is counted


def test_a_batch_with_one_lease_lost_records_the_other_send(
        db: Engine, clock: DbClock, cfg: EngineConfig, http_routes: list[AgencyRequest]
) -> None:
    first, second = http_routes

    def handler(request: httpx.Request) -> httpx.Response:
        if first.id in request.content.decode():  # only the first one's lease is taken
            with db.begin() as conn:
                conn.exec_driver_sql(
                    f"UPDATE job SET locked_until = NULL WHERE ref = '{first.id}'")
            queue.claim(db, "other", kinds=[JobKind.send_request], limit=10,
                        lease_seconds=300, refs=[first.id])
        return httpx.Response(202)

    w = _worker_run(db, clock, cfg, handler)
    assert w.stats.lease_lost == 1 and w.stats.sent == 1
    with Session(db) as s:
        lost = s.get(AgencyRequest, first.id)
        sent = s.get(AgencyRequest, second.id)
        assert lost is not None and lost.state is RequestState.queued  # its holder records it
        assert sent is not None and sent.state is RequestState.delivered
        assert s.exec(select(Job).where(Job.ref == second.id)).first() is None
        assert s.exec(select(Job).where(Job.ref == first.id)).one().locked_by == "other"


def test_the_history_counts_a_resend_after_a_lease_expired(
        db: Engine, clock: DbClock, cfg: EngineConfig, http_routes: list[AgencyRequest]
) -> None:
    req = http_routes[0]
    # a worker claims the send, counts its attempt, POSTs — and is killed before recording
    (job,) = queue.claim(db, "killed", kinds=[JobKind.send_request], limit=1,
                         lease_seconds=-1, refs=[req.id])
    gone = Worker(db, clock, cfg, Settings(prefect_mirror=False), worker_id="killed")
    gone._prepare_sends([job])
    _worker_run(db, clock, cfg, lambda _r: httpx.Response(202))
    with Session(db) as s:
        fresh = s.get(AgencyRequest, req.id)
        assert fresh is not None and fresh.state is RequestState.delivered
        assert fresh.attempts == 2
        delivered = s.exec(select(AuditEvent).where(AuditEvent.entity_id == req.id,
                                                    AuditEvent.action == "delivered")).one()
        assert delivered.after is not None and delivered.after["attempts"] == 2


def test_a_background_task_that_fails_is_logged_and_counted(
        db: Engine, clock: DbClock, cfg: EngineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    w = Worker(db, clock, cfg, Settings(prefect_mirror=False), worker_id="bg")

    async def boom() -> None:
        raise RuntimeError("lost?")

    async def go() -> None:
        tasks: set[asyncio.Task[None]] = set()
        w._spawn(tasks, boom(), "send batch")
        while tasks:
            await asyncio.sleep(0)

    asyncio.run(go())
    assert w.stats.background_errors == 1
    assert "send batch failed: RuntimeError: lost?" in caplog.text


# ------------------------------------------------------------------ the event loop
@pytest.fixture
def slow_agency() -> Iterator[SlowAgency]:
    agency = SlowAgency()
    yield agency
    agency.close()


def test_a_send_completes_while_a_database_call_is_blocked(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        slow_agency: SlowAgency, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    step_a, step_b = two_routes(db, clock, cfg, seeded, slow_agency)

    blocked, unblock, send_done = threading.Event(), threading.Event(), threading.Event()
    real_apply = routes.apply_answer

    def slow_apply(*args: Any, **kw: Any) -> Any:
        blocked.set()  # a slow FOR UPDATE, say
        unblock.wait(20)
        return real_apply(*args, **kw)

    import engine.runtime.worker as worker_mod

    real_send = worker_mod.send_request

    async def watched_send(*args: Any, **kw: Any) -> Any:
        result = await real_send(*args, **kw)
        send_done.set()
        return result

    monkeypatch.setattr(routes, "apply_answer", slow_apply)
    monkeypatch.setattr(worker_mod, "send_request", watched_send)
    settings = Settings(var_dir=tmp_path, prefect_mirror=False, send_timeout_seconds=30,
                        worker_idle_poll_seconds=0.01)
    with worker_in_thread(db, clock, cfg, settings, "loop"):
        try:
            assert slow_agency.arrived.wait(15), "route A's request never went out"
            with Session(db) as s:  # route B's answer: its application blocks in the database
                agency = s.get(Agency, step_b.agency_id)
                assert agency is not None
                record_answer(s, agency=agency, webhook_id="b-1", now=clock.now(),
                              answer=AnswerIn(step_b.current_request_id or "",
                                              AnswerOutcome.provided, {}, None))
                s.commit()
            assert blocked.wait(15), "the worker never applied route B's answer"
            slow_agency.release.set()
            assert send_done.wait(10), "the send waited for the blocked database call"
            assert not unblock.is_set()
        finally:
            unblock.set()
            slow_agency.release.set()
    with Session(db) as s:
        step = s.get(Step, step_a.id)
        assert step is not None and step.status is StepStatus.awaiting


# ------------------------------------------------------------------ personal data
def test_a_request_stores_identifiers_and_is_sent_with_the_subject(
        db: Engine, clock: DbClock, cfg: EngineConfig, http_routes: list[AgencyRequest],
        seeded: list[Person]) -> None:
    req = http_routes[0]
    person = seeded[0]
    with Session(db) as s:
        stored = s.get(AgencyRequest, req.id)
        assert stored is not None
        raw = str(stored.body)
    assert "subject" not in stored.body
    assert person.snils not in raw and person.full_name not in raw
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(503 if len(seen) <= 2 else 202)

    _worker_run(db, clock, cfg, handler)  # both requests refused (503): retried later
    with db.begin() as conn:
        conn.exec_driver_sql("UPDATE job SET due_at = created_at")
    _worker_run(db, clock, cfg, handler)
    mine = [c for c in seen if req.id.encode() in c]
    assert len(mine) == 2 and mine[0] == mine[1]  # the resend: the same bytes
    import json

    body = json.loads(mine[0])
    assert body["subject"] == {"snils": person.snils, "full_name": person.full_name,
                               "birth_date": person.birth_date.isoformat()}


def test_a_long_send_renews_its_lease(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        slow_agency: SlowAgency, tmp_path: Any) -> None:
    """Leases are real time; this one is made short (1.5 s) and the agency holds the request
    for several of them: no other worker (nor this one) can take the job meanwhile."""
    with Session(db, expire_on_commit=False) as s:
        msp = s.get(Agency, "msp39")
        assert msp is not None
        msp.endpoint_url = slow_agency.url
        s.add(msp)
        s.commit()
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
    settings = Settings(var_dir=tmp_path, prefect_mirror=False, job_lease_seconds=1.5,
                        send_timeout_seconds=30, worker_idle_poll_seconds=0.01)
    with worker_in_thread(db, clock, cfg, settings, "long") as workers:
        try:
            assert slow_agency.arrived.wait(15)
            taken: list[queue.ClaimedJob] = []
            for _ in range(10):  # ~5 s of real time: more than three leases' worth
                slow_agency.release.wait(0.5)
                taken += queue.claim(db, "other", kinds=[JobKind.send_request], limit=1,
                                     lease_seconds=30)
            assert taken == [], "another worker took a job whose send was still on the wire"
            slow_agency.release.set()
            end = threading.Event()
            for _ in range(300):
                with Session(db) as s:
                    st = s.get(Step, step.id)
                    if st is not None and st.status is StepStatus.awaiting:
                        break
                end.wait(0.05)
            assert workers[0].stats.sent == 1 and workers[0].stats.lease_lost == 0
        finally:
            slow_agency.release.set()
