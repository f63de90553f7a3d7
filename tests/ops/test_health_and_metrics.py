"""Liveness, readiness, metrics, heartbeats and request ids (issue 13)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from api.app import create_app
from engine.agencies.participants import list_agencies, set_endpoint
from engine.infra import heartbeats, queue
from engine.infra.clock import DbClock
from engine.infra.db import make_engine
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from engine.runtime.sweeper import sweep_due_timers
from engine.staff.accounts import create_staff
from models.audit import AuditEvent
from models.heartbeats import ProcessBeat, ProcessKind
from models.jobs import JobKind
from models.persons import Person
from ops import readiness
from tests.conftest import kaliningrad

ADMIN = "adm-7c1f0e9b2a"
SETTINGS = Settings(environment="test", prefect_mirror=False, admin_token=ADMIN)


def client(db: Engine, clock: DbClock, settings: Settings = SETTINGS) -> TestClient:
    return TestClient(create_app(db, settings=settings, clock=clock))


@pytest.fixture
def route_id(db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> str:
    """A route whose first request waits to be sent (its agency has an endpoint)."""
    with Session(db, expire_on_commit=False) as s:
        for agency in list_agencies(s):
            set_endpoint(s, agency.id, "http://127.0.0.1:9/hook")
        s.flush()
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
    return route.id


def metric(body: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (fails if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "{}")[1:-1].split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    raise AssertionError(f"{name}{{{want}}} not in /metrics")


# ------------------------------------------------------------------ liveness and readiness
def test_live_answers_without_the_database(clock: DbClock, db: Engine) -> None:
    c = client(db, clock)
    assert c.get("/health/live").json() == {"status": "ok"}
    assert c.get("/health").json() == {"status": "ok"}


def test_ready_when_database_and_schema_are(db: Engine, clock: DbClock) -> None:
    r = client(db, clock).get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["schema"]["ok"]
    assert body["checks"]["prefect"] == {"ok": True, "required": False, "detail": "mirror off"}
    # no worker beats yet: reported, not required
    assert body["checks"]["processes"]["ok"] is False
    assert body["checks"]["processes"]["detail"] == "no worker beating"


def test_not_ready_on_an_unmigrated_database(tmp_path: Path) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    result = readiness.check(empty, SETTINGS)
    assert not result.ready
    assert result.checks["schema"]["ok"] is False
    assert "rehab migrate" in result.checks["schema"]["detail"]
    empty.dispose()


def test_not_ready_on_an_unreachable_database() -> None:
    gone = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = readiness.check(gone, SETTINGS)
    assert not result.ready and result.checks["database"]["ok"] is False
    assert set(result.checks) == {"database"}
    gone.dispose()


def test_production_readiness_requires_the_real_clock(db: Engine, clock: DbClock) -> None:
    prod = Settings(environment="production", allow_clock_control=False, admin_token=ADMIN,
                    public_base_url="https://rehab.example",
                    database_url="postgresql+psycopg://rehab@db/rehab", prefect_mirror=False)
    result = readiness.check(db, prod)  # the fixture's clock is frozen in 2025
    assert not result.ready
    assert result.checks["clock"]["ok"] is False
    assert "frozen at" in result.checks["clock"]["detail"]
    with db.begin() as conn:
        conn.execute(text("UPDATE clock_state SET frozen_at = NULL, offset_seconds = 0"))
    assert readiness.check(db, prod).ready


def test_readiness_reports_an_unreachable_prefect_without_failing(db: Engine) -> None:
    s = Settings(environment="test", prefect_mirror=True, prefect_api_url="http://127.0.0.1:9/api")
    result = readiness.check(db, s, prefect_timeout=0.5)
    assert result.ready
    assert result.checks["prefect"]["ok"] is False and not result.checks["prefect"]["required"]


# ------------------------------------------------------------------ heartbeats
def test_heartbeats_show_what_a_worker_holds_and_when_it_stopped(
        db: Engine, clock: DbClock, route_id: str) -> None:
    heartbeats.register(db, "w-1", ProcessKind.worker)
    claimed = queue.claim(db, "w-1", kinds=[JobKind.send_request], limit=10,
                          lease_seconds=60)
    assert claimed
    assert heartbeats.beat(db, "w-1", {"sent": 3, "beat_interval_seconds": 10}) == len(claimed)
    (view,) = heartbeats.read_beats(db)
    assert (view.process_id, view.kind, view.holding) == ("w-1", "worker", len(claimed))
    assert view.counters["sent"] == 3 and view.stopped_at is None
    ready = readiness.check(db, SETTINGS)
    assert ready.checks["processes"]["ok"] is True
    # a clean stop gives the leases back and says so
    assert queue.release_held(db, "w-1") == len(claimed)
    assert queue.release_held(db, "w-other") == 0
    heartbeats.stopped(db, "w-1", {"sent": 3})
    assert heartbeats.read_beats(db) == []
    (stopped,) = heartbeats.read_beats(db, include_stopped=True)
    assert stopped.stopped_at is not None and stopped.holding == 0
    # the released jobs are claimable at once by another worker
    assert len(queue.claim(db, "w-2", kinds=[JobKind.send_request], limit=10,
                           lease_seconds=60)) == len(claimed)


def test_a_silent_worker_is_reported_after_three_missed_beats(db: Engine) -> None:
    heartbeats.register(db, "w-old", ProcessKind.worker)
    heartbeats.beat(db, "w-old", {"beat_interval_seconds": 10})
    with Session(db) as s:  # its last beat 31 s ago: three beats of 10 s missed
        row = s.get(ProcessBeat, "w-old")
        assert row is not None
        row.beat_at -= timedelta(seconds=31)
        s.add(row)
        s.commit()
    (proc,) = readiness.check(db, SETTINGS).checks["processes"]["processes"]
    assert proc["silent"] is True and proc["last_beat_seconds_ago"] >= 31


# ------------------------------------------------------------------ metrics
def test_metrics_count_jobs_timers_escalations_and_processes(
        db: Engine, clock: DbClock, cfg: EngineConfig, route_id: str,
        seeded: list[Person]) -> None:
    c = client(db, clock)
    body = c.get("/metrics").text
    assert metric(body, "rehab_jobs_pending", kind="send_request") == 1
    assert metric(body, "rehab_timers_due") == 0
    assert metric(body, "rehab_mirror_lag_seconds") == 0
    # the request is not sent for weeks: its timers come due, the sweeper fires them and the
    # ladder opens escalations
    clock.freeze(kaliningrad(2025, 3, 20, 12, 0))
    body = c.get("/metrics").text
    assert metric(body, "rehab_timers_due") >= 1
    assert metric(body, "rehab_timers_overdue") >= 1
    sweep_due_timers(db, clock, cfg, sweeper_id="s-1")
    heartbeats.register(db, "s-1", ProcessKind.sweeper)
    heartbeats.beat(db, "s-1", {"fired": 4, "beat_interval_seconds": 60})
    heartbeats.register(db, "w-1", ProcessKind.worker)
    heartbeats.beat(db, "w-1", {"sent": 7, "answers_applied": 5})
    body = c.get("/metrics").text
    assert metric(body, "rehab_timers_due") == 0
    levels = [metric(body, "rehab_escalations_open", level=str(n)) for n in (1, 2)
              if f'rehab_escalations_open{{level="{n}"}}' in body]
    assert levels and sum(levels) >= 1
    assert metric(body, "rehab_timers_fired_total", process="s-1") == 4
    assert metric(body, "rehab_transitions_total", process="w-1", kind="request_sent") == 7
    assert metric(body, "rehab_transitions_total", process="w-1", kind="answer_applied") == 5
    assert metric(body, "rehab_process_last_beat_seconds", kind="worker", process="w-1") < 60
    # no label carries a route, person or request id
    with Session(db) as s:
        ids = [route_id, *(p.id for p in seeded), *(p.snils for p in seeded)]
        ids += [r for (r,) in s.execute(text("SELECT id FROM agency_request"))]
    assert not [i for i in ids if i in body]


def test_dead_jobs_and_the_oldest_due_job_are_measured(db: Engine, clock: DbClock,
                                                      route_id: str) -> None:
    with db.begin() as conn:
        conn.execute(text("UPDATE job SET due_at = :at"), {
            "at": "2020-01-01 00:00:00" if db.dialect.name == "sqlite"
            else kaliningrad(2020, 1, 1, 2, 0)})
    body = client(db, clock).get("/metrics").text
    assert metric(body, "rehab_jobs_oldest_due_seconds", kind="send_request") > 86_400 * 365
    with db.begin() as conn:
        conn.execute(text("UPDATE job SET dead_at = due_at"))
    body = client(db, clock).get("/metrics").text
    assert metric(body, "rehab_jobs_dead", kind="send_request") == 1


def test_webhook_refusals_are_counted_and_timed(db: Engine, clock: DbClock,
                                               seeded: list[Person]) -> None:
    c = client(db, clock)
    before = c.get("/metrics").text
    n0 = (metric(before, "rehab_answers_received_total", outcome="unknown",
                 result="refused_401")
          if 'result="refused_401"' in before else 0.0)
    with Session(db) as s:
        agency_id = list_agencies(s)[0].id
    r = c.post(f"/webhooks/agencies/{agency_id}", content=b"{}",
               headers={"content-type": "application/json"})
    assert r.status_code == 401
    after = c.get("/metrics").text
    assert metric(after, "rehab_answers_received_total", outcome="unknown",
                  result="refused_401") == n0 + 1
    assert metric(after, "rehab_webhook_seconds_count", code="401") >= 1


# ------------------------------------------------------------------ request ids
def test_request_ids_are_returned_logged_and_kept_with_the_audit_record(
        db: Engine, clock: DbClock, caplog: pytest.LogCaptureFixture) -> None:
    c = client(db, clock)
    with caplog.at_level("INFO", logger="rehab.api.access"):
        r = c.post("/api/clock/advance", json={"working_days": 1},
                   headers={"Authorization": f"Bearer {ADMIN}", "X-Request-ID": "req-42.a"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "req-42.a"
    line = next(rec for rec in caplog.records if rec.name == "rehab.api.access")
    assert line.getMessage().startswith("POST /api/clock/advance 200 ")
    assert "request_id=req-42.a" in line.getMessage()
    with Session(db) as s:
        rec = s.exec(select(AuditEvent).where(AuditEvent.entity == "clock")
                     .order_by(col(AuditEvent.id).desc())).first()
    assert rec is not None and rec.request_id == "req-42.a"
    # an id that is not a short token is replaced, never echoed
    r = c.get("/health/live", headers={"X-Request-ID": "<script>" * 3})
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])


def test_the_access_log_never_writes_the_query_string(
        db: Engine, clock: DbClock, caplog: pytest.LogCaptureFixture) -> None:
    with Session(db) as s:
        _, token = create_staff(s, id="coord39", display_name="К", role="coordinator",
                                region="39")
        s.commit()
    with caplog.at_level("INFO", logger="rehab.api.access"):
        client(db, clock).get("/api/routes?state=active",
                              headers={"Authorization": f"Bearer {token}"})
    lines = [r.getMessage() for r in caplog.records if r.name == "rehab.api.access"]
    assert lines and all("state=active" not in m and "?" not in m for m in lines)
    assert token not in "".join(lines)


def test_every_metric_an_alert_names_is_exported(db: Engine, clock: DbClock,
                                                 route_id: str) -> None:
    import yaml

    from engine.infra.settings import PROJECT_ROOT

    rules = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    named = {m for e in exprs for m in re.findall(r"\brehab_\w+", e)}
    heartbeats.register(db, "s-1", ProcessKind.sweeper)
    heartbeats.register(db, "w-1", ProcessKind.worker)
    with db.begin() as conn:
        conn.execute(text("UPDATE job SET dead_at = due_at"))
    body = client(db, clock).get("/metrics").text
    exported = {m.group(1) for m in re.finditer(r"^([a-z_]+)[{ ]", body, re.M)}
    assert named and named <= exported, named - exported
