"""Dead jobs: a job retried past its maximum is shown to supervisors (HTTP) and operators
(``rehab jobs``), and an operator can retry it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app
from engine.infra import queue
from engine.infra.settings import get_settings
from models.jobs import JobKind
from tests.ladder.conftest import Staff

runner = CliRunner()


def _kill(db: Engine, kind: JobKind, ref: str) -> int:
    with Session(db) as s:
        queue.enqueue(s, kind, ref)
        s.commit()
    (job,) = queue.claim(db, "w", kinds=[kind], limit=1, lease_seconds=30, refs=[ref])
    assert queue.retry_later(db, job, delay_seconds=1, error="HTTP 503", max_attempts=1) \
        == "dead"
    return job.id


@pytest.fixture
def cli_db(db_url: str, db: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def test_supervisors_see_dead_jobs(db: Engine, client: TestClient,
                                   staff: dict[str, Staff]) -> None:
    dead = _kill(db, JobKind.send_request, "tk_dead")
    _kill(db, JobKind.mirror_route, "rt_dead")
    with Session(db) as s:
        queue.enqueue(s, JobKind.send_request, "tk_alive")
        s.commit()
    r = client.get("/api/supervisor/jobs/dead", params={"kind": "send_request"},
                   headers=staff["sup39"].headers)
    assert r.status_code == 200, r.text
    (job,) = r.json()
    assert job["id"] == dead and job["ref"] == "tk_dead" and job["state"] == "dead"
    assert job["attempts"] == 1 and job["last_error"] == "HTTP 503"
    assert len(client.get("/api/supervisor/jobs/dead", headers=staff["admin"].headers)
               .json()) == 2
    assert client.get("/api/supervisor/jobs/dead",
                      headers=staff["coord39"].headers).status_code == 403
    bad = client.get("/api/supervisor/jobs/dead", params={"kind": "nope"},
                     headers=staff["sup39"].headers)
    assert bad.status_code == 422 and "kind" in bad.text


def test_rehab_jobs_lists_shows_and_retries(cli_db: Engine) -> None:
    dead = _kill(cli_db, JobKind.send_cancel, "tk_1:cancel")
    with Session(cli_db) as s:
        queue.enqueue(s, JobKind.apply_answer, "7")
        s.commit()
    out = runner.invoke(app, ["jobs", "list"])
    assert out.exit_code == 0, out.output
    (line,) = out.output.splitlines()
    assert json.loads(line)["ref"] == "tk_1:cancel"
    pending = runner.invoke(app, ["jobs", "list", "--pending", "--kind", "apply_answer"])
    assert [json.loads(x)["ref"] for x in pending.output.splitlines()] == ["7"]
    shown = runner.invoke(app, ["jobs", "show", str(dead)])
    assert json.loads(shown.output)["state"] == "dead"
    assert runner.invoke(app, ["jobs", "show", "999"]).exit_code == 2
    again = runner.invoke(app, ["jobs", "retry", str(dead)])
    assert again.exit_code == 0 and "is due again" in again.output
    refused = runner.invoke(app, ["jobs", "retry", str(dead)])
    assert refused.exit_code == 2 and "job_id: job" in refused.output
    assert queue.list_jobs(cli_db, dead=True) == []
