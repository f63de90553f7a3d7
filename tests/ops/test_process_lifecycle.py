"""Processes start and stop as an operator expects (issue 13): `rehab migrate` says what it
did; a worker stopped with SIGTERM gives back its leases and says it stopped; logs as JSON
lines on request, with no secret in the start line; production refuses plain http."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app as cli_app
from engine.agencies.participants import list_agencies, set_endpoint
from engine.errors import EngineError
from engine.infra import process_log as logs
from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.infra.settings import PROJECT_ROOT, Settings, get_settings
from engine.routes.transitions import EngineConfig, register_application
from models.heartbeats import ProcessBeat
from models.jobs import Job
from models.persons import Person

ROOT = PROJECT_ROOT


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_migrate_says_what_it_did(cli_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    (head,) = ScriptDirectory(str(ROOT / "migrations")).get_heads()
    cli_env.setenv("REHAB_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    first = CliRunner().invoke(cli_app, ["migrate"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == f"schema created at {head}"
    again = CliRunner().invoke(cli_app, ["migrate"])
    assert again.output.strip() == f"schema already current at {head}"
    # an older database is upgraded, from → to
    from alembic import command
    from alembic.config import Config

    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    eng = make_engine(old_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    eng.dispose()
    cli_env.setenv("REHAB_DATABASE_URL", old_url)
    get_settings.cache_clear()
    up = CliRunner().invoke(cli_app, ["migrate"])
    assert up.output.strip() == f"schema upgraded from 0005 to {head}"


def test_json_logs_and_a_start_line_without_secrets() -> None:
    out = io.StringIO()
    s = Settings(environment="test", log_format="json",
                 database_url="postgresql+psycopg://rehab:s3cr3t-pw@db/rehab",
                 admin_token="adm-very-secret")
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level
                                               for n in ("rehab", *logs.QUIET)})
    logs.configure(s, stream=out)
    try:
        logs.started("worker", s, worker_id="w-1")
        logging.getLogger("httpx").info("HTTP Request: POST ... 200")  # quieted
        logging.getLogger("rehab.worker").debug("not at INFO")
        lines = [json.loads(x) for x in out.getvalue().splitlines()]
    finally:  # the test run's own handlers back (never one bound to a closed stream)
        handlers, level, levels = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lv in levels.items():
            logging.getLogger(name).setLevel(lv)
    assert len(lines) == 1
    (line,) = lines
    assert line["level"] == "INFO" and line["logger"] == "rehab.process"
    assert line["event"] == "start" and line["worker_id"] == "w-1"
    assert line["database"] == "postgresql+psycopg://rehab:***@db/rehab"
    assert "s3cr3t-pw" not in out.getvalue() and "adm-very-secret" not in out.getvalue()


def test_production_refuses_plain_http(monkeypatch: pytest.MonkeyPatch, db: Engine,
                                       seeded: list[Person]) -> None:
    prod = {"environment": "production", "allow_clock_control": False,
            "admin_token": "a-real-admin-token", "database_url": "postgresql+psycopg://x@db/r"}
    with pytest.raises(ValueError, match="public_base_url: must be https://"):
        Settings(**prod, public_base_url="http://rehab.example")
    for k, v in {**prod, "public_base_url": "https://rehab.example"}.items():
        monkeypatch.setenv(f"REHAB_{k.upper()}", str(v))
    get_settings.cache_clear()
    try:
        with Session(db) as s:
            agency = list_agencies(s)[0]
            with pytest.raises(EngineError, match="endpoint_url: must be https:// in production"):
                set_endpoint(s, agency.id, "http://agency.example/hook")
            set_endpoint(s, agency.id, "https://agency.example/hook")
            monkeypatch.setenv("REHAB_ALLOW_HTTP_AGENCY_ENDPOINTS", "true")
            get_settings.cache_clear()
            set_endpoint(s, agency.id, "http://agency.example/hook")
    finally:
        get_settings.cache_clear()


def test_worker_stops_on_sigterm_giving_back_its_leases(
        db_url: str, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        tmp_path: Path) -> None:
    """The worker sends to an agency that takes the connection and never answers; SIGTERM
    while the sends are on the wire: it stops claiming, the in-flight sends end (their
    timeout), the leases still held are given back, and the heartbeat says it stopped."""
    silent = socket.socket()  # listens, never accepts: each request waits for its timeout
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    with Session(db, expire_on_commit=False) as s:
        for agency in list_agencies(s):
            set_endpoint(s, agency.id, f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
        s.flush()
        for p in seeded:
            register_application(s, cfg, now=clock.now(), person_id=p.id,
                                 template_code="supported_living", template_version=0)
        s.commit()
    env = {**os.environ, "REHAB_DATABASE_URL": db_url, "REHAB_ENVIRONMENT": "test",
           "REHAB_PREFECT_MIRROR": "false", "REHAB_SEND_TIMEOUT_SECONDS": "2",
           "REHAB_HEARTBEAT_SECONDS": "0.2", "REHAB_JOB_LEASE_SECONDS": "600"}
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--name", "w-t"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60  # real time: a process starting up
            held = 0
            while time.monotonic() < deadline and held == 0:
                assert proc.poll() is None, log_path.read_text()[-2000:]
                with Session(db) as s:
                    beat = s.get(ProcessBeat, "w-t")
                    held = beat.holding if beat else 0
                time.sleep(0.1)
            assert held > 0, log_path.read_text()[-2000:]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    silent.close()
    text = log_path.read_text()
    assert "worker started:" in text and "worker stopped:" in text, text[-2000:]
    with Session(db) as s:
        beat = s.get(ProcessBeat, "w-t")
        assert beat is not None and beat.stopped_at is not None and beat.holding == 0
        assert [j for j in s.exec(select(Job)) if j.locked_by == "w-t"] == []
    for p in seeded:  # no personal data in the worker's log
        assert p.snils not in text and p.full_name not in text




def test_the_configuration_reference_is_in_step_with_the_settings() -> None:
    from ops.config_reference import render_reference

    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == render_reference(), "run: rehab config-reference > docs/configuration.md"
    for name in Settings.model_fields:
        assert f"`REHAB_{name.upper()}`" in doc
    assert "a-real" not in doc and "change-me" not in doc  # secrets never shown
