"""Route-engine benchmark: the same scenario three ways, side by side, plus the waiting-route
memory and webhook-latency targets.

Scenario: N routes × 3 steps; each step sends a signed interagency request to an agency over
HTTP and waits for the agency's signed answer (the echo agency answers at once). One applied
answer is one route transition.

    python bench/engine_bench.py                      # everything, default sizes
    python bench/engine_bench.py --n 200 --rivals dbos,prefect --waiting 100000 \
        --webhook-rate 200 --webhook-seconds 10

Prints a table and writes var/bench/engine_bench.json. Figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from sqlalchemy import func, text  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from bench.echo_agency import start_echo_agency  # noqa: E402
from bench.fresh_db import reset_schema  # noqa: E402
from bench.loadgen import PreparedRequest, paced_posts, percentile  # noqa: E402
from bench.rivals_common import ResourceSampler, RivalResult, wait_for  # noqa: E402
from engine.infra.clock import DbClock  # noqa: E402
from engine.infra.db import make_engine  # noqa: E402
from engine.infra.settings import Settings  # noqa: E402
from engine.routes.transitions import EngineConfig, register_application  # noqa: E402
from models.agencies import AgencyRequest, RequestState  # noqa: E402
from models.routes import Route, RouteStatus, Step, StepStatus  # noqa: E402
from models.template_files import version_of  # noqa: E402
from models.templates import Ladder  # noqa: E402
from sim.seed import (  # noqa: E402
    KALININGRAD_AGENCIES,
    example_lines,  # noqa: E402
    make_persons,
    make_secret,
    seed_agencies,
)
from tasks.processes import Proc, free_port  # noqa: E402
from tasks.signing import canonical_json, sign_headers  # noqa: E402

SCENARIO_AGENCIES = ["msp39", "mz39", "mo39"]  # the supported_living template's three steps


@dataclass(frozen=True)
class Scenario:
    """The routes a throughput run forms: a template (version 0: built-in; n: the data
    file), the agencies it asks, and the transitions each route makes."""

    template: str
    version: int
    agencies: tuple[str, ...]
    steps_per_route: int
    title: str


THREE_STEPS = Scenario("supported_living", 0, tuple(SCENARIO_AGENCIES), 3,
                       "3 steps one after another")
PARALLEL = Scenario(
    "accompaniment", 1, ("mse39", "psu39a", "psu39b"), 4,
    "accompaniment-v1 without an ИПРА: МСЭ informs ‖ the organisation forms the route, "
    "then route support ‖ situational help (2 parallel pairs; the aid steps not applicable)")


def _stack_env(db_url: str, api_url: str, work: Path, *,
               prefect: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "REHAB_DATABASE_URL": db_url, "REHAB_PUBLIC_BASE_URL": api_url,
           "REHAB_PREFECT_MIRROR": "true" if prefect else "false", "REHAB_VAR_DIR": str(work),
           "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    env.update(prefect or {})
    return env


def _fresh_schema(engine: Any) -> None:
    reset_schema(engine)


def _fresh_prefect_database(url: str) -> None:
    """Empty a PostgreSQL database for a Prefect server (schema ``public`` anew, with the
    ``pg_trgm`` extension Prefect needs)."""
    from sqlalchemy import create_engine, make_url, text

    eng = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with eng.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    eng.dispose()


class _Profiler:
    """``py-spy record`` of one process (raw folded stacks), stopped with SIGINT."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        import subprocess

        exe = Path(sys.executable).with_name("py-spy")
        self.out = out
        self.proc = subprocess.Popen(
            [str(exe), "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(out),
             "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> dict[str, Any]:
        import signal

        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 - a profiler that hangs must not hang the bench
            self.proc.kill()
        return profile_summary(self.out) if self.out.exists() else {}


def profile_summary(raw: Path, top: int = 25) -> dict[str, Any]:
    """Where the samples were: the functions of our code and the libraries, inclusive."""
    import re
    from collections import Counter

    incl: Counter[str] = Counter()
    lib_self: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n_s = line.rpartition(" ")
        if not stack or not n_s.isdigit():
            continue
        n = int(n_s)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        for f in set(frames):
            if re.search(r"\((engine|tasks|api|models|calendars)/", f):
                incl[f] += n
        m = re.search(r"\((.*)\)$", frames[-1])
        where = m.group(1) if m else frames[-1]
        where = re.sub(r".*site-packages/", "", where)
        where = where.split("/")[0] if "engine-perf" not in where and "/work/" not in where \
            else "ours:" + where.rsplit("/", 2)[-2]
        lib_self[where] += n
    pct = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {"samples": total,
            "ours_inclusive_pct": {f: pct(c) for f, c in incl.most_common(top)},
            "self_by_package_pct": {f: pct(c) for f, c in lib_self.most_common(12)}}


def _counts(engine: Any) -> dict[str, int]:
    """What our database says happened (not what the scenario assumes)."""
    from sqlalchemy import text

    q = {
        "transitions": "SELECT count(*) FROM agency_answer WHERE effect = 'moved_route'",
        "answers_stored": "SELECT count(*) FROM agency_answer",
        "routes_completed": "SELECT count(*) FROM route WHERE status = 'completed'",
        "requests_delivered": "SELECT count(*) FROM agency_request WHERE state = 'delivered'",
        "distinct_idempotency_keys": "SELECT count(DISTINCT idempotency_key) FROM agency_request",
        "routes_mirrored_completed": "SELECT count(*) FROM route WHERE status = 'completed' "
                                     "AND prefect_state LIKE 'COMPLETED:%'",
        "jobs_left": "SELECT count(*) FROM job",
    }
    with engine.connect() as conn:
        return {k: int(conn.execute(text(v)).scalar_one()) for k, v in q.items()}


def run_ours(n: int, *, workers: int = 1, database_url: str = "", prefect_database: str = "",
             mirror: bool = True, profile: Path | None = None,
             mirror_wait_s: float = 300.0, scenario: Scenario = THREE_STEPS) -> RivalResult:
    """Our engine as the product runs: API process + worker process(es) + the mirror process
    (``rehab mirror``) + a Prefect server it mirrors every route into (the mirror and the
    server at ``mirror_nice``, as the demo and ``rehab up`` start them); real HTTP both ways.
    The worker's CPU and the mirror's are reported apart.

    The clock runs from the first registration to the last route completed in our database
    (the mirror is not on a route's path: how long Prefect took to catch up afterwards is
    reported apart). Transitions, distinct idempotency keys and deliveries are counted from
    our database and from the agency."""
    from tasks.prefect_server import PrefectServer

    work = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    db_url = database_url or f"sqlite:///{work / 'rehab.db'}"
    engine = make_engine(db_url)
    _fresh_schema(engine)
    secrets = {a: make_secret(a) for a in scenario.agencies}
    echo = start_echo_agency(secrets)
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    spec = version_of(scenario.template, scenario.version) if scenario.version else None
    skipped = ({st.kind: st.when.describe() for st in spec.steps if not st.when.holds(None)}
               if spec else None)
    server: PrefectServer | None = None
    if mirror:
        if prefect_database:
            _fresh_prefect_database(prefect_database)
        server = PrefectServer(work / "prefect", database_url=prefect_database or None,
                               nice=Settings().mirror_nice).start()
    env = _stack_env(db_url, api_url, work, prefect=server.env() if server else None)
    with Session(engine) as s:
        seed_agencies(s, endpoints={a: echo.url_for(a) for a in scenario.agencies})
        people = make_persons(s, n)
        s.commit()
        person_ids = [p.id for p in people]
    procs = [Proc("api", ["api", "--port", str(api_port)], env=env, log_dir=work,
                  health_url=f"{api_url}/health").start()]
    procs += [Proc(f"worker{i}", ["worker", "--name", f"bench-{i}"], env=env,
                   log_dir=work).start() for i in range(workers)]
    if mirror:  # as the product runs it: a process of its own, at a lower CPU priority
        procs.append(Proc("mirror", ["mirror", "--name", "bench-mirror"], env=env,
                          log_dir=work).start())
    clock = DbClock(engine, ttl=0)
    clock.freeze(pendulum.datetime(2026, 3, 2, 10, tz="Europe/Kaliningrad"))
    cfg = EngineConfig(sender_region="39", public_base_url=api_url,
                       default_ladder=Ladder(1, 2), mirror=mirror)
    # long-running processes: their start-up (imports, connections) is not a transition's
    # cost — the clock and the CPU window start once each has registered its heartbeat
    names = {f"bench-{i}" for i in range(workers)} | ({"bench-mirror"} if mirror and any(
        p.name == "mirror" for p in procs) else set())

    def started() -> bool:
        with engine.connect() as conn:
            ids = {r[0] for r in conn.execute(text("SELECT process_id FROM process_beat"))}
        return names <= ids

    wait_for(started, timeout=120, interval=0.1, what="the workers' first heartbeats")
    profiler = _Profiler(procs[1].pid, work / "worker.raw") if profile else None
    mirror_s: float | None = None
    try:
        with ResourceSampler(exclude=[echo.pid]) as sampler:
            sampler.labels[procs[0].pid] = "api"
            for p in procs[1:]:
                sampler.labels[p.pid] = p.name
            if server is not None and server.pid is not None:
                sampler.labels[server.pid] = "prefect-server"
            t0 = time.perf_counter()
            for pid in person_ids:
                with Session(engine) as s:
                    register_application(s, cfg, now=clock.now(), person_id=pid,
                                         template_code=scenario.template,
                                         template_version=scenario.version,
                                         not_applicable=skipped)
                    s.commit()

            def done() -> bool:
                with Session(engine) as s:
                    return int(s.exec(select(func.count()).select_from(Route).where(
                        Route.status == RouteStatus.completed)).one()) == n

            wait_for(done, timeout=600, interval=0.05, what="all routes completed")
            seconds = time.perf_counter() - t0
            sampler.sample()
            cpu_window = sampler.per_process_cpu_s()
            if mirror:
                def mirrored() -> bool:
                    return _counts(engine)["routes_mirrored_completed"] >= n

                try:
                    wait_for(mirrored, timeout=mirror_wait_s, interval=0.5,
                             what="the Prefect mirror")
                    mirror_s = time.perf_counter() - t0 - seconds
                except TimeoutError:
                    mirror_s = None
        prof = profiler.stop() if profiler else None
        stats = echo.stats()
        counted = _counts(engine)
    finally:
        for p in procs:
            p.stop()
        echo.stop()
        if server is not None:
            server.stop()
        engine.dispose()
        if profile is not None and (work / "worker.raw").exists():
            profile.mkdir(parents=True, exist_ok=True)
            shutil.copy(work / "worker.raw", profile / f"worker-{workers}w.raw")
        shutil.rmtree(work, ignore_errors=True)
    transitions = counted["transitions"]
    worker_cpu = sum(v for k, v in cpu_window.items() if k.startswith("worker"))
    cpu_all = sampler.per_process_cpu_s()
    mirror_cpu = sum(v for k, v in cpu_window.items() if k.startswith("mirror")) \
        if mirror else None
    mirror_cpu_all = sum(v for k, v in cpu_all.items() if k.startswith("mirror")) \
        if mirror else None
    notes: dict[str, Any] = {
        "counted": counted, "agency": stats,
        "distinct_keys_at_agency": stats.get("distinct_keys"),
        "duplicate_deliveries": int(stats.get("requests", 0)) - int(
            stats.get("distinct_keys", 0)),
        "worker_cpu_ms_per_transition": round(1000 * worker_cpu / transitions, 2)
        if transitions else None,
        "mirror_cpu_ms_per_transition": round(1000 * mirror_cpu / transitions, 2)
        if transitions and mirror_cpu is not None else None,
        "mirror_cpu_ms_per_transition_incl_catch_up": round(
            1000 * mirror_cpu_all / transitions, 2)
        if transitions and mirror_cpu_all is not None else None,
        "prefect_mirror": ("on, Prefect on " + ("postgresql" if prefect_database else "sqlite"))
        if mirror else "off",
        "mirror_caught_up_s_after_last_route": round(mirror_s, 1) if mirror_s is not None
        else None,
        "per_process_peak_mb": sampler.per_process_peak_mb(),
        "per_process_cpu_s_while_routes_ran": cpu_window,
        "per_process_cpu_s": sampler.per_process_cpu_s()}
    if prof is not None:
        notes["worker_profile"] = prof
    return RivalResult(
        name=f"ours ({workers} worker{'s' if workers > 1 else ''}, {engine.dialect.name}"
             f"{', mirror on' if mirror else ', mirror OFF'})",
        routes=n, transitions=transitions, seconds=seconds,
        transitions_per_s=transitions / seconds,
        peak_rss_mb=sampler.peak_rss_mb, threads_peak=sampler.threads_peak,
        expected_transitions=scenario.steps_per_route * n, notes=notes,
    )


def counts_ok(r: RivalResult, *, once: bool = False) -> tuple[bool, str]:
    """Did the run do exactly the scenario: every transition once, one idempotency key per
    request (counted, never assumed)? With ``once``, also each request delivered once (a
    resend after a timeout carries the same key — the agency dedupes it — but the
    duplicate-delivery target counts it)."""
    n3 = r.expected_transitions
    agency = r.notes.get("agency") or {}
    keys = int(agency.get("distinct_keys", -1))
    deliveries = int(agency.get("requests", -1))
    problems = []
    if r.transitions != n3:
        problems.append(f"transitions {r.transitions} ≠ {n3}")
    if keys != n3:
        problems.append(f"distinct keys at the agency {keys} ≠ {n3}")
    if once and deliveries != keys:
        problems.append(f"deliveries {deliveries} ≠ distinct keys {keys}")
    counted = r.notes.get("counted") or {}
    if "routes_completed" in counted and counted["routes_completed"] != r.routes:
        problems.append(f"routes completed {counted['routes_completed']} ≠ {r.routes}")
    if problems:
        return False, "COUNTS OFF: " + "; ".join(problems)
    resent = f", {deliveries - keys} resent with their key" if deliveries > keys else ""
    return True, f"counts ok ({n3} transitions, {keys} keys, {deliveries} deliveries{resent})"


def run_import(n: int, *, database_url: str = "", http: bool = True) -> dict[str, Any]:
    """``rehab import FILE`` of ``n`` generated applications (a fresh database): its
    routes/s, and the rows counted afterwards (each route fully formed)."""
    import subprocess

    from sqlalchemy import text

    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    db_url = database_url or f"sqlite:///{work / 'rehab.db'}"
    engine = make_engine(db_url)
    _fresh_schema(engine)
    try:
        with Session(engine) as s:
            seed_agencies(s, endpoints={a[0]: f"http://127.0.0.1:9/agencies/{a[0]}"
                                        for a in KALININGRAD_AGENCIES} if http else None)
            s.commit()
        DbClock(engine, ttl=0).freeze(pendulum.datetime(2026, 3, 2, 10,
                                                        tz="Europe/Kaliningrad"))
        path = work / "applications.jsonl"
        path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n"
                                for x in example_lines(n)))
        env = {**_stack_env(db_url, "http://127.0.0.1:9", work),
               "REHAB_PREFECT_MIRROR": "true"}  # as the product runs: mirror jobs too
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "cli.main", "import", str(path), "--json"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"rehab import failed ({out.returncode}): {out.stderr[-2000:]}")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        with engine.connect() as conn:
            rows = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                    for t in ("person", "route", "step", "agency_request", "timer",
                              "audit_event", "job")}
    finally:
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return {"applications": n, "database": engine.dialect.name,
            "channel": "http" if http else "inbox", **figures,
            "wall_s_incl_process_start": round(wall, 2), "rows": rows}


def run_waiting(n_wait: int, *, rate: float, seconds: float, database_url: str = "",
                warmup_seconds: float = 1.0, mixed_rate: float = 20.0) -> dict[str, Any]:
    """``n_wait`` routes waiting at once (inbox agencies: the rows only), then three phases
    over them, with the memory of our processes (API and worker) sampled throughout:

    1. acknowledgement: signed answers at ``rate``/s for ``seconds`` to the API alone (after
       ``warmup_seconds`` of the same load, not counted): what an agency waits for;
    2. catch-up: a worker starts on that backlog; applied answers (route transitions) per
       second until every acknowledged answer has moved its route;
    3. together: answers at ``mixed_rate``/s for ``seconds`` while the worker applies them
       as they come: acknowledgement latency again, and how long after its acknowledgement
       each answer moved its route.
    """
    work = Path(tempfile.mkdtemp(prefix="bench-wait-"))
    db_url = database_url or f"sqlite:///{work / 'rehab.db'}"
    engine = make_engine(db_url)
    _fresh_schema(engine)
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    clock = DbClock(engine, ttl=0)
    clock.freeze(pendulum.datetime(2026, 3, 2, 10, tz="Europe/Kaliningrad"))
    cfg = EngineConfig(sender_region="39", public_base_url=api_url,
                       default_ladder=Ladder(1, 2), mirror=False)
    t0 = time.perf_counter()
    with Session(engine) as s:
        seed_agencies(s)  # no endpoints: every request goes to the agency's inbox
        s.commit()
    # the region's existing routes come in as a `rehab import` does (engine/persons/bulk_import.py)
    from engine.persons.bulk_import import import_applications, read_applications

    lines = example_lines(n_wait, templates=("supported_living",))
    chunk = 10_000  # one transaction per chunk
    for i in range(0, n_wait, chunk):
        apps, errors = read_applications(json.dumps(x) for x in lines[i:i + chunk])
        assert not errors, errors[:3]
        with Session(engine) as s:
            import_applications(s, cfg, apps, now=clock.now(), actor="bench")
            s.commit()
        made = min(n_wait, i + chunk)
        el = time.perf_counter() - t0
        print(f"\r  registering waiting routes: {made}/{n_wait} ({made / el:.0f}/s)", end="",
              file=sys.stderr)
    print(file=sys.stderr)
    create_s = time.perf_counter() - t0
    n_warm, n_ack, n_mixed = int(rate * warmup_seconds), int(rate * seconds), int(
        mixed_rate * seconds)
    with Session(engine) as s:
        # an inbox agency's request waits for its receipt with its step still ``sending``
        # (298-п Порядок п.11; engine/routes/receipt.py): a route waits either way
        waiting = int(s.exec(select(func.count(func.distinct(Step.route_id))).where(
            col(Step.status).in_([StepStatus.sending, StepStatus.awaiting]))).one())
        tasks = [(r[0], r[1]) for r in s.exec(
            select(AgencyRequest.id, AgencyRequest.agency_id)
            .where(AgencyRequest.state == RequestState.delivered)
            .limit(n_warm + n_ack + n_mixed))]
    warm, acked = tasks[:n_warm], tasks[n_warm:n_warm + n_ack]
    mixed = tasks[n_warm + n_ack:]
    env = _stack_env(db_url, api_url, work)
    procs: list[Proc] = []
    out: dict[str, Any] = {"waiting_routes": waiting, "create_seconds": round(create_s, 1),
                           "database": engine.dialect.name}
    try:
        with ResourceSampler() as sampler:
            api = Proc("api", ["api", "--port", str(api_port)], env=env, log_dir=work,
                       health_url=f"{api_url}/health").start()
            procs.append(api)
            sampler.labels[api.pid] = "api"
            out["memory_mb_api_idle"] = _rss_mb(api.pid)
            asyncio.run(_paced_answers(api_url, warm, rate=rate))
            lat = asyncio.run(_paced_answers(api_url, acked, rate=rate))
            out["ack"] = _latency(lat, rate, "API alone")
            worker = Proc("worker", ["worker", "--name", "bench-w"], env=env,
                          log_dir=work).start()
            procs.append(worker)
            sampler.labels[worker.pid] = "worker"
            backlog = len(warm) + len(acked)
            t1 = time.perf_counter()
            wait_for(lambda: _answered(engine) >= backlog, timeout=1800, interval=0.2,
                     what="the backlog applied")
            drain = time.perf_counter() - t1
            out["catch_up"] = {"answers": backlog, "seconds": round(drain, 1),
                               "transitions_per_s": round(backlog / drain, 1)}
            lat = asyncio.run(_paced_answers(api_url, mixed, rate=mixed_rate))
            wait_for(lambda: _answered(engine) >= backlog + len(mixed), timeout=600,
                     interval=0.1, what="the answers applied")
            out["together"] = {**_latency(lat, mixed_rate, "API with a worker applying"),
                               **_move_lag(engine, [t for t, _ in mixed])}
            roles = sampler.roles_summary()
            out["peak_rss_mb_our_processes"] = round(sum(
                v["max_mb"] for k, v in roles.items() if k in ("api", "worker")), 1)
            out["per_process_peak_mb"] = sampler.per_process_peak_mb()
            out["per_process_cpu_s"] = sampler.per_process_cpu_s()
    finally:
        for p in procs:
            p.stop()
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)  # 100,000 routes: about 1 GB of SQLite
    return out


def _rss_mb(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def _answered(engine: Any) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(Step).where(
            Step.status == StepStatus.answered)).one())


def _latency(lat: list[tuple[float, int]], rate: float, what: str) -> dict[str, Any]:
    ok = sorted(x for x, code in lat if code == 200)
    return {
        "what": what, "rate_per_s": rate, "sent": len(lat), "acknowledged_2xx": len(ok),
        "latency_ms_p50": round(percentile(ok, 0.50) * 1000, 2) if ok else None,
        "latency_ms_p99": round(percentile(ok, 0.99) * 1000, 2) if ok else None,
        "latency_ms_max": round(ok[-1] * 1000, 2) if ok else None,
    }


def _move_lag(engine: Any, task_ids: list[str]) -> dict[str, Any]:
    """Real time from an answer's storing to the audit record of its step moving on."""
    from models.agencies import AgencyAnswer
    from models.audit import AuditEvent

    with Session(engine) as s:
        stored = {int(r[0]): r[1] for r in s.exec(
            select(AgencyAnswer.id, AgencyAnswer.received_real_at)
            .where(col(AgencyAnswer.request_id).in_(task_ids)))}
        moved = {}
        for ev in s.exec(select(AuditEvent).where(AuditEvent.action == "answer_provided")
                         .where(AuditEvent.entity == "step")):
            aid = (ev.after or {}).get("answer_id")
            if aid in stored:
                moved[aid] = ev.real_at
    lags = sorted((moved[a] - stored[a]).total_seconds() for a in stored if a in moved)
    if not lags:
        return {"route_moved_after_s_p50": None}
    return {"routes_moved": len(lags),
            "route_moved_after_s_p50": round(percentile(lags, 0.5), 3),
            "route_moved_after_s_p99": round(percentile(lags, 0.99), 3)}


async def _paced_answers(api_url: str, tasks: list[tuple[str, str]], *,
                         rate: float) -> list[tuple[float, int]]:
    """Open-loop load (bench/loadgen.py): signed answer ``i`` is due at ``i / rate`` s and
    its latency counts from then, whatever the latency of the others."""
    prepared = []
    for task_id, agency in tasks:
        raw = canonical_json({"task_id": task_id, "outcome": "provided",
                              "payload": {"bench": True}})
        h = sign_headers(make_secret(agency), f"bench-{task_id}", raw)
        h["content-type"] = "application/json"
        prepared.append(PreparedRequest(f"/webhooks/agencies/{agency}", h, raw))
    samples = await paced_posts(api_url, prepared, rate=rate, connections=64)
    return [(x.latency_s, x.status) for x in samples]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200,
                    help="routes in the throughput scenario (every engine runs this N)")
    ap.add_argument("--workers", type=int, default=1, help="our worker processes")
    ap.add_argument("--scenario", choices=("all", "parallel"), default="all",
                    help="parallel: only the parallel-steps throughput (a data template "
                         "whose steps run two at a time), with its transitions/s")
    ap.add_argument("--dup-check-workers", type=int, default=2,
                    help="a second run of ours with this many workers, for the duplicate-"
                    "delivery verdict (0: skip)")
    ap.add_argument("--rivals", default="dbos,prefect", help="dbos,prefect or none")
    ap.add_argument("--prefect-n", type=int, default=0,
                    help="routes for naive Prefect (default: --n; it takes ~2.5 s per "
                    "transition, so a smaller N is printed with its own N)")
    ap.add_argument("--prefect-max-seconds", type=float, default=240)
    ap.add_argument("--no-mirror", action="store_true",
                    help="ours without the Prefect mirror (not how the product runs)")
    ap.add_argument("--waiting", type=int, default=100_000, help="routes waiting at once")
    ap.add_argument("--import", dest="import_n", type=int, default=10_000,
                    help="applications in the `rehab import` scenario (0: skip)")
    ap.add_argument("--webhook-rate", type=float, default=200.0)
    ap.add_argument("--webhook-seconds", type=float, default=10.0)
    ap.add_argument("--mixed-rate", type=float, default=20.0,
                    help="answers/s while a worker applies them (phase 3 of --waiting)")
    ap.add_argument("--database", default="",
                    help="our database for every scenario (default: a fresh SQLite file); "
                    "e.g. postgresql+psycopg://root@127.0.0.1:5432/bench (its schema is "
                    "dropped and made anew)")
    ap.add_argument("--prefect-database", default="",
                    help="the Prefect server's database for ours' mirror (default: SQLite in "
                    "a temp folder), e.g. postgresql+asyncpg://root@127.0.0.1:5432/prefect "
                    "(emptied first)")
    ap.add_argument("--dbos-database", default="",
                    help="DBOS's system + domain database (default: --database when it is "
                    "PostgreSQL, else SQLite files); its schemas dbos and rival_dbos are "
                    "dropped and made anew")
    ap.add_argument("--mirror-wait", type=float, default=300.0,
                    help="seconds to wait, after the last route, for the Prefect mirror to "
                    "catch up (reported; not part of the transitions/s)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="py-spy the (first) worker; raw stacks and a summary go to this folder")
    args = ap.parse_args()
    import subprocess

    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"== machine: {os.cpu_count()} cores; {load}", file=sys.stderr)
    if args.scenario == "parallel":
        print(f"== parallel steps: {args.n} routes; {PARALLEL.title}", file=sys.stderr)
        par = run_ours(args.n, workers=args.workers, database_url=args.database,
                       prefect_database=args.prefect_database, mirror=not args.no_mirror,
                       mirror_wait_s=args.mirror_wait, scenario=PARALLEL)
        ok, why = counts_ok(par)
        print(par.line())
        print(f"counts: {'ok' if ok else 'WRONG'} ({why})")
        out = Path("var/bench")
        out.mkdir(parents=True, exist_ok=True)
        (out / "engine_bench_parallel.json").write_text(
            json.dumps({"machine_load": load, "parallel": par.as_dict()}, indent=2,
                       default=str))
        return
    pg = args.database.startswith("postgresql")
    results: list[RivalResult] = []
    print(f"== throughput: {args.n} routes × 3 steps", file=sys.stderr)
    ours = run_ours(args.n, workers=args.workers, database_url=args.database,
                    prefect_database=args.prefect_database, mirror=not args.no_mirror,
                    profile=args.profile, mirror_wait_s=args.mirror_wait)
    results.append(ours)
    print(ours.line())
    rivals = [r for r in args.rivals.split(",") if r and r != "none"]
    if "dbos" in rivals:
        from bench.rival_dbos import run as run_dbos

        results.append(run_dbos(args.n, database_url=args.dbos_database or (
            args.database if pg else "")))
        print(results[-1].line())
    if "prefect" in rivals:
        from bench.rival_prefect_naive import run as run_prefect

        pn = args.prefect_n or args.n
        r = run_prefect(pn, max_seconds=args.prefect_max_seconds)
        if pn != args.n or not r.completed:
            r.name = f"{r.name} (its own N={pn}{', capped' if not r.completed else ''})"
        results.append(r)
        print(results[-1].line())
    dup: RivalResult | None = None
    if args.dup_check_workers > 1:
        print(f"== {args.dup_check_workers} workers: duplicate deliveries", file=sys.stderr)
        dup = run_ours(args.n, workers=args.dup_check_workers, database_url=args.database,
                       prefect_database=args.prefect_database, mirror=not args.no_mirror,
                       mirror_wait_s=args.mirror_wait)
        results.append(dup)
        print(dup.line())
    print("\n| engine | routes | transitions (counted) | seconds | transitions/s | "
          "peak RSS MB | threads peak | ours ÷ it | counts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = ours.transitions_per_s / r.transitions_per_s if r.transitions_per_s else 0
        ok, why = counts_ok(r)
        print(f"| {r.name} | {r.routes} | {r.transitions}/{r.expected_transitions} | "
              f"{r.seconds:.1f} | {r.transitions_per_s:.2f} | {r.peak_rss_mb:.0f} | "
              f"{r.threads_peak} | {ratio:.2f} | "
              f"{why if not ok or 'resent' in why else 'ok'} |")
    cpu = ours.notes.get("worker_cpu_ms_per_transition")
    print(f"\nours: worker CPU {cpu} ms per transition while the routes ran; "
          f"mirror process {ours.notes.get('mirror_cpu_ms_per_transition')} ms "
          f"({ours.notes.get('mirror_cpu_ms_per_transition_incl_catch_up')} ms with its "
          f"catch-up); Prefect mirror caught up "
          f"{ours.notes.get('mirror_caught_up_s_after_last_route')} s after the last route")
    if "worker_profile" in ours.notes and args.profile is not None:
        prof = ours.notes["worker_profile"]
        (args.profile / "summary.json").write_text(json.dumps(prof, indent=2))
        print("worker profile (py-spy, % of samples):")
        for k, v in list(prof["self_by_package_pct"].items())[:10]:
            print(f"  {v:5.1f}%  self in {k}")
        for k, v in list(prof["ours_inclusive_pct"].items())[:15]:
            print(f"  {v:5.1f}%  in {k}")
    report: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "uptime": load},
                              "throughput": [r.as_dict() for r in results]}
    if args.import_n:
        print(f"\n== rehab import: {args.import_n} applications", file=sys.stderr)
        imp = run_import(args.import_n, database_url=args.database)
        report["import"] = imp
        print(json.dumps(imp, indent=2))
    if args.waiting:
        print(f"\n== {args.waiting} waiting routes; webhooks at {args.webhook_rate}/s",
              file=sys.stderr)
        w = run_waiting(args.waiting, rate=args.webhook_rate, seconds=args.webhook_seconds,
                        database_url=args.database, mixed_rate=args.mixed_rate)
        report["waiting"] = w
        print(json.dumps(w, indent=2, ensure_ascii=False))
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\n== targets (issue 9; {os.cpu_count()} cores; at the end: {load})")
    for line in _verdicts(results, ours, dup, report.get("waiting"), report.get("import")):
        print(line)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_bench.json").write_text(json.dumps(report, indent=2, default=str))


def _verdicts(results: list[RivalResult], ours: RivalResult, dup: RivalResult | None,
              waiting: dict[str, Any] | None, imported: dict[str, Any] | None) -> list[str]:
    """One line per target of the issue, with the figure it rests on. A run whose counts
    are off fails every verdict that rests on it."""
    out = []
    db = "postgresql" if "postgresql" in ours.name else "sqlite"
    ours_ok, ours_why = counts_ok(ours)
    if not ours_ok:
        out.append(f"NOT met: ours' run — {ours_why}")
    dbos = next((r for r in results if r.name == "dbos"), None)
    if dbos is not None and dbos.transitions_per_s:
        dbos_ok, dbos_why = counts_ok(dbos)
        ratio = ours.transitions_per_s / dbos.transitions_per_s
        met = ratio >= 1.0 and ours_ok and dbos_ok
        out.append(f"{'met' if met else 'NOT met'}: {db}: ours ÷ DBOS = {ratio:.2f} "
                   f"(≥ 1.0; {ours.transitions_per_s:.1f} vs {dbos.transitions_per_s:.1f} "
                   f"transitions/s{'' if dbos_ok else '; DBOS ' + dbos_why})")
    if db == "postgresql":
        met = ours.transitions_per_s >= 60 and ours_ok
        out.append(f"{'met' if met else 'NOT met'}: postgresql: ours with one worker "
                   f"{ours.transitions_per_s:.1f} transitions/s (≥ 60)")
    cpu = ours.notes.get("worker_cpu_ms_per_transition")
    if cpu is not None:
        out.append(f"{'met' if cpu <= 8 and ours_ok else 'NOT met'}: {db}: worker CPU "
                   f"{cpu:.1f} ms per transition (≤ 8; the mirror process apart: "
                   f"{ours.notes.get('mirror_cpu_ms_per_transition')} ms while the routes ran, "
                   f"{ours.notes.get('mirror_cpu_ms_per_transition_incl_catch_up')} ms with "
                   "its catch-up)")
    if dup is not None:
        ok, why = counts_ok(dup, once=True)
        d = dup.notes.get("duplicate_deliveries")
        out.append(f"{'met' if ok and d == 0 else 'NOT met'}: {db}: {dup.name}: "
                   f"{d} duplicate deliveries; {why}")
    if imported:
        rate = imported.get("routes_per_s", 0.0)
        out.append(f"{'met' if rate >= 1000 else 'NOT met'}: {imported['database']}: "
                   f"rehab import {imported['applications']} applications at {rate:.0f} "
                   "routes/s (≥ 1,000 on postgresql)")
    if waiting:
        mem = waiting["peak_rss_mb_our_processes"]
        out.append(f"{'met' if mem <= 1024 else 'NOT met'}: {waiting['waiting_routes']} routes "
                   f"waiting, our processes (API + worker) peaked at {mem:.0f} MB (≤ 1024)")
        ack = waiting["ack"]
        p99 = ack["latency_ms_p99"]
        ok = p99 is not None and p99 < 50 and ack["acknowledged_2xx"] == ack["sent"]
        out.append(f"{'met' if ok else 'NOT met'}: answers acknowledged at "
                   f"{ack['rate_per_s']:.0f}/s, p99 {p99} ms (< 50), "
                   f"{ack['acknowledged_2xx']}/{ack['sent']} acknowledged")
    return out


if __name__ == "__main__":
    main()
