"""The pages' world: a Kaliningrad installation with inbox agencies, staff who sign in with
passwords (one per role, an agency user, a coordinator of another region), two routes — one
escalated — and the app; a uvicorn server on a free port and one Chromium per session for
the browser tests."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.receipt import confirm_receipt
from engine.routes.transitions import (
    AnswerIn,
    EngineConfig,
    apply_answer,
    record_answer,
    register_application,
)
from engine.runtime.sweeper import sweep_due_timers
from engine.staff.accounts import create_staff
from models.agencies import Agency, AnswerOutcome
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Step
from models.staff import StaffRole
from tests.conftest import kaliningrad

PASSWORD = "correct horse battery"
ARTIFACTS = Path(os.environ.get("REHAB_TEST_ARTIFACTS", "test-artifacts")) / "pages"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


@dataclass
class World:
    db: Engine
    clock: DbClock
    cfg: EngineConfig
    app: FastAPI
    escalated_route: str  # silent agency: reminder, overdue and escalation open
    fresh_route: str  # its first request waits in the agency's inbox, on time
    fresh_agency: str
    other_region_route: str
    persons: list[Person]


def _route(s: Session, cfg: EngineConfig, clock: DbClock, person: Person,
           region: str = "39", received: bool = True) -> str:
    """A route; ``received``: its inbox agency received the first request at once (the
    answer period starts, 298-п Порядок п.11), else it waits in the inbox unopened."""
    route = register_application(s, cfg, now=clock.now(), person_id=person.id,
                                 template_code="supported_living", template_version=0,
                                 region=region, coordinator_id=None)
    s.commit()
    if received:
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
        opened_in_inbox(s, cfg, clock, step.current_request_id)
    return route.id


def opened_in_inbox(s: Session, cfg: EngineConfig, clock: DbClock,
                    request_id: str | None) -> None:
    """The inbox agency opens the request now (its answer period starts: 298-п Порядок
    п.11); committed."""
    assert request_id is not None
    confirm_receipt(s, cfg, request_id=request_id, now=clock.now(),
                    actor="test:agency-opened-inbox")
    s.commit()


def answer_step(world: World, route_id: str, *where: Any) -> None:
    """The agency of the route's step matching ``where`` answers it (provided), and the
    answer is applied."""
    with Session(world.db, expire_on_commit=False) as s:
        step = s.exec(select(Step).where(Step.route_id == route_id, *where)).one()
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        ans, _ = record_answer(s, agency=agency, webhook_id=f"hook-{route_id}",
                               now=world.clock.now(),
                               answer=AnswerIn(step.current_request_id,
                                               AnswerOutcome.provided, {}, None))
        s.commit()
        assert ans.id is not None
        apply_answer(s, world.cfg, ans.id, now=world.clock.now())
        s.commit()


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD's argon2id hash, computed once (each hash costs ~0.5 s by design)."""
    from engine.staff.passwords import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def world(db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
          password_hash: str) -> World:
    from sim.seed import seed_agencies

    with Session(db, expire_on_commit=False) as s:
        seed_agencies(s, region="16")
        s.commit()
        escalated = _route(s, cfg, clock, seeded[0])
    clock.freeze(kaliningrad(2025, 3, 13, 10, 0))
    sweep_due_timers(db, clock, cfg, sweeper_id="t")
    with Session(db, expire_on_commit=False) as s:
        p16 = s.get(Person, seeded[2].id)
        assert p16 is not None
        p16.region = "16"
        s.add(p16)
        s.commit()
        fresh = _route(s, cfg, clock, seeded[1], received=False)
        other = _route(s, cfg, clock, seeded[2], region="16")
        step = s.exec(select(Step).where(Step.route_id == fresh, Step.seq == 0)).one()
        assert step.agency_id is not None
        for sid, role, region, agency in (
            ("coord39", StaffRole.coordinator, "39", None),
            ("sup39", StaffRole.supervisor, "39", None),
            ("coord16", StaffRole.coordinator, "16", None),
            ("admin", StaffRole.admin, "39", None),
            ("agency39", StaffRole.agency, "39", step.agency_id),
        ):
            user, _ = create_staff(s, id=sid, display_name=f"Сотрудник {sid}", role=role,
                                   region=region, agency_id=agency)
            user.password_hash = password_hash
            s.add(user)
        s.commit()
        agency_id = step.agency_id
    app = create_app(db, settings=Settings(prefect_mirror=False), clock=clock)
    app.state.cfg = cfg
    return World(db=db, clock=clock, cfg=cfg, app=app, escalated_route=escalated,
                 fresh_route=fresh, fresh_agency=agency_id, other_region_route=other,
                 persons=seeded)


def sign_in_client(app: FastAPI, account: str, password: str = PASSWORD) -> TestClient:
    c = TestClient(app, follow_redirects=False)
    c.get("/login")
    r = c.post("/login", data={"account": account, "password": password,
                               "csrf_token": c.cookies.get("rehab_login_csrf", "")})
    assert r.status_code == 303, r.text
    return c


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    i = html.index(marker) + len(marker)
    return html[i:html.index('"', i)]


# ------------------------------------------------------------------------------ the browser
def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the browser tests' module; Playwright's sync API holds an event loop
    in this thread while it runs, so it is stopped before other modules' tests."""
    path = chromium_path()
    if path is None:  # scripts/test installs Debian's chromium; a bare pytest may lack it
        if os.environ.get("REHAB_REQUIRE_BROWSER"):  # CI: the browser tests must run
            pytest.fail("chromium is not installed and REHAB_REQUIRE_BROWSER is set")
        pytest.skip("chromium is not installed (scripts/test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(world: World) -> Iterator[str]:
    """The app served by uvicorn in a thread on a free loopback port."""
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port,
                                        log_level="warning", lifespan="off"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started:  # start-up, not business time: the server's own readiness
        if time.monotonic() > deadline or not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


@pytest.fixture
def pages(browser: Any, server: str) -> Iterator[Any]:
    """A new browser context per test (its own cookies), at a phone-and-desk width."""
    ctx = browser.new_context(base_url=server, viewport={"width": 1100, "height": 900},
                              locale="ru-RU")
    yield ctx
    ctx.close()


def audit_of(world: World, **where: Any) -> list[AuditEvent]:
    """The audit records whose columns equal ``where``, oldest first."""
    with Session(world.db) as s:
        q = select(AuditEvent)
        for k, v in where.items():
            q = q.where(getattr(AuditEvent, k) == v)
        return list(s.exec(q.order_by(col(AuditEvent.id))))
