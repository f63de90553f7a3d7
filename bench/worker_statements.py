"""Statements and CPU of the worker per route transition, in one process (no HTTP server,
no API process): the worker's own ``run_once`` claims, sends (to an in-process agency that
takes every request), records deliveries and applies answers; the answers are stored
between its passes, outside the measure, as the API would.

    .venv/bin/python bench/worker_statements.py --database postgresql+psycopg://…/bench
    .venv/bin/python bench/worker_statements.py --show      # the statements, most first

Figures, not a test: statements per transition do not depend on the machine's load, CPU
per transition much less than transitions/s. The database's schema is dropped and made anew
(PostgreSQL) or a temp SQLite file is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pendulum
from sqlalchemy import event, func, text
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fresh_db import fresh_database  # noqa: E402
from engine.answers.intake import AnswerIn  # noqa: E402
from engine.infra import audit  # noqa: E402
from engine.infra.clock import DbClock  # noqa: E402
from engine.infra.settings import Settings  # noqa: E402
from engine.routes.transitions import (  # noqa: E402
    EngineConfig,
    record_answer,
    register_application,
)
from engine.runtime.worker import Worker  # noqa: E402
from models.agencies import Agency, AgencyAnswer, AnswerOutcome  # noqa: E402
from models.templates import Ladder  # noqa: E402
from sim.seed import make_persons, seed_agencies  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default="")
    ap.add_argument("--routes", type=int, default=100)
    ap.add_argument("--show", action="store_true", help="print the worker's statements")
    args = ap.parse_args()
    eng = fresh_database(args.database, prefix="wstmts-")
    clock = DbClock(eng, ttl=0)
    clock.freeze(pendulum.datetime(2026, 3, 2, 10, tz="Europe/Kaliningrad"))
    cfg = EngineConfig(sender_region="39", public_base_url="http://127.0.0.1:9",
                       default_ladder=Ladder(1, 2), mirror=False)
    with Session(eng) as s:
        seed_agencies(s, endpoints={a: f"http://agency.test/{a}" for a in
                                    ("msp39", "mz39", "mo39")})
        pids = [p.id for p in make_persons(s, args.routes)]
        s.commit()
    for pid in pids:
        with Session(eng) as s:
            register_application(s, cfg, now=clock.now(), person_id=pid,
                                 template_code="supported_living", template_version=0)
            s.commit()

    measuring = [False]
    count = [0]
    shown: Counter[str] = Counter()

    @event.listens_for(eng, "before_cursor_execute")
    def _count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if measuring[0]:
            count[0] += 1
            if args.show:
                shown[" ".join(statement.split())[:100]] += 1

    # the audit records go to PostgreSQL by COPY on the raw connection, which SQLAlchemy's
    # events do not see: counted here, one statement each
    write_audit = audit._insert_rows

    def counted_audit(conn: Any, rows: list[dict[str, Any]]) -> None:
        if measuring[0] and eng.dialect.name == "postgresql":
            count[0] += 1
            if args.show:
                shown["COPY audit_event … FROM STDIN"] += 1
        write_audit(conn, rows)

    audit._insert_rows = counted_audit  # type: ignore[assignment]
    posted: list[tuple[str, str]] = []  # (agency id, task id) the agency took
    pg_cpu = [0.0]  # CPU seconds of this database's PostgreSQL backends during the passes
    backends = _backend_cpu_reader(eng)

    def agency(request: httpx.Request) -> httpx.Response:
        posted.append((request.url.path.rsplit("/", 1)[-1],
                       json.loads(request.content)["task_id"]))
        return httpx.Response(202)

    settings = Settings(environment="test", prefect_mirror=False)
    cpu = 0.0
    wall = 0.0

    wclock = DbClock(eng, ttl=settings.clock_cache_seconds)  # the worker's, as it runs

    async def run() -> None:
        nonlocal cpu, wall
        async with Worker(eng, wclock, cfg, settings, worker_id="ws") as w:
            assert w._http is not None
            await w._http.aclose()
            w._http = httpx.AsyncClient(transport=httpx.MockTransport(agency))
            idle = 0
            while idle < 3:
                before = backends()
                measuring[0] = True
                t, t0 = time.process_time(), time.perf_counter()
                done = await w.run_once()
                cpu += time.process_time() - t
                wall += time.perf_counter() - t0
                measuring[0] = False
                after = backends()
                pg_cpu[0] += sum(v - before.get(pid, 0.0) for pid, v in after.items())
                idle = 0 if done else idle + 1
                with Session(eng) as s:
                    agencies = {a.id: a for a in s.exec(select(Agency))}
                    for agency_id, task in posted:
                        record_answer(s, agency=agencies[agency_id], webhook_id=f"w-{task}",
                                      answer=AnswerIn(task, AnswerOutcome.provided, {}, None),
                                      now=clock.now())
                    s.commit()
                posted.clear()

    asyncio.run(run())
    with Session(eng) as s:
        transitions = int(s.exec(select(func.count()).select_from(AgencyAnswer).where(
            AgencyAnswer.effect == "moved_route")).one())
    print(f"{eng.dialect.name}, {args.routes} routes × 3 steps: {transitions} transitions; "
          f"worker {count[0] / transitions:.1f} statements, "
          f"{1000 * cpu / transitions:.2f} ms CPU, {1000 * wall / transitions:.2f} ms wall "
          "per transition" + (f"; PostgreSQL's backends {1000 * pg_cpu[0] / transitions:.2f} "
                              "ms CPU" if eng.dialect.name == "postgresql" else ""))
    for stmt, n in shown.most_common(40):
        print(f"{n / transitions:5.2f}× {stmt}")


def _backend_cpu_reader(eng: Any) -> Any:
    """A function giving the CPU seconds (user + system) of each PostgreSQL backend serving
    this database, by pid, read from ``/proc`` (the server on this machine; empty
    otherwise). A backend started during a pass counts from zero."""
    if eng.dialect.name != "postgresql" or not Path("/proc/self/stat").exists():
        return dict
    tick = os.sysconf("SC_CLK_TCK")
    pid_sql = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")

    def read() -> dict[int, float]:
        with eng.connect() as conn:
            pids = [int(p) for p in conn.execute(pid_sql).scalars()]
        out: dict[int, float] = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # another machine's server, or the backend is gone
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        return out

    return read


if __name__ == "__main__":
    main()
