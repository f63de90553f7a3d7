"""Kill real processes mid-flight (SIGKILL) and prove nothing is lost or done twice.

The API, the worker and the simulated agencies run as separate processes over real HTTP on
loopback. While answers are arriving and requests are going out, the worker and the API are
killed and restarted. Afterwards: every route completed, every step answered exactly once,
and each agency saw exactly one distinct request per request we made (resends after a crash
carry the same idempotency key).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pendulum
import pytest
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from models.agencies import AgencyAnswer, AgencyRequest, AnswerEffect
from models.audit import AuditEvent
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import Ladder
from sim.agencies import Profile
from sim.scenario import DemoOptions, demo_stack, wait_idle
from sim.seed import make_persons

pytestmark = pytest.mark.slow

FAST: dict[str, Profile] = {
    "msp39": Profile(late=0.0, never=0.0, absent=0.1, fail_first=0.3, max_days=2),
    "mz39": Profile(late=0.0, never=0.0, absent=0.1, fail_first=0.3, max_days=2),
    "mo39": Profile(late=0.0, never=0.0, absent=0.0, fail_first=0.3, max_days=2),
}


def _log_tails(tmp_path: Path, lines: int = 30) -> str:
    """The last lines of each process's log, for the failure message (CI keeps no files)."""
    out = []
    for log in sorted((tmp_path / "stack" / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(out)


def test_sigkill_worker_and_api_mid_flight_loses_nothing(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(11)
    opts = DemoOptions(persons=0, prefect=False, work_dir=tmp_path / "stack",
                       database_url=db_url, profiles=FAST, worker_name="crash-worker",
                       job_lease_seconds=2.0)  # a restart waits for the old leases
    settings = Settings(environment="test", prefect_mirror=False)
    with demo_stack(opts, settings) as stack:
        engine = stack["engine"]
        sim, api, worker = stack["procs"]
        clock = DbClock(engine, ttl=0)
        start = pendulum.datetime(2025, 4, 28, 12, tz="Europe/Kaliningrad")  # May holidays
        clock.freeze(start)
        cfg = EngineConfig(sender_region="39", public_base_url=stack["api_url"],
                           default_ladder=Ladder(1, 2), mirror=False)
        with Session(engine, expire_on_commit=False) as s:
            people = make_persons(s, 30, seed=3)
            for p in people:
                register_application(s, cfg, now=clock.now(), person_id=p.id,
                                     template_code="supported_living", template_version=0)
            s.commit()
        kills = Counter[str]()
        http = httpx.Client(timeout=30)
        for _ in range(40):
            clock.advance(pendulum.duration(days=1))
            # kill the worker while it sends requests / applies answers
            time.sleep(rng.uniform(0.0, 0.05))
            worker.kill()
            kills["worker"] += 1
            worker.start()
            pool = ThreadPoolExecutor(1)
            tick = pool.submit(http.post, f"{stack['sim_url']}/_sim/tick",
                               json={"now": clock.now().isoformat()})
            if rng.random() < 0.5:
                # kill the API while the agencies are posting their answers
                time.sleep(rng.uniform(0.0, 0.02))
                api.kill()
                kills["api"] += 1
                api.start()
            reply = tick.result()
            assert reply.is_success, f"tick: HTTP {reply.status_code}\n{_log_tails(tmp_path)}"
            pool.shutdown()
            time.sleep(rng.uniform(0.0, 0.05))
            worker.kill()
            kills["worker"] += 1
            worker.start()
            wait_idle(engine, timeout=60)
            with Session(engine) as s:
                if all(r.status is RouteStatus.completed for r in s.exec(select(Route))):
                    break
        stats = http.get(f"{stack['sim_url']}/_sim/stats").json()
        http.close()
        assert kills["worker"] >= 4 and kills["api"] >= 1
        with Session(engine) as s:
            routes = list(s.exec(select(Route)))
            steps = list(s.exec(select(Step)))
            requests = list(s.exec(select(AgencyRequest)))
            answers = list(s.exec(select(AgencyAnswer)))
            audit = list(s.exec(select(AuditEvent)))
        assert len(routes) == 30
        assert all(r.status is RouteStatus.completed for r in routes)
        assert all(st.status in (StepStatus.answered, StepStatus.absent) for st in steps)
        # one request per step (no resend created a second request), one answer applied each
        assert len(requests) == len(steps) == 90
        assert stats["distinct_keys"] == len(requests)
        assert stats["deliveries"] >= len(requests)
        moved = [a for a in answers if a.effect is AnswerEffect.moved_route]
        assert len(moved) == len(steps)
        assert len({a.request_id for a in moved}) == len(steps)
        # each step became ready once and was answered once in the audit history
        ready = Counter(e.entity_id for e in audit if e.action == "ready")
        answered = Counter(e.entity_id for e in audit
                           if e.entity == "step" and e.action.startswith("answer_"))
        assert set(ready.values()) == {1} and len(ready) == 90
        assert set(answered.values()) == {1} and len(answered) == 90
