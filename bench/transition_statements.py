"""Statements and CPU per use case of a route's life, in one process (no HTTP, no worker):
register, deliver (the agency took the request), store an answer, apply it.

    .venv/bin/python bench/transition_statements.py --database postgresql+psycopg://…/bench
    .venv/bin/python bench/transition_statements.py --show apply   # the statements of one

The database's schema is dropped and made anew (PostgreSQL) or a temp SQLite file is used.
Figures, not a test: where a transition's time goes, statement by statement.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
from sqlalchemy import event
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fresh_db import fresh_database  # noqa: E402
from engine.answers.intake import AnswerIn, IncomingAnswer, record_answers  # noqa: E402
from engine.routes.transitions import (  # noqa: E402
    EngineConfig,
    apply_answer,
    mark_delivered,
    register_application,
)
from models.agencies import AgencyRequest, AnswerOutcome, RequestState  # noqa: E402
from models.templates import Ladder  # noqa: E402
from sim.seed import make_persons, seed_agencies  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default="")
    ap.add_argument("--routes", type=int, default=50)
    ap.add_argument("--show", default="", help="print the statements of this use case")
    args = ap.parse_args()
    eng = fresh_database(args.database, prefix="stmts-")
    count: Counter[str] = Counter()
    shown: Counter[str] = Counter()
    phase = ["none"]

    @event.listens_for(eng, "before_cursor_execute")
    def _count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        count[phase[0]] += 1
        if phase[0] == args.show:
            shown[" ".join(statement.split())[:110]] += 1

    cfg = EngineConfig(sender_region="39", public_base_url="http://127.0.0.1:9",
                       default_ladder=Ladder(1, 2), mirror=True)
    now = pendulum.datetime(2026, 3, 2, 10, tz="Europe/Kaliningrad")
    with Session(eng) as s:
        seed_agencies(s, endpoints={a: f"http://127.0.0.1:9/{a}" for a in
                                    ("msp39", "mz39", "mo39")})
        pids = [p.id for p in make_persons(s, args.routes)]
        s.commit()
    cpu: Counter[str] = Counter()
    runs: Counter[str] = Counter()

    def timed(name: str, fn: Callable[[], None]) -> None:
        phase[0] = name
        t = time.process_time()
        fn()
        cpu[name] += time.process_time() - t
        runs[name] += 1
        phase[0] = "none"

    def register(pid: str) -> None:
        with Session(eng) as s:
            register_application(s, cfg, now=now, person_id=pid,
                                 template_code="supported_living", template_version=0)
            s.commit()

    def deliver(rid: str) -> None:
        with Session(eng, expire_on_commit=False) as s:
            req = s.get(AgencyRequest, rid)
            assert req is not None
            mark_delivered(s, cfg, req, now=now)
            s.commit()

    def store(rid: str, agency: str, out: list[int]) -> None:
        with Session(eng) as s:
            res = record_answers(s, [IncomingAnswer(agency, f"w-{rid}", AnswerIn(
                rid, AnswerOutcome.provided, {}, None))], now=now)
            s.commit()
        out.append(res[0].answer_id)  # type: ignore[union-attr]

    def apply(aid: int) -> None:
        with Session(eng, expire_on_commit=False) as s:
            apply_answer(s, cfg, aid, now=now)
            s.commit()

    for pid in pids:
        timed("register", lambda pid=pid: register(pid))  # type: ignore[misc]
    for _ in range(3):
        with Session(eng) as s:
            reqs = [(r.id, r.agency_id) for r in s.exec(
                select(AgencyRequest).where(AgencyRequest.state == RequestState.queued))]
        for rid, _a in reqs:
            timed("deliver", lambda rid=rid: deliver(rid))  # type: ignore[misc]
        ids: list[int] = []
        for rid, agency in reqs:
            timed("store", lambda rid=rid, agency=agency, ids=ids: store(rid, agency, ids))  # type: ignore[misc]  # noqa: E501
        for aid in ids:
            timed("apply", lambda aid=aid: apply(aid))  # type: ignore[misc]
    print(f"{eng.dialect.name}, {args.routes} routes × 3 steps")
    for name in ("register", "deliver", "store", "apply"):
        n = runs[name]
        print(f"{name:9s} {count[name] / n:5.1f} statements  {1000 * cpu[name] / n:6.2f} ms CPU")
    for stmt, n in shown.most_common():
        print(f"{n / max(runs[args.show], 1):5.1f}× {stmt}")


if __name__ == "__main__":
    main()
