"""The demo scenario: synthetic persons through their routes, against simulated agencies,
on a moved business clock, with every process real (API, worker, agencies, Prefect).

The run is deterministic for a seed: the persons (and their synthetic SNILS) come from the
seed; the simulated agencies decide each request's fate from the seed and the subject
(``sim.agencies``), on the business time the scenario tells them, never the machine's
date; every process reads the business clock without caching it; the demo's supervisor
decides from the data alone. The same seed gives the same summary, except wall time,
addresses and the Prefect fields.

A simulated day: at 00:05, 09:30 and 12:00 local time the clock is moved, the agencies are
told the time (they send the answers due by then), and the timers due are swept — with
Prefect, each sweep that has timers to fire is one run of the ``timer-sweeper`` deployment
the demo registers without a schedule. The
day's applications are registered at 12:00, and the day's scripted life events happen then
(``sim.life_events``: a template migration, a refusal and resumption, an application to
stop; an ИПРА whose term runs out is ended by the sweep); at the end of the day the demo's
supervisor acts on the day's escalations.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pendulum
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

import calendars
from engine.infra import queue
from engine.infra.clock import DbClock
from engine.infra.db import make_engine, migrate
from engine.infra.settings import Settings
from engine.persons.consent_withdrawal import withdraw_consent
from engine.routes.forming import form_route
from engine.routes.ipra_plan import current_ipra
from engine.routes.transitions import EngineConfig
from engine.runtime.sweeper import sweep_due_timers
from models.agencies import AgencyAnswer, AgencyRequest, AnswerEffect, AnswerOutcome
from models.audit import AuditEvent
from models.jobs import JobKind
from models.person_file import ApplicationRecord, ConsentVersion, IpraRecord
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import Ladder
from models.timers import Escalation, EscalationLevel, Timer, TimerStatus
from sim import life_events
from sim.agencies import Profile, subject_token
from sim.demo_accounts import people_have_work
from sim.life_events import ipra_last_day, plan_life
from sim.person_files import decide_branches, register_person_file, route_kind_of
from sim.seed import make_persons, seed_agencies
from sim.supervisor_bot import BOT_ID, act_on_escalations, ensure_bot
from tasks.processes import Proc, free_port

SUPERVISOR_ACTIONS = ["acknowledged", "deadline_extended", "reassigned", "closed"]
CORE = [JobKind.send_request, JobKind.apply_answer, JobKind.send_notification,
        JobKind.send_cancel]
"""The jobs a simulated moment waits for: withdrawal notices too (a refusal, a termination),
so that each is delivered at the business time it was sent."""
SLOTS: tuple[tuple[int, int], ...] = ((0, 5), (9, 30), (12, 0))
"""Local times of day the clock stops at; applications are registered at the last one."""
REGISTER_SLOT = (12, 0)

PROFILES: dict[str, Profile] = {
    "msp39": Profile(late=0.1, never=0.05, absent=0.05),
    "mz39": Profile(late=0.2, never=0.05, absent=0.15, fail_first=0.2),
    "mo39": Profile(late=0.15, never=0.1, absent=0.05),
    "psu39a": Profile(late=0.1, never=0.1, absent=0.0),
    "psu39b": Profile(late=0.05, never=0.0, absent=0.0),
    "mse39": Profile(late=0.1, never=0.02, absent=0.05),
    "sfr39": Profile(late=0.1, never=0.02, absent=0.1),
    # sport and culture (001 Регламент п.6 пп.10, пп.11: social employment's optional steps)
    "msport39": Profile(late=0.1, never=0.0, absent=0.0),
    "mkt39": Profile(late=0.05, never=0.0, absent=0.0),
}

#: Summary fields that differ between two runs of the same seed (time, addresses, Prefect).
VOLATILE_FIELDS = ("wall_seconds", "prefect_ui", "api_url", "flow_runs_mirrored",
                   "sweeper_flow_runs", "sweeper_deployment_id")


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
    job_lease_seconds: float | None = None
    """The worker's job lease (real seconds; None: the setting's default). A restarted
    worker never frees the leases of the one it replaces, so crash tests make it short."""
    withdrawal: bool = True
    """The last person withdraws their consent two working days after applying (152-ФЗ
    art. 9 ч.2): their route is suspended midway."""
    leave_work_open: bool = False
    """``--serve``: stop on the first evening an escalation of level 2 is open and a
    request waits for its agency's answer, before the demo's supervisor acts — so that the
    people signing in find work: the supervisor an escalation to act on, the agency user a
    request to answer from the inbox, the coordinator overdue routes. Without it the run
    goes on until every route is done (nothing left for a person to do)."""
    life_events: bool = True
    """With the persons' files: the scripted events of ``sim.life_events`` (accompaniment
    v1 routes migrated to v2, a refusal and resumption, an application to stop, an ИПРА that
    expires during the run)."""
    clock_settle_seconds: float = 0.06
    """Real time allowed, after business time moves to a new day, before the API and the
    worker act on it: a process that caches its reading of the business clock (``DbClock``,
    ``REHAB_CLOCK_CACHE_SECONDS``, 0.05 s by default) has re-read it by then. The demo asks
    its processes for 0 (no caching); this guard keeps the run exact where a process does
    not honour that. Costs at most this much per simulated day (on quiet days only)."""


@dataclass
class DemoSummary:
    persons: int
    seed: int
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
    supervisor_actions_by_kind: dict[str, int]
    requests: int
    distinct_keys_at_agencies: int
    deliveries_at_agencies: int
    agency_fates: dict[str, int]
    sweeps: int
    sweeps_with_timers_due: int
    timers_fired: dict[str, int]
    simulated_from: str
    simulated_to: str
    simulated_days: int
    wall_seconds: float
    prefect_ui: str | None
    api_url: str
    flow_runs_mirrored: int
    sweeper_flow_runs: int
    #: Prefect's id of the ``timer-sweeper`` deployment the sweeps ran as (None: no Prefect)
    sweeper_deployment_id: str | None = None
    # the persons' files (issue 10)
    ipra_imported: int = 0
    applications: int = 0
    applications_by_kind: dict[str, int] = field(default_factory=dict)
    applications_eligible: int = 0
    applications_ineligible: int = 0
    consent_withdrawals: int = 0
    routes_suspended: int = 0
    steps_suspended: int = 0  # open steps of suspended routes (not done, not going on)
    # issue 11: routes by kind, and by kind and outcome (``route_outcomes``)
    routes_by_kind: dict[str, int] = field(default_factory=dict)
    route_outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    routes_terminated: int = 0  # ended by 004 п.13 (ИПРА expired, the person's application)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stable(self) -> dict[str, Any]:
        """The summary without the fields that differ between runs of the same seed."""
        return {k: v for k, v in self.as_dict().items() if k not in VOLATILE_FIELDS}


Progress = Callable[[int, int, date], None]


@contextmanager
def demo_stack(opts: DemoOptions, settings: Settings) -> Iterator[dict[str, Any]]:
    """Start Prefect (optional), the simulated agencies, our API and a worker; create the
    ``opts.persons`` synthetic persons (``stack["person_ids"]``, in generation order)."""
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
               "REHAB_VAR_DIR": str(work), "REHAB_CLOCK_CACHE_SECONDS": "0",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
        if opts.job_lease_seconds is not None:
            env["REHAB_JOB_LEASE_SECONDS"] = str(opts.job_lease_seconds)
        prefect_ui = prefect_api = None
        if opts.prefect and settings.prefect_api_url:
            prefect_api = settings.prefect_api_url
            env["PREFECT_API_URL"] = prefect_api
            prefect_ui = prefect_api.removesuffix("/api")
        elif opts.prefect:
            from tasks.prefect_server import PrefectServer

            server = PrefectServer(home=work / "prefect",
                                   database_url=settings.prefect_database_url or None,
                                   nice=settings.mirror_nice)
            server.start()
            stack.callback(server.stop)
            env.update(server.env())
            prefect_api = server.api_url
            prefect_ui = server.ui_url
        with Session(engine, expire_on_commit=False) as s:
            endpoints = {aid: f"{sim_url}/agencies/{aid}/requests" for aid in opts.profiles}
            agencies = seed_agencies(s, endpoints=dict(endpoints))
            people = make_persons(s, opts.persons, seed=opts.seed)
            s.commit()
            agency_secrets = {a.id: a.secret_current for a in agencies}
            person_ids = [p.id for p in people]
            roster = sorted(subject_token(opts.seed, p.snils) for p in people)
        cfg_path = work / "sim.json"
        cfg_path.write_text(json.dumps({
            "secrets": agency_secrets, "profiles": {k: asdict(v) for k, v in opts.profiles.items()},
            "seed": opts.seed, "subjects": roster}))
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
        procs = [sim, api, worker]
        if opts.prefect:  # the routes' Prefect mirror: a process of its own (rehab mirror)
            mirror = Proc("mirror", ["mirror", "--name", f"{opts.worker_name}-mirror"],
                          env=env, log_dir=logs)
            mirror.start()
            stack.callback(mirror.stop)
            procs.append(mirror)
        yield {"engine": engine, "api_url": api_url, "sim_url": sim_url,
               "prefect_ui": prefect_ui, "prefect_api": prefect_api,
               "procs": procs, "env": env, "db_url": db_url,
               "person_ids": person_ids}
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


class Sweeper:
    """The demo's sweeps. With Prefect, each sweep that has timers to fire is one run of the
    ``timer-sweeper`` deployment (counts only; tagged ``rehab-demo`` and this run's tag); the
    others, and every sweep without Prefect, call the same sweep directly.

    Why not a flow run for every sweep (measured on the 2-core box, under load): an
    in-process flow run costs 0.15–0.3 s of Prefect API calls (~1.3 s with Prefect's
    default heartbeat thread, which the demo turns off for these short runs). The 30-person
    demo sweeps 117 times, 26 of them with timers due: every sweep a flow run took 74 s,
    only those 26 took 48 s, for the same result. A 120-day run has 360 sweeps. In
    production ``rehab sweeper`` runs the flow on its schedule whether or not anything is
    due.
    """

    def __init__(self, engine: Engine, clock: DbClock, cfg: EngineConfig, *,
                 prefect: bool, region: str) -> None:
        self.engine, self.clock, self.cfg = engine, clock, cfg
        self.sweeper_id = "demo-sweeper"
        self.prefect = prefect
        self.tz = calendars.get_calendar(region).timezone
        self.run_tag = f"demo-run:{secrets.token_hex(4)}"
        self.sweeps = 0
        self.sweeps_with_due = 0
        self.flow_runs = 0
        self.fired: dict[str, int] = {}
        #: the ``timer-sweeper`` deployment the sweeps are runs of (registered on first use)
        self.deployment_id: UUID | None = None

    def _due(self, now: datetime) -> bool:
        with Session(self.engine) as s:
            return s.exec(select(Timer.id).where(
                Timer.status == TimerStatus.pending, col(Timer.due_at) <= now)
                .limit(1)).first() is not None

    def __call__(self, now: datetime) -> dict[str, int]:
        self.sweeps += 1
        due = self._due(now)
        self.sweeps_with_due += due
        if self.prefect and due:
            from flows.sweeper import SweepTarget, run_sweep

            local = pendulum.instance(now).in_timezone(self.tz)
            counts = run_sweep(
                SweepTarget(self.engine, self.clock, self.cfg, self.sweeper_id),
                run_name=f"timer-sweeper {local:%Y-%m-%d %H:%M}",
                deployment_id=self.register(), tags=["rehab-demo", self.run_tag])
            self.flow_runs += 1
        else:  # the same sweep, without Prefect (not even imported)
            counts = sweep_due_timers(self.engine, self.clock, self.cfg,
                                      sweeper_id=self.sweeper_id).as_dict()
        for k, v in counts.items():
            if k.startswith("fired_"):
                kind = k.removeprefix("fired_")
                self.fired[kind] = self.fired.get(kind, 0) + v
        return counts

    def register(self) -> UUID:
        """The ``timer-sweeper`` deployment, registered once per demo run without a
        schedule: Prefect lists it (Deployments page) and its runs are the demo's sweeps,
        started here on the business clock — Prefect never starts one itself, so the run
        stays deterministic and Prefect off the routes' path."""
        if self.deployment_id is None:
            from flows.sweeper import register_unscheduled_deployment

            self.deployment_id = register_unscheduled_deployment()
        return self.deployment_id

    def runs_in_prefect(self, api_url: str) -> int:
        """Completed ``timer-sweeper`` flow runs of this demo run, as Prefect reports them."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowFilter,
            FlowFilterName,
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterState,
            FlowRunFilterStateType,
            FlowRunFilterTags,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.settings import temporary_settings

        from flows.sweeper import FLOW_NAME

        with temporary_settings(updates={"api.url": api_url}), \
                get_client(sync_client=True) as client:
            return client.count_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[self.run_tag]),
                    deployment_id=FlowRunFilterDeploymentId(any_=[self.deployment_id])
                    if self.deployment_id else None,
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))))


@contextmanager
def _prefect_client(stack: dict[str, Any], enabled: bool) -> Iterator[None]:
    """Point this process's Prefect client at the demo's server (one HTTP client for all
    the sweeps' flow runs; no heartbeat thread for these short runs); on the way out, send
    the runs' last logs and events while the server is still there."""
    if not enabled or not stack.get("prefect_api"):
        yield
        return
    import prefect.main  # noqa: F401  (sets up Prefect's logging, adjusted below)
    from prefect.context import SyncClientContext
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker, PrefectConsoleHandler
    from prefect.settings import temporary_settings

    # the runs' logs go to Prefect (the UI shows them), not over the demo's progress bar
    quiet = [(h, h.level) for h in logging.getLogger().handlers
             if isinstance(h, PrefectConsoleHandler)]
    for h, _ in quiet:
        h.setLevel(max(h.level, logging.WARNING))
    with temporary_settings(updates={"api.url": stack["prefect_api"],
                                     "flows.heartbeat_frequency": None}):
        try:
            with SyncClientContext.get_or_create():
                yield
        finally:
            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)
            for h, level in quiet:
                h.setLevel(level)


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
    start_day = pendulum.instance(opts.start).in_timezone(tz).date()
    people: list[str] = list(stack["person_ids"])
    # applications arrive over the first five working days
    arrivals: dict[date, list[str]] = {}
    for i, pid in enumerate(people):
        arrivals.setdefault(cal.add_working_days(start_day, i % 5), []).append(pid)
    index = {pid: i for i, pid in enumerate(people)}
    withdraw_day = (cal.add_working_days(start_day, (len(people) - 1) % 5 + 2)
                    if opts.withdrawal and people else None)
    life = (plan_life(seed=opts.seed, kinds=_route_kinds(engine, people, arrivals),
                      start=start_day, cal=cal,
                      withdrawn=len(people) - 1 if withdraw_day else None)
            if opts.life_events and opts.template == "supported_living" else None)
    refused: dict[str, str] = {}
    ensure_bot(engine)
    http = httpx.Client(timeout=60)
    sweeper = Sweeper(engine, clock, cfg, prefect=opts.prefect, region=calendars.DEFAULT_REGION)

    def tick(at: datetime) -> None:
        """Tell the agencies the business time; they send the answers due by then."""
        http.post(f"{stack['sim_url']}/_sim/tick",
                  json={"now": at.isoformat()}).raise_for_status()

    # every slot moves the clock and tells the agencies before anything else happens, so
    # they know the business time before anyone is registered (no machine-date fallback)
    day = start_day
    n_days = 0
    try:
        with _prefect_client(stack, opts.prefect):
            if opts.prefect and stack.get("prefect_api"):
                sweeper.register()  # the Deployments page shows it from the start
            while n_days < opts.max_days:
                day_moved = 0.0
                for hh, mm in SLOTS:
                    at = pendulum.datetime(day.year, day.month, day.day, hh, mm, tz=tz)
                    clock.freeze(at)
                    if not day_moved:
                        day_moved = time.monotonic()
                    if (hh, mm) == REGISTER_SLOT:
                        _settle(day_moved, opts.clock_settle_seconds)
                    tick(at)
                    wait_idle(engine)
                    if (hh, mm) == REGISTER_SLOT:
                        for pid in arrivals.get(day, []):
                            with Session(engine, expire_on_commit=False) as s:
                                person = s.get(Person, pid)
                                if opts.template == "supported_living" and person:
                                    register_person_file(
                                        s, cfg, person, index[pid], at=at, seed=opts.seed,
                                        ipra_valid_until=ipra_last_day(
                                            life, index[pid], day, cal) if life else None,
                                        template_versions=life.template_versions(day)
                                        if life else None)
                                else:
                                    form_route(s, cfg, now=at, person_id=pid,
                                               template_code=opts.template,
                                               region=person.region if person
                                               else calendars.DEFAULT_REGION,
                                               ipra=current_ipra(s, pid),
                                               actor="demo:coordinator")
                                s.commit()
                        if day == withdraw_day:
                            with Session(engine, expire_on_commit=False) as s:
                                withdraw_consent(s, cfg, person_id=people[-1], now=at,
                                                 actor="demo:coordinator")
                                s.commit()
                        if life:
                            life_events.act(engine, cfg, life, people, day=day, now=at,
                                            seed=opts.seed, refused=refused)
                        if opts.template == "supported_living":
                            # 000 п.10, п.13–15: the person's choice with the assessment
                            decide_branches(engine, cfg, index, now=at, seed=opts.seed)
                        wait_idle(engine)
                    sweeper(at)
                    wait_idle(engine)
                leave = opts.leave_work_open and people_have_work(engine)
                if not leave and act_on_escalations(engine, cfg, now=clock.now()):
                    wait_idle(engine)
                done, total = _progress(engine)
                if progress:
                    progress(done, opts.persons, day)
                n_days += 1
                if leave or (total == opts.persons and done == total):
                    break
                day = day + timedelta(days=1)
    finally:
        http.close()
    if opts.prefect:  # let the Prefect mirror catch up, so the UI shows the final states
        try:
            _wait_jobs(engine, [JobKind.mirror_route], timeout=120)
        except TimeoutError:
            pass
    return _summary(engine, stack, opts, sweeper, start_day, day, n_days,
                    time.monotonic() - t0)


def _route_kinds(engine: Engine, people: list[str],
                 arrivals: dict[date, list[str]]) -> list[str]:
    """The route kind each person's file forms (in generation order), on the day they apply:
    who the scripted life events can happen to (``sim.life_events.plan_life``)."""
    day_of = {pid: day for day, pids in arrivals.items() for pid in pids}
    with Session(engine) as s:
        persons = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_(people)))}
    return [route_kind_of(persons[pid], i, day_of[pid]) for i, pid in enumerate(people)]


def _settle(since: float, seconds: float) -> None:
    """Let ``seconds`` of real time pass since ``since`` (process clock caches; see
    ``DemoOptions.clock_settle_seconds``). Not a wait for business time."""
    left = since + seconds - time.monotonic()
    if left > 0:
        time.sleep(left)


def _progress(engine: Engine) -> tuple[int, int]:
    with Session(engine) as s:
        total = s.exec(select(func.count()).select_from(Route)).one()
        done = s.exec(select(func.count()).select_from(Route)
                      .where(Route.status != RouteStatus.active)).one()
    return int(done), int(total)


def _summary(engine: Engine, stack: dict[str, Any], opts: DemoOptions, sweeper: Sweeper,
             start: date, end: date, n_days: int, wall: float) -> DemoSummary:
    stats = httpx.get(f"{stack['sim_url']}/_sim/stats", timeout=10).json()
    with Session(engine) as s:
        routes = list(s.exec(select(Route)))
        steps = list(s.exec(select(Step)))
        # every answer an agency gave, whether or not it still moved its route: a recurring
        # check answered in the tick that completes the route is applied before the
        # completion or finds its request withdrawn by it, as the worker's order has it
        answers = list(s.exec(select(AgencyAnswer).where(col(AgencyAnswer.effect).in_(
            [AnswerEffect.moved_route, AnswerEffect.request_cancelled]))))
        escs = list(s.exec(select(Escalation)))
        requests = s.exec(select(func.count()).select_from(AgencyRequest)).one()
        sup_by = Counter(s.exec(select(AuditEvent.action)
                                .where(col(AuditEvent.actor) == f"staff:{BOT_ID}")
                                .where(col(AuditEvent.action).in_(SUPERVISOR_ACTIONS))))
    by_level = {lvl.name: sum(1 for e in escs if e.level == lvl) for lvl in EscalationLevel}
    overdue_steps = len({e.step_id for e in escs if e.level >= EscalationLevel.overdue})
    return DemoSummary(
        persons=opts.persons,
        seed=opts.seed,
        routes=len(routes),
        routes_completed=sum(r.status is RouteStatus.completed for r in routes),
        routes_active=sum(r.status is RouteStatus.active for r in routes),
        routes_cancelled=sum(r.status is RouteStatus.cancelled for r in routes),
        routes_terminated=sum(r.status is RouteStatus.terminated for r in routes),
        steps=len(steps),
        steps_done=sum(st.status.terminal for st in steps),
        answers_on_time=sum(a.late_working_days == 0 for a in answers),
        answers_late=sum(a.late_working_days > 0 for a in answers),
        absent_notices=sum(a.outcome is AnswerOutcome.absent for a in answers),
        overdue_steps=overdue_steps,
        escalations=by_level,
        supervisor_actions=sum(sup_by.values()),
        supervisor_actions_by_kind={a: sup_by.get(a, 0) for a in SUPERVISOR_ACTIONS},
        requests=int(requests),
        distinct_keys_at_agencies=int(stats["distinct_keys"]),
        deliveries_at_agencies=int(stats["deliveries"]),
        agency_fates=dict(stats["fates"]),
        sweeps=sweeper.sweeps,
        sweeps_with_timers_due=sweeper.sweeps_with_due,
        timers_fired=dict(sorted(sweeper.fired.items())),
        simulated_from=start.isoformat(),
        simulated_to=end.isoformat(),
        simulated_days=n_days,
        wall_seconds=round(wall, 2),
        prefect_ui=stack["prefect_ui"],
        api_url=stack["api_url"],
        flow_runs_mirrored=sum(1 for r in routes if r.prefect_flow_run_id),
        sweeper_flow_runs=(sweeper.runs_in_prefect(stack["prefect_api"])
                           if opts.prefect and stack.get("prefect_api") else 0),
        sweeper_deployment_id=str(sweeper.deployment_id) if sweeper.deployment_id else None,
        **_files_summary(engine, routes, steps),
        **_outcomes_summary(engine, routes),
    )


ROUTE_ACTIONS = ("terminated", "participant_refused", "participant_resumed", "migrated",
                 "branches_decided")
"""Route-level audit actions counted as outcomes beside the route's status (issue 11:
termination with its reason, 004 п.13; refuse / resume, п.11; template migration; a
supported-living route's branch decision, 000 п.13–15)."""


def _outcomes_summary(engine: Engine, routes: list[Route]) -> dict[str, Any]:
    """Routes by kind, and per kind by outcome: the route's status (completed, cancelled,
    suspended, active, and any status added later) and the route-level audit actions
    ``ROUTE_ACTIONS`` — ``terminated`` by its reason (``after.reason``, else the record's
    ``reason``), counted generically so that outcomes other use cases add appear when they
    land."""
    kind_of = {r.id: r.template for r in routes}
    outcomes: dict[str, Counter[str]] = {}
    for r in routes:
        outcomes.setdefault(r.template, Counter())[r.status.value] += 1
    with Session(engine) as s:
        events = list(s.exec(select(AuditEvent).where(
            col(AuditEvent.entity) == "route", col(AuditEvent.action).in_(ROUTE_ACTIONS))))
    for e in events:
        kind = kind_of.get(e.entity_id)
        if kind is None:
            continue
        label = e.action
        if e.action == "terminated":
            reason = (e.after or {}).get("reason") or e.reason or "unspecified"
            label = f"terminated:{reason}"
        outcomes[kind][label] += 1
    return {
        "routes_by_kind": dict(sorted(Counter(r.template for r in routes).items())),
        "route_outcomes": {k: dict(sorted(v.items())) for k, v in sorted(outcomes.items())},
    }


def _files_summary(engine: Engine, routes: list[Route], steps: list[Step]) -> dict[str, Any]:
    """The persons' files: ИПРА, applications by kind, decisions, withdrawals."""
    suspended = {r.id for r in routes if r.status is RouteStatus.suspended}
    with Session(engine) as s:
        apps = list(s.exec(select(ApplicationRecord)))
        ipra = s.exec(select(func.count()).select_from(IpraRecord)).one()
        withdrawals = s.exec(select(func.count()).select_from(ConsentVersion)
                             .where(col(ConsentVersion.withdrawn_at).is_not(None))).one()
    return {
        "ipra_imported": int(ipra),
        "applications": len(apps),
        "applications_by_kind": dict(sorted(Counter(a.kind for a in apps).items())),
        "applications_eligible": sum(a.eligible for a in apps),
        "applications_ineligible": sum(not a.eligible for a in apps),
        "consent_withdrawals": int(withdrawals),
        "routes_suspended": len(suspended),
        "steps_suspended": sum(st.route_id in suspended and not st.status.terminal
                               for st in steps),
    }


def steps_waiting(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(Step)
                          .where(Step.status == StepStatus.awaiting)).one())
