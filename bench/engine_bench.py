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
from pathlib import Path
from typing import Any

import pendulum

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from sqlalchemy import func  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from bench.echo_agency import start_echo_agency  # noqa: E402
from bench.loadgen import PreparedRequest, paced_posts, percentile  # noqa: E402
from bench.rivals_common import ResourceSampler, RivalResult, wait_for  # noqa: E402
from engine.clock import DbClock  # noqa: E402
from engine.db import make_engine, migrate  # noqa: E402
from engine.routes import EngineConfig, register_application  # noqa: E402
from engine.seed import make_persons, make_secret, seed_agencies  # noqa: E402
from models.agencies import AgencyRequest, RequestState  # noqa: E402
from models.routes import Route, RouteStatus, Step, StepStatus  # noqa: E402
from models.templates import Ladder  # noqa: E402
from tasks.processes import Proc, free_port  # noqa: E402
from tasks.signing import canonical_json, sign_headers  # noqa: E402

SCENARIO_AGENCIES = ["msp39", "mz39", "mo39"]  # the supported_living template's three steps


def _stack_env(db_url: str, api_url: str, work: Path) -> dict[str, str]:
    return {**os.environ, "REHAB_DATABASE_URL": db_url, "REHAB_PUBLIC_BASE_URL": api_url,
            "REHAB_PREFECT_MIRROR": "false", "REHAB_VAR_DIR": str(work),
            "PYTHONPATH": str(ROOT)}


def _fresh_schema(engine: Any) -> None:
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate(engine)


def run_ours(n: int, *, workers: int = 1, database_url: str = "") -> RivalResult:
    """Our engine: API process + worker process(es) on SQLite, real HTTP both ways."""
    work = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    db_url = database_url or f"sqlite:///{work / 'rehab.db'}"
    engine = make_engine(db_url)
    _fresh_schema(engine)
    secrets = {a: make_secret(a) for a in SCENARIO_AGENCIES}
    echo = start_echo_agency(secrets)
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env = _stack_env(db_url, api_url, work)
    with Session(engine) as s:
        seed_agencies(s, endpoints={a: echo.url_for(a) for a in SCENARIO_AGENCIES})
        people = make_persons(s, n)
        s.commit()
        person_ids = [p.id for p in people]
    procs = [Proc("api", ["api", "--port", str(api_port)], env=env, log_dir=work,
                  health_url=f"{api_url}/health").start()]
    procs += [Proc(f"worker{i}", ["worker", "--name", f"bench-{i}"], env=env,
                   log_dir=work).start() for i in range(workers)]
    clock = DbClock(engine, ttl=0)
    clock.freeze(pendulum.datetime(2026, 3, 2, 10, tz="Europe/Kaliningrad"))
    cfg = EngineConfig(sender_region="39", public_base_url=api_url,
                       default_ladder=Ladder(1, 2), mirror=False)
    try:
        with ResourceSampler(exclude=[echo.pid]) as sampler:
            t0 = time.perf_counter()
            for pid in person_ids:
                with Session(engine) as s:
                    register_application(s, cfg, now=clock.now(), person_id=pid,
                                         template_code="supported_living")
                    s.commit()

            def done() -> bool:
                with Session(engine) as s:
                    return int(s.exec(select(func.count()).select_from(Route).where(
                        Route.status == RouteStatus.completed)).one()) == n

            wait_for(done, timeout=600, interval=0.05, what="all routes completed")
            seconds = time.perf_counter() - t0
        stats = echo.stats()
    finally:
        for p in procs:
            p.stop()
        echo.stop()
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    transitions = 3 * n
    return RivalResult(
        name=f"ours ({workers} worker{'s' if workers > 1 else ''}, {engine.dialect.name})",
        routes=n,
        transitions=transitions, seconds=seconds, transitions_per_s=transitions / seconds,
        peak_rss_mb=sampler.peak_rss_mb, threads_peak=sampler.threads_peak,
        expected_transitions=transitions,
        notes={"distinct_keys_at_agency": stats.get("distinct_keys"),
               "per_process_peak_mb": sampler.per_process_peak_mb(),
               "per_process_cpu_s": sampler.per_process_cpu_s()},
    )


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
    batch = 100  # one transaction each; larger sessions grow slower per registration
    made = 0
    while made < n_wait:
        k = min(batch, n_wait - made)
        with Session(engine) as s:
            for p in make_persons(s, k, seed=made):
                register_application(s, cfg, now=clock.now(), person_id=p.id,
                                     template_code="supported_living")
            s.commit()
        made += k
        el = time.perf_counter() - t0
        print(f"\r  registering waiting routes: {made}/{n_wait} ({made / el:.0f}/s)", end="",
              file=sys.stderr)
    print(file=sys.stderr)
    create_s = time.perf_counter() - t0
    n_warm, n_ack, n_mixed = int(rate * warmup_seconds), int(rate * seconds), int(
        mixed_rate * seconds)
    with Session(engine) as s:
        waiting = int(s.exec(select(func.count()).select_from(Step).where(
            Step.status == StepStatus.awaiting)).one())
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
    ap.add_argument("--n", type=int, default=200, help="routes in the throughput scenario")
    ap.add_argument("--workers", type=int, default=1, help="our worker processes")
    ap.add_argument("--rivals", default="dbos,prefect", help="dbos,prefect or none")
    ap.add_argument("--prefect-n", type=int, default=5, help="routes for naive Prefect")
    ap.add_argument("--prefect-max-seconds", type=float, default=240)
    ap.add_argument("--waiting", type=int, default=100_000, help="routes waiting at once")
    ap.add_argument("--webhook-rate", type=float, default=200.0)
    ap.add_argument("--webhook-seconds", type=float, default=10.0)
    ap.add_argument("--mixed-rate", type=float, default=20.0,
                    help="answers/s while a worker applies them (phase 3 of --waiting)")
    ap.add_argument("--database", default="",
                    help="our database for both scenarios (default: a fresh SQLite file); "
                    "e.g. postgresql+psycopg://root@127.0.0.1:5432/bench (its schema is "
                    "dropped and made anew)")
    args = ap.parse_args()
    results: list[RivalResult] = []
    print(f"== throughput: {args.n} routes × 3 steps", file=sys.stderr)
    ours = run_ours(args.n, workers=args.workers, database_url=args.database)
    results.append(ours)
    print(ours.line())
    rivals = [r for r in args.rivals.split(",") if r and r != "none"]
    if "dbos" in rivals:
        from bench.rival_dbos import run as run_dbos

        results.append(run_dbos(args.n))
        print(results[-1].line())
    if "prefect" in rivals:
        from bench.rival_prefect_naive import run as run_prefect

        results.append(run_prefect(args.prefect_n, max_seconds=args.prefect_max_seconds))
        print(results[-1].line())
    print("\n| engine | routes | transitions | seconds | transitions/s | peak RSS MB | "
          "threads peak | ours ÷ it |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = ours.transitions_per_s / r.transitions_per_s if r.transitions_per_s else 0
        print(f"| {r.name} | {r.routes} | {r.transitions}/{r.expected_transitions} | "
              f"{r.seconds:.1f} | {r.transitions_per_s:.2f} | {r.peak_rss_mb:.0f} | "
              f"{r.threads_peak} | {ratio:.2f} |")
    report: dict[str, Any] = {"throughput": [r.as_dict() for r in results]}
    if args.waiting:
        print(f"\n== {args.waiting} waiting routes; webhooks at {args.webhook_rate}/s",
              file=sys.stderr)
        w = run_waiting(args.waiting, rate=args.webhook_rate, seconds=args.webhook_seconds,
                        database_url=args.database, mixed_rate=args.mixed_rate)
        report["waiting"] = w
        print(json.dumps(w, indent=2, ensure_ascii=False))
    print("\n== targets (issue: the route engine)")
    for line in _verdicts(results, report.get("waiting")):
        print(line)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_bench.json").write_text(json.dumps(report, indent=2, default=str))


def _verdicts(results: list[RivalResult], waiting: dict[str, Any] | None) -> list[str]:
    """One line per target of the issue, with the figure it rests on."""
    ours = results[0]
    out = []
    dbos = next((r for r in results if r.name == "dbos"), None)
    if dbos is not None and dbos.transitions_per_s:
        ratio = ours.transitions_per_s / dbos.transitions_per_s
        out.append(f"{'met' if ratio >= 1.0 else 'NOT met'}: ours ÷ DBOS = {ratio:.2f} "
                   f"(≥ 1.0; {ours.transitions_per_s:.1f} vs {dbos.transitions_per_s:.1f} "
                   "transitions/s)")
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
