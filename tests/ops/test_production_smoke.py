"""The production smoke test (issue 13), on PostgreSQL: the topology started from its one
definition (``rehab up``: two API processes, two workers, the sweeper, the mirror, a Prefect
server on PostgreSQL, under supervisord); applications registered through the API and answered
by the simulated agencies; ``/health/ready`` and ``/metrics`` checked; a worker SIGKILLed and
restarted by the supervisor with nothing lost or done twice; SIGTERM stops everything
cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import pendulum
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.infra.settings import PROJECT_ROOT
from engine.staff.accounts import create_staff
from models.agencies import AgencyRequest
from models.heartbeats import ProcessBeat
from models.routes import Route, RouteStatus, Step, StepStatus
from sim.agencies import Profile, subject_token
from sim.scenario import wait_idle
from sim.seed import KALININGRAD_AGENCIES, make_persons, seed_agencies
from tasks.processes import Proc, free_port, wait_http
from tests.conftest import PG_URL
from tests.ops.test_health_and_metrics import metric

PREFECT_DB = os.environ.get("REHAB_PREFECT_DATABASE_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_URL and PREFECT_DB),
                       reason="production smoke test: needs PostgreSQL for ours and Prefect's "
                              "(REHAB_TEST_DATABASE_URL, REHAB_PREFECT_DATABASE_URL)"),
]

# every agency of the region answers by webhook (a route's steps reach most roles), on
# time and with the information, after a refused first delivery now and then
PROFILES = {aid: Profile(late=0.0, never=0.0, absent=0.0, fail_first=0.2, max_days=1)
            for aid, *_ in KALININGRAD_AGENCIES}
ROUTES = 12
SEED = 5


def _tails(logs: Path, lines: int = 25) -> str:
    return "\n".join(f"--- {p.name}\n" + "\n".join(
        p.read_text(errors="replace").splitlines()[-lines:]) for p in sorted(logs.glob("*.log")))


def _until(what: str, check: object, timeout: float, logs: Path) -> None:
    """Poll ``check`` until true (real time: processes starting and working)."""
    assert callable(check)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{_tails(logs)}")


def _workers(db: Engine) -> list[ProcessBeat]:
    with Session(db) as s:
        return list(s.exec(select(ProcessBeat).where(ProcessBeat.kind == "worker",
                                                     col(ProcessBeat.stopped_at).is_(None))))


def test_the_topology_runs_heals_and_stops(db_url: str, db: Engine, tmp_path: Path) -> None:
    work = tmp_path / "var"
    logs = work / "logs"
    logs.mkdir(parents=True)
    api_port, sim_port, prefect_port = free_port(), free_port(), free_port()
    api_url, sim_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
    clock = DbClock(db, ttl=0)
    clock.freeze(pendulum.datetime(2025, 4, 14, 10, tz="Europe/Kaliningrad"))
    with Session(db, expire_on_commit=False) as s:
        agencies = seed_agencies(s, endpoints={a: f"{sim_url}/agencies/{a}/requests"
                                               for a in PROFILES})
        people = make_persons(s, ROUTES, seed=SEED)
        s.expunge_all()
        _, token = create_staff(s, id="coord39", display_name="Координатор", role="coordinator",
                                region="39")
        s.commit()
    cfg_path = work / "sim.json"
    cfg_path.write_text(json.dumps({
        "secrets": {a.id: a.secret_current for a in agencies},
        "profiles": {k: asdict(v) for k, v in PROFILES.items()}, "seed": SEED,
        "subjects": sorted(subject_token(SEED, p.snils) for p in people)}))
    env = {**os.environ, "REHAB_DATABASE_URL": db_url, "REHAB_PUBLIC_BASE_URL": api_url,
           "REHAB_PREFECT_MIRROR": "true", "REHAB_PREFECT_DATABASE_URL": PREFECT_DB,
           "REHAB_VAR_DIR": str(work), "REHAB_CLOCK_CACHE_SECONDS": "0",
           "REHAB_HEARTBEAT_SECONDS": "0.5", "REHAB_JOB_LEASE_SECONDS": "5",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    sim = Proc("sim", ["sim", "--port", str(sim_port), "--config", str(cfg_path)], env=env,
               log_dir=logs, health_url=f"{sim_url}/_sim/stats").start()
    up = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--api-processes", "2", "--workers", "2",
         "--sweep-interval", "1", "--prefect-server", "--prefect-port", str(prefect_port),
         "--port", str(api_port)],
        cwd=PROJECT_ROOT, env=env, stdout=(logs / "up.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    http = httpx.Client(timeout=30)
    try:
        wait_http(f"{api_url}/health/live", timeout=120, proc=up, name="rehab up",
                  log_path=logs / "up.log")

        def ready() -> bool:
            r = http.get(f"{api_url}/health/ready")
            checks = r.json()["checks"]
            procs = checks["processes"].get("processes", [])
            return (r.status_code == 200 and checks["prefect"]["ok"]
                    and sum(p["kind"] == "worker" and not p["silent"] for p in procs) == 2
                    and any(p["kind"] == "sweeper" for p in procs)
                    and any(p["kind"] == "mirror" for p in procs))
        _until("ready with Prefect, two workers, the sweeper and the mirror", ready, 180, logs)

        # applications through the API (the persons are found by SNILS, not duplicated): social
        # employment's newest data version, its six actions in order (001 Регламент п.16) and
        # the recurring health check beside them, which ends with the route
        auth = {"Authorization": f"Bearer {token}"}
        for p in people:
            r = http.post(f"{api_url}/api/applications", headers=auth, json={
                "full_name": p.full_name, "snils": p.snils,
                "birth_date": p.birth_date.isoformat(), "template": "social_employment"})
            assert r.status_code == 201, r.text

        killed = False
        for day in range(30):
            clock.advance(pendulum.duration(days=1))
            tick = http.post(f"{sim_url}/_sim/tick", json={"now": clock.now().isoformat()})
            assert tick.is_success, tick.text
            if day == 1 and not killed:  # SIGKILL a worker: supervisord starts another
                victim = _workers(db)[0]
                os.kill(victim.pid, signal.SIGKILL)
                killed = True
                _until("a new worker beating after the kill",
                       lambda v=victim: any(w.process_id != v.process_id
                                            and w.started_at > v.started_at
                                            for w in _workers(db)), 90, logs)
            wait_idle(db, timeout=120)
            with Session(db) as s:
                if all(r.status is RouteStatus.completed for r in s.exec(select(Route))):
                    break
        with Session(db) as s:
            routes = list(s.exec(select(Route)))
            steps = list(s.exec(select(Step)))
            requests = list(s.exec(select(AgencyRequest)))
        assert len(routes) == ROUTES, _tails(logs)
        assert all(r.status is RouteStatus.completed for r in routes), _tails(logs)
        stats = http.get(f"{sim_url}/_sim/stats").json()
        # one idempotency key per request for life; every step the route sent had a request
        # (a recurring check one per occurrence; a step not applicable none)
        assert len(requests) == stats["distinct_keys"]
        assert stats["deliveries"] >= len(requests)
        assert all(s.status.terminal for s in steps), _tails(logs)
        asked = {q.step_id for q in requests}
        assert all(st.id in asked for st in steps if st.status is StepStatus.answered)

        def mirrored() -> bool:
            body = http.get(f"{api_url}/metrics").text
            return (metric(body, "rehab_jobs_pending", kind="mirror_route") == 0
                    and metric(body, "rehab_mirror_lag_seconds") == 0)
        _until("the Prefect mirror caught up", mirrored, 120, logs)

        def sweeps_reported() -> bool:
            with Session(db) as s:
                sweepers = s.exec(select(ProcessBeat).where(ProcessBeat.kind == "sweeper")).all()
            return any(int(b.counters.get("reported", 0)) > 0 for b in sweepers)
        _until("the sweeper's sweeps reported to Prefect", sweeps_reported, 120, logs)
        body = http.get(f"{api_url}/metrics").text
        sent = sum(metric(body, "rehab_transitions_total", process=w, kind="request_sent")
                   for w in {ln.split('process="')[1].split('"')[0] for ln in body.splitlines()
                             if ln.startswith("rehab_transitions_total{")})
        assert sent >= 1
        assert metric(body, "rehab_timers_overdue") == 0
        answered = [ln for ln in body.splitlines()
                    if ln.startswith("rehab_answers_received_total{") and "accepted" in ln]
        assert answered, body
        for p in people:
            assert p.snils not in body and p.id not in body
        assert http.get(f"{api_url}/health/ready").status_code == 200
    finally:
        http.close()
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGTERM)
            try:
                up.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
        sim.stop()
    assert up.returncode == 0, _tails(logs)
    # every process that was running stopped cleanly and said so
    with Session(db) as s:
        live = [b for b in s.exec(select(ProcessBeat)) if b.stopped_at is None]
    killed_ids = {b.process_id for b in live}
    assert len(killed_ids) == 1, killed_ids  # only the SIGKILLed worker never said goodbye
    worker_logs = "".join(p.read_text() for p in logs.glob("worker-*.log"))
    assert worker_logs.count("worker stopped:") >= 2
    assert "mirror stopped:" in (logs / "mirror.log").read_text()
