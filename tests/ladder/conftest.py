"""Fixtures of the ladder tests: staff users, routes, a sweep helper, the supervisor app."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import install_error_handlers
from api.supervisor import history_router, router
from engine.infra.clock import DbClock
from engine.infra.queue import pending_count
from engine.infra.settings import Settings
from engine.routes.receipt import confirm_receipt, steps_awaiting_receipt
from engine.routes.transitions import EngineConfig, register_application
from engine.runtime.sweeper import SweepResult, sweep_due_timers
from engine.runtime.worker import Worker
from engine.staff.accounts import create_staff
from models.agencies import Agency, AgencyRequest, AgencyRole
from models.audit import AuditEvent
from models.jobs import JobKind
from models.persons import Person
from models.routes import Route, Step
from models.staff import StaffRole
from models.timers import Escalation
from sim.seed import make_secret
from tasks.signing import verify


@dataclass(frozen=True)
class Staff:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def staff(db: Engine, seeded: list[Person]) -> dict[str, Staff]:
    """coord39 (with e-mail), sup39 (with e-mail), sup16 (another region), admin."""
    out: dict[str, Staff] = {}
    with Session(db) as s:
        for sid, role, region, email in (
            ("coord39", StaffRole.coordinator, "39", "coord39@example.org"),
            ("sup39", StaffRole.supervisor, "39", "sup39@example.org"),
            ("sup16", StaffRole.supervisor, "16", None),
            ("coord16", StaffRole.coordinator, "16", None),
            ("admin", StaffRole.admin, "39", None),
        ):
            _user, token = create_staff(s, id=sid, display_name=sid, role=role, region=region,
                                        email=email)
            out[sid] = Staff(sid, token)
        s.commit()
    return out


def new_route(db: Engine, clock: DbClock, cfg: EngineConfig, person: Person, *,
              template: str = "supported_living", coordinator_id: str | None = "coord39",
              at: datetime | None = None, receive: bool = True, template_version: int = 0,
              **kw: Any) -> str:
    """Register a route (the engine's mechanics: version 0, the built-in three-step
    template, unless ``template_version`` names a data file); with ``receive`` its inbox
    agencies receive the first requests at once (the agency opens its inbox: the answer
    period starts, 298-п Порядок п.11)."""
    if at is not None:
        clock.freeze(at)
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=person.id,
                                     template_code=template, coordinator_id=coordinator_id,
                                     template_version=template_version, **kw)
        s.commit()
    if receive:
        receive_inbox(db, clock, cfg, route.id)
    return route.id


def receive_inbox(db: Engine, clock: DbClock, cfg: EngineConfig, route_id: str) -> int:
    """The route's requests lying in inbox agencies' inboxes are received now (as when
    the agency opens them, ``engine.routes.receipt``); how many."""
    with Session(db, expire_on_commit=False) as s:
        rows = list(s.exec(select(Step).where(Step.route_id == route_id)))
        waiting = steps_awaiting_receipt(s, [x.id for x in rows])
        for x in rows:
            if x.id in waiting and x.current_request_id:
                confirm_receipt(s, cfg, request_id=x.current_request_id, now=clock.now(),
                                actor="test:agency-opened-inbox")
        s.commit()
    return len(waiting)


def receive_request(db: Engine, clock: DbClock, cfg: EngineConfig,
                    step: Step) -> dict[str, object]:
    """The agency opens the step's request in its inbox now (the answer period starts,
    298-п Порядок п.11); the request's body."""
    with Session(db, expire_on_commit=False) as s:
        confirm_receipt(s, cfg, request_id=step.current_request_id or "", now=clock.now(),
                        actor="test")
        s.commit()
        req = s.get(AgencyRequest, step.current_request_id)
        assert req is not None
        return dict(req.body)


def sweep(db: Engine, clock: DbClock, cfg: EngineConfig, **kw: object) -> SweepResult:
    return sweep_due_timers(db, clock, cfg, sweeper_id="t", **kw)  # type: ignore[arg-type]


def escalations(db: Engine, route_id: str) -> list[Escalation]:
    with Session(db) as s:
        return list(s.exec(select(Escalation).where(Escalation.route_id == route_id)
                           .order_by(col(Escalation.id))))


def route_of(db: Engine, route_id: str) -> Route:
    with Session(db) as s:
        r = s.get(Route, route_id)
        assert r is not None
        return r


@pytest.fixture
def client(db: Engine, clock: DbClock, cfg: EngineConfig) -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(history_router)
    app.state.engine = db
    app.state.clock = clock
    app.state.cfg = cfg
    with TestClient(app) as c:
        yield c


# ------------------------------------------------------------------ an agency's HTTP endpoint
@dataclass
class Received:
    """One POST an agency endpoint received (signature verified against its secret)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class AgencyEndpoint:
    """A real HTTP server on loopback standing for agencies' systems: records each verified
    POST and answers with the next status of ``statuses[agency id]`` (then 202)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets  # agency id -> secret
        self.received: list[Received] = []
        self.statuses: dict[str, list[int]] = {}
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                agency = self.path.rstrip("/").split("/")[-1]
                verify([endpoint.secrets[agency]], dict(self.headers.items()), raw)
                endpoint.received.append(Received(self.path, dict(self.headers.items()),
                                                  json.loads(raw)))
                queue = endpoint.statuses.get(agency) or []
                code = queue.pop(0) if queue else 202
                self.send_response(code)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def to(self, agency_id: str) -> list[Received]:
        return [r for r in self.received if r.path.endswith(f"/{agency_id}")]

    def url(self, agency_id: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/agencies/{agency_id}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(db: Engine, seeded: list[Person]) -> Iterator[AgencyEndpoint]:
    """The region-39 agencies msp39 and msp39b (a second provider of the same service) on
    HTTP at a local endpoint."""
    with Session(db) as s:
        if s.get(Agency, "msp39b") is None:
            s.add(Agency(id="msp39b", name="Второй участник", short_name="Минсоц-2",
                         role=AgencyRole.social_policy, region="39",
                         secret_current=make_secret("msp39b")))
        s.flush()
        ep = AgencyEndpoint({a: make_secret(a) for a in ("msp39", "msp39b")})
        for aid in ("msp39", "msp39b"):
            agency = s.get(Agency, aid)
            assert agency is not None
            agency.endpoint_url = ep.url(aid)
            s.add(agency)
        s.commit()
    try:
        yield ep
    finally:
        ep.close()


def worker_settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(var_dir=tmp_path, prefect_mirror=False, send_backoff_base_seconds=0.01,
                    send_backoff_max_seconds=0.05, **kw)


def run_worker(db: Engine, clock: DbClock, cfg: EngineConfig, settings: Settings, *,
               passes: int = 20) -> Worker:
    """Run a worker until no route job is left (retries come due after a few ms of real
    time) or ``passes`` passes are done; return it."""
    kinds = [JobKind.send_request, JobKind.apply_answer, JobKind.send_cancel]

    async def go() -> Worker:
        async with Worker(db, clock, cfg, settings, worker_id="test-worker") as w:
            for _ in range(passes):
                if not await w.run_once():
                    if not pending_count(db, kinds):
                        break
                    await asyncio.sleep(0.02)
        return w

    return asyncio.run(go())


def step_of(db: Engine, route_id: str, seq: int = 0) -> Step:
    with Session(db) as s:
        return s.exec(select(Step).where(Step.route_id == route_id, Step.seq == seq)).one()


def audits(db: Engine, *, action: str | None = None, entity: str | None = None,
           route_id: str | None = None) -> list[AuditEvent]:
    with Session(db) as s:
        q = select(AuditEvent)
        if action is not None:
            q = q.where(AuditEvent.action == action)
        if entity is not None:
            q = q.where(AuditEvent.entity == entity)
        if route_id is not None:
            q = q.where(AuditEvent.route_id == route_id)
        return list(s.exec(q.order_by(col(AuditEvent.id))))
