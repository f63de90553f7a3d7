"""Rival 2: the route scenario on DBOS durable workflows, writing the domain rows ours writes.

Each route is a DBOS workflow. For each step a ``@DBOS.step`` posts the signed request to
the echo agency (callback_url → this process's :class:`CallbackServer`), a DBOS transaction
step records the delivery, then ``DBOS.recv(topic=task_id)`` waits; the callback handler
verifies the answer's signature and ``DBOS.send``s it to the route's workflow (idempotency
key = the answer's webhook-id); a DBOS transaction step applies the answer (one
transition). A waiting sync workflow holds one executor thread, which ``threads_peak``
shows.

**The domain rows.** What a DBOS user writes for the product is what our engine writes per
transition, in the same kind of tables (``rival_route``, ``rival_step``, ``rival_timer``,
``rival_audit``), each change in one DBOS transaction step (``SQLAlchemyDatasource``,
READ COMMITTED as ours): registering a route inserts it, its steps, the first step's
send-by timers (working days from our calendars, as ours) and audit records; a delivery
moves the step to awaiting, cancels its send-by timers and schedules the answer-by ladder
(reminder, overdue, escalation); an answer moves the step to answered, cancels its timers
and starts the next step (or completes the route) — one audit record per change and per
timer, as ours. Transitions are **counted** from ``rival_audit`` (``answer_applied``
records), not from a Python counter.

**Databases.** With ``database_url`` ``postgresql://…`` that one PostgreSQL database holds
both DBOS's system tables (schema ``dbos``) and the domain tables (schema ``rival_dbos``),
as ours holds everything in one. By default (SQLite) DBOS's system database and the domain
tables are two files in a temp folder (SQLite has one writer per file; in one file every
workflow checkpoint queued behind the domain writes: ~7 transitions/s at N=20).
SQLite has no LISTEN/NOTIFY: a waiting ``recv`` learns of a ``send`` from DBOS's
notification poll, set here to 0.1 s (``--poll``); on PostgreSQL DBOS listens.

Run: ``.venv/bin/python bench/rival_dbos.py --routes 200 [--database postgresql://…]``
(prints the figures, JSON with ``--json``). Memory counts this process only (the echo
agency is another process).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dbos import DBOS, DBOSConfig, SetWorkflowID, SQLAlchemyDatasource  # noqa: E402

import calendars  # noqa: E402
from bench.echo_agency import start_echo_agency  # noqa: E402
from bench.rivals_common import (  # noqa: E402
    CallbackAnswer,
    CallbackServer,
    ResourceSampler,
    RivalResult,
    build_request,
    make_secrets,
    post_request,
    step_for,
    task_id_for,
)

NAME = "dbos"
SCHEMA = "rival_dbos"
REGION = "39"  # deadlines in working days of the same calendar as ours

_META = sa.MetaData()
ROUTES = sa.Table(
    "rival_route", _META,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("current_seq", sa.Integer, nullable=False),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
)
STEPS = sa.Table(
    "rival_step", _META,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("route_id", sa.String(40), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("agency", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("request_id", sa.String(60)),
    sa.Column("send_by", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("answer_by", sa.DateTime(timezone=True)),
    sa.Column("answered_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(20)),
)
TIMERS = sa.Table(
    "rival_timer", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("step_id", sa.String(40), nullable=False),
    sa.Column("route_id", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Index("ix_rival_timer_step_status", "step_id", "status"),
)
AUDIT = sa.Table(
    "rival_audit", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("route_id", sa.String(40)),
    sa.Column("entity", sa.String(30), nullable=False),
    sa.Column("entity_id", sa.String(80), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("after", sa.JSON),
)


@dataclass
class _Run:
    secrets: dict[str, str]
    agency_urls: dict[str, str]
    callbacks: CallbackServer
    client: httpx.Client
    ds: SQLAlchemyDatasource
    steps: int
    lock: threading.Lock = field(default_factory=threading.Lock)


_RUN: _Run | None = None


def _ctx() -> _Run:
    if _RUN is None:
        raise RuntimeError("rival_dbos: no run in progress")
    return _RUN


def _now() -> datetime:
    return datetime.now(UTC)


def _audit(session: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.insert(AUDIT), rows)


def _schedule(session: Any, step_id: str, route_id: str, kinds: list[tuple[str, datetime]],
              at: datetime) -> None:
    """Insert the timers (RETURNING their ids) and one audit record each, as ours."""
    ids = [r[0] for r in session.execute(
        sa.insert(TIMERS).returning(TIMERS.c.id, sort_by_parameter_order=True),
        [{"step_id": step_id, "route_id": route_id, "kind": k, "due_at": due,
          "status": "pending"} for k, due in kinds])]
    _audit(session, [{"at": at, "route_id": route_id, "entity": "timer", "entity_id": str(i),
                      "action": "scheduled", "after": {"kind": k, "due_at": due.isoformat()}}
                     for i, (k, due) in zip(ids, kinds, strict=True)])


def _cancel(session: Any, step_id: str, route_id: str, at: datetime) -> None:
    rows = session.execute(
        sa.update(TIMERS).where(TIMERS.c.step_id == step_id, TIMERS.c.status == "pending")
        .values(status="cancelled").returning(TIMERS.c.id, TIMERS.c.kind)).all()
    _audit(session, [{"at": at, "route_id": route_id, "entity": "timer", "entity_id": str(i),
                      "action": "cancelled", "after": {"kind": k}} for i, k in rows])


def _start_step(session: Any, route_id: str, seq: int, at: datetime) -> None:
    """The step becomes ready: its send-by deadline (1 working day) and its two timers."""
    step_id = f"{route_id}.s{seq}"
    send = calendars.deadline(at, 1, REGION)
    esc = calendars.deadline(send.due_at, 2, REGION)
    session.execute(sa.update(STEPS).where(STEPS.c.id == step_id).values(
        status="sending", send_by=send.due_at, request_id=task_id_for(route_id, seq)))
    session.execute(sa.update(ROUTES).where(ROUTES.c.id == route_id).values(current_seq=seq))
    _schedule(session, step_id, route_id,
              [("send_overdue", send.due_at), ("send_escalation", esc.due_at)], at)
    _audit(session, [{"at": at, "route_id": route_id, "entity": "step", "entity_id": step_id,
                      "action": "ready", "after": {"send_by": send.due_date.isoformat()}}])


def _register(route_id: str, steps: int) -> None:
    ds = _ctx().ds
    s = ds.sql_session()
    at = _now()
    s.execute(sa.insert(ROUTES).values(id=route_id, status="active", current_seq=0,
                                       registered_at=at))
    s.execute(sa.insert(STEPS), [{"id": f"{route_id}.s{i}", "route_id": route_id, "seq": i,
                                  "agency": step_for(i).agency, "status": "planned"}
                                 for i in range(steps)])
    _audit(s, [{"at": at, "route_id": route_id, "entity": "route", "entity_id": route_id,
                "action": "registered", "after": {"steps": steps}}])
    _start_step(s, route_id, 0, at)


def _delivered(route_id: str, index: int) -> None:
    """The agency took the request: the answer-by ladder replaces the send-by one."""
    s = _ctx().ds.sql_session()
    at = _now()
    step_id = f"{route_id}.s{index}"
    due = calendars.deadline(at, 5, REGION)
    cal = calendars.get_calendar(REGION)
    remind_day = cal.sub_working_days(due.due_date, 1)
    remind = datetime(remind_day.year, remind_day.month, remind_day.day, 7, tzinfo=UTC)
    esc = calendars.deadline(due.due_at, 2, REGION)
    s.execute(sa.update(STEPS).where(STEPS.c.id == step_id).values(
        status="awaiting", sent_at=at, answer_by=due.due_at))
    _cancel(s, step_id, route_id, at)
    _schedule(s, step_id, route_id, [("answer_reminder", remind),
                                     ("answer_overdue", due.due_at),
                                     ("answer_escalation", esc.due_at)], at)
    _audit(s, [{"at": at, "route_id": route_id, "entity": "request",
                "entity_id": task_id_for(route_id, index), "action": "delivered", "after": {}},
               {"at": at, "route_id": route_id, "entity": "step", "entity_id": step_id,
                "action": "awaiting_answer", "after": {"answer_by": due.due_date.isoformat()}}])


def _apply(route_id: str, index: int, task_id: str, outcome: str) -> str:
    """Apply the agency's answer: the step is answered, its timers cancelled, the next step
    started (or the route completed) — one transition, one transaction."""
    ctx = _ctx()
    s = ctx.ds.sql_session()
    at = _now()
    step_id = f"{route_id}.s{index}"
    status = s.execute(sa.select(STEPS.c.status).where(STEPS.c.id == step_id)
                       .with_for_update()).scalar_one()
    if task_id != task_id_for(route_id, index):
        raise ValueError(f"answer for {task_id} delivered to {task_id_for(route_id, index)}")
    if status != "awaiting":
        return "ignored"
    s.execute(sa.update(STEPS).where(STEPS.c.id == step_id).values(
        status="answered", answered_at=at, outcome=outcome))
    _cancel(s, step_id, route_id, at)
    _audit(s, [{"at": at, "route_id": route_id, "entity": "step", "entity_id": step_id,
                "action": "answer_applied", "after": {"outcome": outcome}}])
    if index + 1 < ctx.steps:
        _start_step(s, route_id, index + 1, at)
    else:
        s.execute(sa.update(ROUTES).where(ROUTES.c.id == route_id).values(
            status="completed", completed_at=at))
        _audit(s, [{"at": at, "route_id": route_id, "entity": "route", "entity_id": route_id,
                    "action": "completed", "after": {}}])
    return outcome


# Wrapped by the run's datasource (``DBOS transaction steps``) once it exists.
_TXN: dict[str, Any] = {}


@DBOS.step()
def send_request_step(route_id: str, index: int) -> int:
    """POST the request of step ``index`` (idempotent: the key is the task id)."""
    ctx = _ctx()
    agency = step_for(index).agency
    body = build_request(route_id=route_id, index=index,
                         callback_url=ctx.callbacks.callback_url(agency, route_id))
    return post_request(ctx.client, ctx.agency_urls[agency], ctx.secrets[agency], body)


@DBOS.workflow()
def route_workflow(route_id: str, steps: int, answer_timeout_s: float) -> list[str]:
    outcomes: list[str] = []
    _TXN["register"](route_id, steps)
    for index in range(steps):
        send_request_step(route_id, index)
        _TXN["delivered"](route_id, index)
        answer = DBOS.recv(topic=task_id_for(route_id, index), timeout_seconds=answer_timeout_s)
        if answer is None:
            raise TimeoutError(f"{route_id}: no answer to step {index} in {answer_timeout_s} s")
        outcomes.append(_TXN["apply"](route_id, index, str(answer.get("task_id")),
                                      str(answer["outcome"])))
    return outcomes


async def _on_answer(answer: CallbackAnswer) -> None:
    # The callback ref is the route's workflow id; the topic is the task id.
    await DBOS.send_async(answer.ref, answer.as_message(), topic=answer.task_id,
                          idempotency_key=answer.webhook_id)


def _dbos_url(url: str) -> str:
    """DBOS takes ``postgresql://`` (it picks psycopg itself) or ``sqlite:///``."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(
        hide_password=False) if url.startswith("postgresql") else url


def _fresh_tables(url: str) -> sa.Engine:
    """Drop what an earlier run left (DBOS's schema and ours) and create the domain tables."""
    pg = url.startswith("postgresql")
    eng = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg") if pg
                           else url)
    with eng.begin() as conn:
        if pg:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(sa.text("DROP SCHEMA IF EXISTS dbos CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
            conn.execute(sa.text(f"SET search_path TO {SCHEMA}"))
        _META.create_all(conn)
    return eng


def count_rows(eng: sa.Engine, pg: bool) -> dict[str, int]:
    """What the domain tables hold: transitions (answers applied), completed routes."""
    with eng.connect() as conn:
        if pg:
            conn.execute(sa.text(f"SET search_path TO {SCHEMA}"))
        return {
            "transitions": int(conn.execute(sa.select(sa.func.count()).select_from(AUDIT)
                                            .where(AUDIT.c.action == "answer_applied"))
                               .scalar_one()),
            "routes_completed": int(conn.execute(
                sa.select(sa.func.count()).select_from(ROUTES)
                .where(ROUTES.c.status == "completed")).scalar_one()),
            "timers": int(conn.execute(sa.select(sa.func.count()).select_from(TIMERS))
                          .scalar_one()),
            "audit_records": int(conn.execute(sa.select(sa.func.count()).select_from(AUDIT))
                                 .scalar_one()),
        }


def run(
    n_routes: int, steps: int = 3, *, answer_timeout_s: float = 120.0, agency_delay_s: float = 0.0,
    workdir: Path | None = None, poll_s: float = 0.1, database_url: str = "",
) -> RivalResult:
    """Run ``n_routes`` routes of ``steps`` steps on DBOS; return the measured figures."""
    global _RUN
    if _RUN is not None:
        raise RuntimeError("rival_dbos: a run is already in progress")
    tmp = tempfile.TemporaryDirectory(prefix="rival-dbos-") if workdir is None else None
    base = Path(tmp.name) if tmp is not None else Path(workdir)  # type: ignore[arg-type]
    url = _dbos_url(database_url) if database_url else f"sqlite:///{base / 'dbos_sys.sqlite'}"
    pg = url.startswith("postgresql")
    # SQLite: the domain tables in a file of their own (one writer per file; in DBOS's
    # system file every workflow step would queue behind the domain writes)
    domain_url = url if pg else f"sqlite:///{base / 'domain.sqlite'}"
    domain = _fresh_tables(domain_url)
    secrets = make_secrets()
    agency = start_echo_agency(secrets, delay_s=agency_delay_s)
    sampler = ResourceSampler(exclude=[agency.pid]).start()
    callbacks = CallbackServer(secrets, _on_answer).start()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    client = httpx.Client(timeout=30.0, limits=limits)
    config: DBOSConfig = {
        "name": "rival-dbos",
        "system_database_url": url,
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": poll_s,
    }
    try:
        DBOS(config=config)
        ds_kwargs: dict[str, Any] = {}
        if pg:
            ds_kwargs.update(pool_size=40, max_overflow=20)
            ds_kwargs["connect_args"] = {"options": f"-c search_path={SCHEMA}"}
        ds = SQLAlchemyDatasource.create(domain_url, engine_kwargs=ds_kwargs,
                                         schema=SCHEMA if pg else None)
        iso = "READ COMMITTED" if pg else "SERIALIZABLE"  # SQLite: one writer anyway
        _TXN["register"] = ds.transaction(name="register_route", isolation_level=iso)(_register)
        _TXN["delivered"] = ds.transaction(name="mark_delivered",
                                           isolation_level=iso)(_delivered)
        _TXN["apply"] = ds.transaction(name="apply_answer", isolation_level=iso)(_apply)
        DBOS.launch()
        _RUN = _Run(secrets=secrets, callbacks=callbacks, client=client, ds=ds, steps=steps,
                    agency_urls={code: agency.url_for(code) for code in secrets})
        t0 = time.perf_counter()
        handles = []
        for i in range(n_routes):
            with SetWorkflowID(f"route-{i:05d}"):
                handles.append(DBOS.start_workflow(
                    route_workflow, f"route-{i:05d}", steps, answer_timeout_s))
        started_s = time.perf_counter() - t0
        errors: list[str] = []
        for h in handles:
            try:
                h.get_result()
            except Exception as exc:  # report, do not hide
                errors.append(f"{h.get_workflow_id()}: {type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - t0
        sampler.stop()
        counted = count_rows(domain, pg)
        transitions = counted["transitions"]
        stats = agency.stats()
        return RivalResult(
            name=NAME, routes=n_routes, transitions=transitions, seconds=seconds,
            transitions_per_s=transitions / seconds if seconds > 0 else 0.0,
            peak_rss_mb=sampler.peak_rss_mb, threads_peak=sampler.threads_peak,
            expected_transitions=n_routes * steps, completed=not errors,
            notes={"errors": errors[:10], "agency": stats, "counted": counted,
                   "callbacks_received": callbacks.received,
                   "callbacks_rejected": callbacks.rejected,
                   "per_process_peak_mb": sampler.per_process_peak_mb(),
                   "per_process_cpu_s": sampler.per_process_cpu_s(),
                   "start_all_workflows_s": round(started_s, 2),
                   "notification_polling_s": poll_s,
                   "database": "postgresql" if pg else "sqlite",
                   "dbos_system_db": "postgresql" if pg else "sqlite"},
        )
    finally:
        _RUN = None
        _TXN.clear()
        sampler.stop()
        DBOS.destroy()
        callbacks.stop()
        client.close()
        agency.stop()
        domain.dispose()
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="DBOS rival of the route benchmark")
    ap.add_argument("--routes", type=int, default=200)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--delay", type=float, default=0.0, help="echo agency answer delay, s")
    ap.add_argument("--poll", type=float, default=0.1,
                    help="DBOS notification_listener_polling_interval_sec (SQLite has no "
                         "LISTEN/NOTIFY: recv learns of a send by this poll)")
    ap.add_argument("--database", default="",
                    help="DBOS system + domain database (default: a temp SQLite file), "
                    "e.g. postgresql://root@127.0.0.1:5432/dbos (schemas dbos and "
                    f"{SCHEMA} are dropped and made anew)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = run(args.routes, args.steps, agency_delay_s=args.delay, poll_s=args.poll,
                 database_url=args.database)
    print(json.dumps(result.as_dict(), indent=2, default=str) if args.json else result.line())


if __name__ == "__main__":
    main()
