"""The demo scenario: synthetic persons through their routes, against simulated agencies,
on a moved business clock, with every process real (API, worker, agencies, Prefect)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pendulum
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

import calendars
from engine import queue
from engine.clock import DbClock
from engine.db import make_engine, migrate
from engine.routes import EngineConfig, register_application
from engine.seed import make_persons, seed_agencies
from engine.settings import Settings
from models.agencies import AgencyAnswer, AgencyRequest, AnswerOutcome
from models.jobs import JobKind
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import Ladder
from models.timers import Escalation, EscalationLevel
from sim.agencies import Profile
from sim.supervisor_bot import BOT_ID, act_on_escalations, ensure_bot
from tasks.processes import Proc, free_port

SUPERVISOR_ACTIONS = ["acknowledged", "deadline_extended", "reassigned", "closed"]
CORE = [JobKind.send_request, JobKind.apply_answer, JobKind.send_notification]

PROFILES: dict[str, Profile] = {
    "msp39": Profile(late=0.1, never=0.0, absent=0.05),
    "mz39": Profile(late=0.2, never=0.05, absent=0.15, fail_first=0.2),
    "mo39": Profile(late=0.15, never=0.1, absent=0.05),
    "psu39a": Profile(late=0.1, never=0.1, absent=0.0),
    "psu39b": Profile(late=0.05, never=0.0, absent=0.0),
    "mse39": Profile(late=0.1, never=0.02, absent=0.05),
    "sfr39": Profile(late=0.1, never=0.02, absent=0.1),
}


@dataclass
class DemoOptions:
    persons: int = 30
    template: str = "supported_living"
    start: datetime = field(
        default_factory=lambda: pendulum.datetime(2025, 12, 22, 10, tz="Europe/Kaliningrad"))
    max_days: int = 120
    seed: int = 7
    prefect: bool = True
    work_dir: Path = Path("var/demo")
    database_url: str = ""  # empty: a fresh SQLite file in work_dir
    profiles: dict[str, Profile] = field(default_factory=lambda: dict(PROFILES))
    worker_name: str = "demo-worker-1"


@dataclass
class DemoSummary:
    persons: int
    routes: int
    routes_completed: int
    routes_active: int
    routes_cancelled: int
    steps: int
    steps_done: int
    answers_on_time: int
    answers_late: int
    absent_notices: int
    overdue_steps: int
    escalations: dict[str, int]
    supervisor_actions: int
    requests: int
    distinct_keys_at_agencies: int
    deliveries_at_agencies: int
    simulated_from: str
    simulated_to: str
    simulated_days: int
    wall_seconds: float
    prefect_ui: str | None
    api_url: str
    flow_runs_mirrored: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[int, int, date], None]


@contextmanager
def demo_stack(opts: DemoOptions, settings: Settings) -> Iterator[dict[str, Any]]:
    """Start Prefect (optional), the simulated agencies, our API and a worker."""
    work = opts.work_dir.resolve()
    if work.exists():
        shutil.rmtree(work)
    (work / "logs").mkdir(parents=True)
    db_url = opts.database_url or f"sqlite:///{work / 'rehab.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    api_port, sim_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    sim_url = f"http://127.0.0.1:{sim_port}"
    with ExitStack() as stack:
        env = {**os.environ, "REHAB_DATABASE_URL": db_url, "REHAB_PUBLIC_BASE_URL": api_url,
               "REHAB_PREFECT_MIRROR": "true" if opts.prefect else "false",
               "REHAB_VAR_DIR": str(work), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "DO_NOT_TRACK": "1"}
        prefect_ui = None
        if opts.prefect and settings.prefect_api_url:
            env["PREFECT_API_URL"] = settings.prefect_api_url
            os.environ["PREFECT_API_URL"] = settings.prefect_api_url
            prefect_ui = settings.prefect_api_url.removesuffix("/api")
        elif opts.prefect:
            from tasks.prefect_server import PrefectServer

            server = PrefectServer(home=work / "prefect",
                                   database_url=settings.prefect_database_url or None)
            server.start()
            stack.callback(server.stop)
            env.update(server.env())
            os.environ.update(server.env())
            prefect_ui = server.ui_url
        with Session(engine) as s:
            endpoints = {aid: f"{sim_url}/agencies/{aid}/requests" for aid in opts.profiles}
            agencies = seed_agencies(s, endpoints=dict(endpoints))
            s.commit()
            secrets = {a.id: a.secret_current for a in agencies}
        cfg_path = work / "sim.json"
        cfg_path.write_text(json.dumps({
            "secrets": secrets, "profiles": {k: asdict(v) for k, v in opts.profiles.items()}}))
        logs = work / "logs"
        sim = Proc("sim", ["sim", "--port", str(sim_port), "--config", str(cfg_path)], env=env,
                   log_dir=logs, health_url=f"{sim_url}/_sim/stats").start()
        stack.callback(sim.stop)
        api = Proc("api", ["api", "--port", str(api_port)], env=env, log_dir=logs,
                   health_url=f"{api_url}/health").start()
        stack.callback(api.stop)
        worker = Proc("worker", ["worker", "--name", opts.worker_name], env=env, log_dir=logs)
        worker.start()
        stack.callback(worker.stop)
        yield {"engine": engine, "api_url": api_url, "sim_url": sim_url,
               "prefect_ui": prefect_ui, "procs": [sim, api, worker], "env": env,
               "db_url": db_url}
        engine.dispose()


def wait_idle(engine: Engine, *, timeout: float = 120.0) -> None:
    """Wait until the worker has done every core job (real time: processes at work)."""
    _wait_jobs(engine, CORE, timeout=timeout)


def _wait_jobs(engine: Engine, kinds: list[JobKind], *, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if queue.pending_count(engine, kinds) == 0:
            return
        time.sleep(0.02)
    raise TimeoutError(f"the worker did not finish its {kinds} jobs in time")


def run_scenario(opts: DemoOptions, stack: dict[str, Any], settings: Settings,
                 progress: Progress | None = None) -> DemoSummary:
    """Register the persons' applications and move business time day by day."""
    t0 = time.monotonic()
    engine: Engine = stack["engine"]
    clock = DbClock(engine, ttl=0)
    cfg = EngineConfig(sender_region=settings.sender_region, public_base_url=stack["api_url"],
                       default_ladder=Ladder(settings.reminder_days_before,
                                             settings.escalate_after_days),
                       mirror=opts.prefect)
    cal = calendars.get_calendar(calendars.DEFAULT_REGION)
    tz = cal.timezone
    clock.freeze(opts.start)
    start_day = pendulum.instance(opts.start).in_timezone(tz).date()
    with Session(engine, expire_on_commit=False) as s:
        people = make_persons(s, opts.persons, seed=opts.seed)
        s.commit()
    # applications arrive over the first five working days
    arrivals: dict[date, list[str]] = {}
    for i, p in enumerate(people):
        arrivals.setdefault(cal.add_working_days(start_day, i % 5), []).append(p.id)
    sweeper = _sweeper(engine, clock, cfg)
    ensure_bot(engine)
    http = httpx.Client(timeout=60)
    day = start_day
    n_days = 0
    try:
        while n_days < opts.max_days:
            for hh, mm in ((0, 5), (9, 30), (12, 0)):
                clock.freeze(pendulum.datetime(day.year, day.month, day.day, hh, mm, tz=tz))
                if (hh, mm) == (12, 0):
                    for pid in arrivals.get(day, []):
                        with Session(engine, expire_on_commit=False) as s:
                            register_application(s, cfg, now=clock.now(), person_id=pid,
                                                 template_code=opts.template,
                                                 actor="demo:coordinator")
                            s.commit()
                    wait_idle(engine)
                    http.post(f"{stack['sim_url']}/_sim/tick",
                              json={"now": clock.now().isoformat()}).raise_for_status()
                    wait_idle(engine)
                sweeper()
                wait_idle(engine)
            if act_on_escalations(engine, cfg, now=clock.now()):
                wait_idle(engine)
            done, total = _progress(engine)
            if progress:
                progress(done, opts.persons, day)
            n_days += 1
            if total == opts.persons and done == total:
                break
            day = day + timedelta(days=1)
    finally:
        http.close()
    if opts.prefect:  # let the Prefect mirror catch up, so the UI shows the final states
        try:
            _wait_jobs(engine, [JobKind.mirror_route], timeout=120)
        except TimeoutError:
            pass
    return _summary(engine, stack, opts, start_day, day, n_days, time.monotonic() - t0)


def _sweeper(engine: Engine, clock: DbClock, cfg: EngineConfig) -> Callable[[], None]:
    try:
        from engine.sweeper import sweep_due_timers
    except ImportError:  # pragma: no cover
        return lambda: None

    def sweep() -> None:
        sweep_due_timers(engine, clock, cfg, sweeper_id="demo-sweeper")

    return sweep


def _progress(engine: Engine) -> tuple[int, int]:
    with Session(engine) as s:
        total = s.exec(select(func.count()).select_from(Route)).one()
        done = s.exec(select(func.count()).select_from(Route)
                      .where(Route.status != RouteStatus.active)).one()
    return int(done), int(total)


def _summary(engine: Engine, stack: dict[str, Any], opts: DemoOptions, start: date, end: date,
             n_days: int, wall: float) -> DemoSummary:
    stats = httpx.get(f"{stack['sim_url']}/_sim/stats", timeout=10).json()
    with Session(engine) as s:
        routes = list(s.exec(select(Route)))
        steps = list(s.exec(select(Step)))
        answers = list(s.exec(select(AgencyAnswer).where(
            col(AgencyAnswer.effect) == "moved_route")))
        escs = list(s.exec(select(Escalation)))
        requests = s.exec(select(func.count()).select_from(AgencyRequest)).one()
        from models.audit import AuditEvent

        sup = s.exec(select(func.count()).select_from(AuditEvent)
                 .where(col(AuditEvent.actor) == f"staff:{BOT_ID}")
                 .where(col(AuditEvent.action).in_(SUPERVISOR_ACTIONS))).one()
    by_level = {lvl.name: sum(1 for e in escs if e.level == lvl) for lvl in EscalationLevel}
    overdue_steps = len({e.step_id for e in escs if e.level >= EscalationLevel.overdue})
    return DemoSummary(
        persons=opts.persons,
        routes=len(routes),
        routes_completed=sum(r.status is RouteStatus.completed for r in routes),
        routes_active=sum(r.status is RouteStatus.active for r in routes),
        routes_cancelled=sum(r.status is RouteStatus.cancelled for r in routes),
        steps=len(steps),
        steps_done=sum(st.status.terminal for st in steps),
        answers_on_time=sum(a.late_working_days == 0 for a in answers),
        answers_late=sum(a.late_working_days > 0 for a in answers),
        absent_notices=sum(a.outcome is AnswerOutcome.absent for a in answers),
        overdue_steps=overdue_steps,
        escalations=by_level,
        supervisor_actions=int(sup),
        requests=int(requests),
        distinct_keys_at_agencies=int(stats["distinct_keys"]),
        deliveries_at_agencies=int(stats["deliveries"]),
        simulated_from=start.isoformat(),
        simulated_to=end.isoformat(),
        simulated_days=n_days,
        wall_seconds=round(wall, 2),
        prefect_ui=stack["prefect_ui"],
        api_url=stack["api_url"],
        flow_runs_mirrored=sum(1 for r in routes if r.prefect_flow_run_id),
    )


def steps_waiting(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(Step)
                          .where(Step.status == StepStatus.awaiting)).one())
