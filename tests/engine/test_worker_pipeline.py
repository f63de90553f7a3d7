"""The worker is a pipeline: while an agency is slow to take a request, the answers of other
routes are applied (a slow agency holds up no other route)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import AnswerIn, EngineConfig, record_answer, register_application
from engine.runtime.worker import Worker
from models.agencies import Agency, AgencyRequest, AnswerOutcome, RequestState
from models.persons import Person
from models.routes import Step, StepStatus


class SlowAgency:
    """An agency's system that takes a request only when ``release`` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.arrived.set()
                outer.release.wait(60)
                self.send_response(202)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/requests"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_agency() -> Iterator[SlowAgency]:
    agency = SlowAgency()
    yield agency
    agency.close()


def _until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait (real time: processes at work, not business time) until ``check()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting until {what}")


def two_routes(db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
               slow_agency: SlowAgency) -> tuple[Step, Step]:
    """Route B's first request delivered to msp39's inbox; then msp39 takes requests over HTTP
    from ``slow_agency`` and route A's first request waits to be sent there. (step A, step B)"""
    a, b = seeded[0], seeded[1]
    with Session(db, expire_on_commit=False) as s:
        route_b = register_application(s, cfg, now=clock.now(), person_id=b.id,
                                       template_code="supported_living", template_version=0)
        s.commit()
        step_b = s.exec(select(Step).where(Step.route_id == route_b.id, Step.seq == 0)).one()
        msp = s.get(Agency, "msp39")
        assert msp is not None
        msp.endpoint_url = slow_agency.url  # from now on msp39 takes requests over HTTP
        s.add(msp)
        s.commit()
        route_a = register_application(s, cfg, now=clock.now(), person_id=a.id,
                                       template_code="supported_living", template_version=0)
        s.commit()
        step_a = s.exec(select(Step).where(Step.route_id == route_a.id, Step.seq == 0)).one()
    return step_a, step_b


@contextmanager
def worker_in_thread(db: Engine, clock: DbClock, cfg: EngineConfig, settings: Settings,
                     worker_id: str) -> Iterator[list[Worker]]:
    """A worker's loop in a thread of its own (yields [the worker] once it has started it),
    stopped and joined on exit."""
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    workers: list[Worker] = []

    async def work() -> None:
        async with Worker(db, clock, cfg, settings, worker_id=worker_id) as w:
            workers.append(w)
            await w.run(stop)

    thread = threading.Thread(target=loop.run_until_complete, args=(work(),), daemon=True)
    thread.start()
    try:
        yield workers
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def test_a_slow_agency_holds_up_no_other_route(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        slow_agency: SlowAgency, tmp_path: Path) -> None:
    step_a, step_b = two_routes(db, clock, cfg, seeded, slow_agency)
    settings = Settings(var_dir=tmp_path, prefect_mirror=False, send_timeout_seconds=60,
                        worker_idle_poll_seconds=0.01)
    with worker_in_thread(db, clock, cfg, settings, "pipe"):
        try:
            assert slow_agency.arrived.wait(15), "the worker never sent route A's request"
            # route A's request is on the wire, held by the agency; route B's answer arrives
            with Session(db) as s:
                agency = s.get(Agency, step_b.agency_id)
                assert agency is not None
                record_answer(s, agency=agency, webhook_id="b-1", now=clock.now(),
                              answer=AnswerIn(step_b.current_request_id or "",
                                              AnswerOutcome.provided, {}, None))
                s.commit()

            def b_moved() -> bool:
                with Session(db) as s:
                    step = s.get(Step, step_b.id)
                    return step is not None and step.status is StepStatus.answered

            _until("route B's answer is applied", b_moved)
            with Session(db) as s:
                req_a = s.get(AgencyRequest, step_a.current_request_id)
                assert req_a is not None and req_a.state is RequestState.queued  # still held
            slow_agency.release.set()

            def a_delivered() -> bool:
                with Session(db) as s:
                    step = s.get(Step, step_a.id)
                    return step is not None and step.status is StepStatus.awaiting

            _until("route A's request is recorded as delivered", a_delivered)
        finally:
            slow_agency.release.set()


def test_answers_are_applied_one_per_transaction_on_postgresql(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of answers in one transaction takes a step's lock while holding a route's:
    two workers could deadlock on PostgreSQL, so more than one is refused there at start-up,
    naming the field; SQLite (one writer at a time) may batch."""
    pg = "postgresql+psycopg://root@127.0.0.1:5432/rehab"
    with pytest.raises(ValueError, match="worker_txn_answers: must be 1 on PostgreSQL"):
        Settings(database_url=pg, worker_txn_answers=2)
    monkeypatch.setenv("REHAB_DATABASE_URL", pg)
    monkeypatch.setenv("REHAB_WORKER_TXN_ANSWERS", "8")
    with pytest.raises(ValueError, match="worker_txn_answers"):
        Settings()
    assert Settings(database_url=pg, worker_txn_answers=1).worker_txn_answers == 1
    assert Settings(database_url="sqlite:///x.db", worker_txn_answers=8).worker_txn_answers == 8
