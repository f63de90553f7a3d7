"""The signed examples in docs/agencies.md work against a live API (copy-paste safe)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.app import create_app
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from models.agencies import AgencyAnswer
from models.persons import Person
from models.routes import Step
from sim.seed import make_secret
from tasks.processes import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "agencies.md"


def block(lang: str) -> str:
    m = re.search(rf"```{lang}\n(.*?)```", DOC.read_text().split("## Example")[1 if lang ==
                  "bash" else 2], re.S)
    assert m, lang
    return m.group(1)


@pytest.fixture
def live(db: Engine, clock: DbClock) -> Iterator[str]:
    port = free_port()
    app = create_app(db, settings=Settings(environment="test", prefect_mirror=False),
                     clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        t.join(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(10)


@pytest.mark.parametrize("lang", ["bash", "python"])
def test_documented_example_is_accepted(lang: str, live: str, db: Engine, clock: DbClock,
                                        cfg: EngineConfig, seeded: list[Person]) -> None:
    if lang == "bash" and not (shutil.which("openssl") and shutil.which("curl")):
        pytest.skip("openssl/curl not installed")
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
    env = {**os.environ, "BASE": live, "AGENCY": step.agency_id or "",
           "SECRET": make_secret(step.agency_id or ""), "TASK": step.current_request_id or ""}
    cmd = ["bash", "-c", block("bash")] if lang == "bash" else [sys.executable, "-c",
                                                                  block("python")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "accepted" in out.stdout, out.stdout
    with Session(db) as s:
        assert len(s.exec(select(AgencyAnswer)).all()) == 1
