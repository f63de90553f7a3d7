"""Bulk registration: a file of applications becomes routes (``rehab import FILE``).

A region moving onto the product brings the routes it already runs: thousands of
applications at once. Each line of a JSON-lines file is one application with the fields of
the coordinator API's body (``models.basic_application.ApplicationIn``; docs/import.md).

- **Every line is checked before anything is stored**: JSON, the fields and their rules,
  the dates against business time, the ИПРА deadlines, the region's participants for each
  step, and SNILS (a SNILS held by a person with another name or birth date — in the
  database or on an earlier line — is refused, as the API refuses it with 409). A file with
  any bad line is **refused whole**: nothing is stored and every error is listed, each with
  its line number, field and rule (``ImportRefusedError``). A region's import is one act:
  half a file imported is harder to put right than a file corrected and run again.
- **Each route is formed as the single registration forms it** (the person if new, the
  route, its steps, the first step's send-by deadline and timers, its request and the
  request's job — or, for an agency working from its inbox, the delivery and its answer-by
  timers —, the mirror job and one audit record per change, in the same order:
  tests/engine/test_bulk_import.py compares the rows of both paths), but the rows of all
  routes are written with a few multi-row INSERTs in **one transaction**: the file's routes
  appear together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, func, insert
from sqlalchemy import Enum as SAEnum
from sqlmodel import Session, col, select

import calendars
from engine.agencies.providers import OPEN_STEP
from engine.errors import EngineError
from engine.escalations import timers
from engine.infra import audit, queue
from engine.routes.forming import Forming, forming
from engine.routes.ipra_plan import current_ipras
from engine.routes.ipra_term import arm_ipra_expiry
from engine.routes.transitions import SYSTEM, EngineConfig, check_ipra_deadlines
from models import regions
from models.agencies import Agency, AgencyRequest, RequestChannel, RequestState
from models.audit import AuditEvent
from models.basic_application import ApplicationIn, date_problems, same_name
from models.ipra import Ipra
from models.ipra_plan import extend_template, measure_of
from models.jobs import Job, JobKind
from models.person_file import IpraRecord
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import RouteTemplate, get_template
from models.timers import DeadlineKind, Timer, TimerStatus
from models.types import new_id, utcnow

TIMERS_ACTOR = timers.SYSTEM


@dataclass(frozen=True)
class LineError:
    """What is wrong with one line of the file."""

    line: int
    field: str
    rule: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.rule}"


class ImportRefusedError(EngineError):
    """The file has bad lines: nothing was stored; ``errors`` lists them all."""

    def __init__(self, errors: Sequence[LineError]) -> None:
        self.errors = list(errors)
        super().__init__(f"import refused, nothing stored: {len(self.errors)} error(s); "
                         f"first: {self.errors[0] if self.errors else '-'}")


@dataclass(frozen=True)
class ImportResult:
    routes: int
    persons_created: int
    persons_reused: int
    route_ids: list[str] = field(repr=False)


# --------------------------------------------------------------------------- reading
def read_applications(lines: Iterable[str]) -> tuple[list[tuple[int, ApplicationIn]],
                                                     list[LineError]]:
    """Parse the lines (1-based numbers; blank lines are skipped): the applications and the
    errors of the lines that are not one (bad JSON, a field breaking its rule)."""
    apps: list[tuple[int, ApplicationIn]] = []
    errors: list[LineError] = []
    for no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            errors.append(LineError(no, "line", f"not valid JSON ({exc.msg}, column "
                                                f"{exc.colno})" if isinstance(
                                                    exc, json.JSONDecodeError) else str(exc)))
            continue
        if not isinstance(data, dict):
            errors.append(LineError(no, "line", "must be a JSON object (one application)"))
            continue
        try:
            apps.append((no, ApplicationIn.model_validate(data)))
        except ValidationError as exc:
            for e in exc.errors(include_url=False):
                where = ".".join(str(p) for p in e["loc"]) or "line"
                msg = str(e["msg"]).removeprefix("Value error, ")
                errors.append(LineError(no, where, msg))
    return apps, errors


def _pick(rows: list[Agency], load: dict[str, int]) -> Agency:
    """``engine.agencies.providers.pick_provider``'s default rule, least loaded, on rows
    already read (sorted by id) and open requests counted once per import and kept up to
    date as the batch gives out requests (a bulk-imported person has made no choice yet)."""
    agency = min(rows, key=lambda a: (load.get(a.id, 0), a.id))
    load[agency.id] = load.get(agency.id, 0) + 1
    return agency


def _open_requests(session: Session, agencies: dict[tuple[str, str], list[Agency]]
                   ) -> dict[str, int]:
    """Open requests per agency of ``agencies`` (one query)."""
    ids = [a.id for rows in agencies.values() for a in rows]
    if not ids:
        return {}
    with session.no_autoflush:
        return {aid: int(n) for aid, n in session.exec(
            select(Step.agency_id, func.count()).where(
                col(Step.agency_id).in_(ids), col(Step.status).in_(OPEN_STEP))
            .group_by(col(Step.agency_id))).all() if aid is not None}


def _agencies(session: Session, regions: set[str]) -> dict[tuple[str, str], list[Agency]]:
    """Active participants by (role, region), sorted by id (as ``pick_agency`` reads them)."""
    out: dict[tuple[str, str], list[Agency]] = {}
    if not regions:
        return out
    with session.no_autoflush:
        for a in session.exec(select(Agency).where(col(Agency.region).in_(sorted(regions)),
                                                   col(Agency.active).is_(True))
                              .order_by(col(Agency.id))):
            out.setdefault((a.role.value, a.region), []).append(a)
    return out


def check_applications(session: Session, cfg: EngineConfig,
                       apps: Sequence[tuple[int, ApplicationIn]], *,
                       now: datetime) -> list[LineError]:
    """The rules that need the clock, the calendars and the database, for every line."""
    errors: list[LineError] = []
    regions = {a.region for _, a in apps}
    agencies = _agencies(session, regions)
    known: dict[str, tuple[int | None, str, date]] = {}  # snils → (line or None: stored)
    snils = sorted({a.snils for _, a in apps})
    person_of: dict[str, str] = {}  # snils → the stored person's id
    for i in range(0, len(snils), 1000):
        for p in session.exec(select(col(Person.snils), col(Person.full_name),
                                     col(Person.birth_date), col(Person.id))
                              .where(col(Person.snils).in_(snils[i:i + 1000]))):
            known[p[0]] = (None, p[1], p[2])
            person_of[p[0]] = p[3]
    ipras = current_ipras(session, list(person_of.values()))
    formings: dict[str, _Formed] = {}
    for no, app in apps:
        try:
            calendars.get_calendar(app.region)
        except calendars.CalendarError as exc:
            errors.append(LineError(no, "region", str(exc).removeprefix("region: ")))
            continue
        problems = date_problems(app, now, cfg.sender_region)
        errors += [LineError(no, f, r) for f, r in problems]
        if problems:
            continue
        stored = person_of.get(app.snils)
        f, template, firsts = _formed(session, app, ipras.get(stored) if stored else None,
                                      formings)
        try:
            check_ipra_deadlines(get_template(f.spec.code, f.spec.version), app.ipra_deadlines,
                                 region=app.region, registered_at=app.registered_at or now)
        except EngineError as exc:
            field_, _, rule = str(exc).partition(": ")
            errors.append(LineError(no, field_, rule))
        for seq in firsts:
            role = template.step(seq).role.value
            if not agencies.get((role, app.region)):
                errors.append(LineError(no, "region", f"no active participant with role "
                                                      f"{role!r} in region {app.region}"))
                break
        seen = known.get(app.snils)
        if seen is None:
            known[app.snils] = (no, app.full_name, app.birth_date)
        elif not same_name(seen[1], app.full_name) or seen[2] != app.birth_date:
            where = "already registered" if seen[0] is None else f"given on line {seen[0]}"
            errors.append(LineError(no, "snils", f"{where} for a person with another "
                                                 "full_name or birth_date; check the data"))
    return errors


# --------------------------------------------------------------------------- writing
@dataclass(slots=True)
class _StepRec:
    """A step being formed: the columns of ``step`` (with ``Step``'s defaults), what
    ``engine.escalations.timers`` reads of a step, without the ORM's cost per object."""

    id: str
    route_id: str
    seq: int
    kind: str
    role: str
    optional: bool
    ipra_due_date: date | None
    agency_id: str | None = None
    status: StepStatus = StepStatus.planned
    current_request_id: str | None = None
    ready_at: datetime | None = None
    send_by: datetime | None = None
    send_by_date: date | None = None
    sent_at: datetime | None = None
    answer_by: datetime | None = None
    answer_by_date: date | None = None
    deadline_provisional: bool = False
    complete_by_date: date | None = None
    complete_by_source: str | None = None
    answered_at: datetime | None = None
    late_working_days: int | None = None
    outcome_note: str | None = None
    prefect_task_run_id: str | None = None
    prefect_state: str | None = None

    def row(self) -> dict[str, Any]:
        return dict(zip(_STEP_COLS, _step_values(self), strict=True))


_STEP_COLS = [c.name for c in Step.__table__.columns]  # type: ignore[attr-defined]
_step_values = attrgetter(*_STEP_COLS)
assert set(_STEP_COLS) == set(_StepRec.__slots__), \
    "engine.persons.bulk_import._StepRec: the step table changed"
_JSON = {"agency_request": ("body",), "audit_event": ("before", "after"), "route": ("plan",)}


def _table(model: Any) -> Any:
    return model.__table__


class _Batch:
    """The rows of many registrations, in the order the single path writes them."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.persons: list[dict[str, Any]] = []
        self.routes: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.timers: list[dict[str, Any]] = []
        self.jobs: list[dict[str, Any]] = []
        # audit records: (actor, entity, entity_id or timer index, action, route_id,
        # before, after, reason); a timer's id is known once the timers' ids are drawn
        self.audit: list[tuple[str, str, str | int, str, str | None, dict[str, Any] | None,
                               dict[str, Any] | None, str | None]] = []

    def add_timers(self, specs: list[timers.TimerSpec], *, actor: str) -> list[int]:
        idx = []
        for t in specs:
            idx.append(len(self.timers))
            self.timers.append({
                "step_id": t.step_id, "route_id": t.route_id, "kind": t.kind,
                "deadline_version": t.deadline_version, "due_at": t.due_at,
                "due_date": t.due_date, "region": t.region, "working_days": t.working_days,
                "anchor_at": t.anchor_at, "calendar_version": t.calendar_version,
                "status": TimerStatus.pending, "cancelled_reason": None})
            self.audit.append((actor, "timer", idx[-1], "scheduled", t.route_id, None, {
                "step_id": t.step_id, "kind": t.kind.value,
                "deadline_version": t.deadline_version, "due_at": t.due_at,
                "due_date": t.due_date, "region": t.region,
                "calendar_version": t.calendar_version}, None))
        return idx

    def job(self, kind: JobKind, ref: str, delay_seconds: float = 0.0) -> None:
        now = utcnow()
        self.jobs.append({"kind": kind.value, "ref": ref,
                          "due_at": now + timedelta(seconds=delay_seconds),
                          "generation": 0, "attempts": 0, "created_at": now})

    def _timer_ids(self, conn: Any) -> list[int]:
        """Ids for the new timers, drawn before they are written (the audit records name
        them): from the sequence on PostgreSQL; on SQLite after the largest, under the
        write lock this transaction holds (BEGIN IMMEDIATE)."""
        n = len(self.timers)
        if not n:
            return []
        if conn.dialect.name == "postgresql":
            return [int(r[0]) for r in conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('timer', 'id')) "
                "FROM generate_series(1, %(n)s)", {"n": n})]
        top = int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM timer").scalar_one())
        return list(range(top + 1, top + 1 + n))

    def write(self, session: Session) -> None:
        conn = session.connection()
        ids = self._timer_ids(conn)
        for i, t in zip(ids, self.timers, strict=True):
            t["id"] = i
        real_at = utcnow()
        audit_rows = [{"at": self.now, "real_at": real_at, "actor": actor, "entity": entity,
                       "entity_id": str(ids[ref]) if isinstance(ref, int) else ref,
                       "route_id": route_id, "action": action,
                       "before": audit.jsonable(before), "after": audit.jsonable(after),
                       "reason": reason}
                      for actor, entity, ref, action, route_id, before, after, reason
                      in self.audit]
        # the jobs in the order a transition writes them
        jobs = sorted(self.jobs, key=queue.lock_order)
        for model, rows in ((Person, self.persons), (Route, self.routes), (Step, self.steps),
                            (AgencyRequest, self.requests), (Timer, self.timers),
                            (Job, jobs), (AuditEvent, audit_rows)):
            if rows:
                _write_rows(conn, _table(model), rows)


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, Enum) else v


def _json_text(v: Any) -> Any:
    return None if v is None else json.dumps(v)


def _copy_tuples(table: Any, cols: list[str],
                 rows: list[dict[str, Any]]) -> Iterable[Sequence[Any]]:
    """The rows as COPY takes them, in ``cols``' order: JSON columns as text, enumerations
    as their values; a row's other values are passed as they are (one C-level fetch per row,
    the per-value work only where a column needs it)."""
    json_cols = set(_JSON.get(table.name, ()))
    fix = [(i, _json_text if c in json_cols else _plain) for i, c in enumerate(cols)
           if c in json_cols or isinstance(table.c[c].type, SAEnum)]
    get = itemgetter(*cols)
    for r in rows:
        vals = get(r)
        if len(cols) == 1:
            vals = (vals,)
        if fix:
            vals = list(vals)
            for i, conv in fix:
                vals[i] = conv(vals[i])
        yield vals


def _write_rows(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: ``COPY … FROM STDIN`` (the fastest way in, tens of thousands of rows a
    second); SQLite: one executemany."""
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    cols = list(rows[0])
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur, cur.copy(
            f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
        for vals in _copy_tuples(table, cols, rows):
            copy.write_row(vals)


_Formed = tuple[Forming, RouteTemplate, tuple[int, ...]]


def _formed(session: Session, app: ApplicationIn, ipra: Ipra | None,
            cache: dict[str, _Formed]) -> _Formed:
    """The route's data template (newest version), its steps not applicable for the
    person's ИПРА and its plan (``engine.routes.forming``), the route's own template (the
    plan's measures after the template's steps) and the steps it opens at once
    (``first_steps``). Without an ИПРА all this is the same for every application of a
    template: formed once per import."""
    if ipra is None and app.template in cache:
        return cache[app.template]
    f = forming(session, code=app.template, region=app.region, ipra=ipra)
    template = extend_template(get_template(f.spec.code, f.spec.version), f.plan,
                               parallel=True)
    out = (f, template, tuple(first_steps(template, f.not_applicable)))
    if ipra is None:
        cache[app.template] = out
    return out


def first_steps(template: RouteTemplate, skipped: Collection[str]) -> list[int]:
    """The seqs of the steps a new route opens at once: applicable, and every step they wait
    for not applicable (``engine.routes.transitions.ready_steps`` on a route just formed)."""
    closed = {seq for seq, st in enumerate(template.steps) if st.kind in skipped}
    return [seq for seq in range(len(template.steps)) if seq not in closed
            and all(d in closed for d in template.waits_for(seq))]


def _register(batch: _Batch, cfg: EngineConfig, app: ApplicationIn, person: dict[str, Any],
              agencies: dict[tuple[str, str], list[Agency]], load: dict[str, int], *,
              formed: _Formed, actor: str,
              coordinator_id: str | None) -> str:
    """One route's rows (``engine.routes.transitions.register_application``'s, in its order)
    from the newest data template (``formed``: ``_formed``)."""
    now = batch.now
    f, template, firsts = formed
    version, skipped, plan = f.spec.version, f.not_applicable, f.plan
    region = app.region
    reg_at = app.registered_at or now
    ipra = check_ipra_deadlines(get_template(f.spec.code, version), app.ipra_deadlines,
                                region=region, registered_at=reg_at)
    route_id = new_id("rt")
    route: dict[str, Any] = {
        "id": route_id, "person_id": person["id"], "region": region,
        "template": template.code, "template_version": version, "plan": plan,
        "status": RouteStatus.active, "registered_at": reg_at,
        "current_seq": 0, "coordinator_id": coordinator_id, "prefect_flow_run_id": None,
        "prefect_state": None, "created_at": utcnow(), "completed_at": None}
    steps = []
    for seq, st in enumerate(template.steps):
        why = skipped.get(st.kind)
        measure = measure_of(plan, st.kind)
        steps.append(_StepRec(
            id=f"{route_id}-s{seq}", route_id=route_id, seq=seq, kind=st.kind,
            role=st.role.value, optional=st.optional,
            ipra_due_date=date.fromisoformat(measure["due"]) if measure else ipra.get(st.kind),
            status=StepStatus.cancelled if why else StepStatus.planned,
            outcome_note=f"не применяется: {why}"[:500] if why else None))
    versions = [0] * len(steps)
    batch.audit.append((actor, "route", route_id, "registered", route_id, None, {
        "template": template.code, "region": region, "registered_at": reg_at,
        **({"template_version": version} if version else {}),
        **({"not_applicable": sorted(skipped)} if skipped else {}),
        **({"ipra_measures": {e["kind"]: e["due"] for e in plan.get("measures", ())},
            "ipra": plan.get("ipra")} if plan else {}),
        **({"ipra_deadlines": {k: v.isoformat() for k, v in ipra.items()}} if ipra else {})},
        None))
    for step in steps:  # complete-by deadlines (_arm_complete_deadline)
        if step.status.terminal:
            continue
        st = template.step(step.seq)
        if step.ipra_due_date is not None:
            due = timers.end_of_day(step.ipra_due_date, region)
            days, source = 0, "ipra"
        elif st.deadline_days is not None:
            due = calendars.deadline(reg_at, st.deadline_days, region)
            days, source = st.deadline_days, "template"
        else:
            continue
        step.complete_by_date = due.due_date
        step.complete_by_source = source
        batch.add_timers(timers.ladder_timers(
            DeadlineKind.complete_by, step, due=due, anchor_at=reg_at, working_days=days,
            ladder=template.ladder_for(step.seq, cfg.default_ladder),
            version=versions[step.seq]), actor=actor)
        versions[step.seq] += 1
        batch.audit.append((actor, "step", step.id, "complete_by_set", route_id, None, {
            "complete_by": due.due_date, "source": source,
            "ipra_due_date": step.ipra_due_date, "working_days": days or None}, None))
    mirror_jobs = 0
    for seq in firsts:  # each starts (_start_step)
        mirror_jobs += _start(batch, cfg, route, template, steps[seq], agencies, load,
                              version=versions[seq], reg_at=reg_at, actor=actor)
        versions[seq] += 1
    batch.routes.append(route)
    batch.steps += [s.row() for s in steps]
    if mirror_jobs:  # asked for once or twice in one transaction: one job
        batch.job(JobKind.mirror_route, route_id, cfg.mirror_delay_seconds)
    return route_id


def _start(batch: _Batch, cfg: EngineConfig, route: dict[str, Any], template: RouteTemplate,
           step: _StepRec, agencies: dict[tuple[str, str], list[Agency]],
           load: dict[str, int], *, version: int, reg_at: datetime, actor: str) -> int:
    """One step opened (``_start_step``, ``arm_send_deadline``, ``_new_request``): its
    agency — the one the ИПРА names for a measure when active here, else the least loaded
    of its role —, its send-by timers, its request; the mirror jobs it asks for."""
    now, region, route_id = batch.now, route["region"], route["id"]
    st = template.step(step.seq)
    ladder = template.ladder_for(step.seq, cfg.default_ladder)
    rows = agencies[(step.role, region)]
    pinned = measure_of(route["plan"], step.kind)
    named = next((a for a in rows if pinned and a.id == pinned.get("agency_id")), None)
    agency = named or _pick(rows, load)
    if named is not None:
        load[named.id] = load.get(named.id, 0) + 1
    step.agency_id = agency.id
    step.status = StepStatus.sending
    route["current_seq"] = step.seq
    send_days = regions.send_days(region, st.send_days)  # the region's act (models/regions)
    send = calendars.deadline(reg_at, send_days, regions.send_calendar(region, cfg.sender_region))
    step.ready_at = reg_at
    step.send_by, step.send_by_date = send.due_at, send.due_date
    step.deadline_provisional = send.provisional
    batch.add_timers(timers.ladder_timers(
        DeadlineKind.send_by, step, due=send, anchor_at=reg_at, working_days=send_days,
        ladder=ladder, version=version), actor=actor)
    request_id = new_id("tk")
    answer_days = regions.answer_days(region, st.answer_days)
    expected = calendars.deadline(now, answer_days, agency.region)
    body: dict[str, Any] = {
        "task_id": request_id, "idempotency_key": request_id, "route_id": route_id,
        "step": step.kind, "requested": st.requested, "basis": st.basis,
        "answer_within_working_days": answer_days,
        "answer_by": expected.due_at.isoformat(),
        "answer_by_date": expected.due_date.isoformat(),
        "callback_url": f"{cfg.public_base_url}/webhooks/agencies/{agency.id}",
    }
    channel = RequestChannel.http if agency.endpoint_url else RequestChannel.inbox
    request: dict[str, Any] = {
        "id": request_id, "step_id": step.id, "agency_id": agency.id,
        "idempotency_key": request_id, "channel": channel, "state": RequestState.queued,
        "body": body, "attempts": 0, "last_error": None, "created_at": now,
        "delivered_at": None, "cancelled_at": None}
    step.current_request_id = request_id
    batch.audit.append((SYSTEM, "request", request_id, "prepared", route_id, None,
                        {"agency_id": agency.id, "channel": channel.value}, None))
    mirror_jobs = 0
    if channel is RequestChannel.http:
        batch.job(JobKind.send_request, request_id)
    else:  # the agency's inbox: placed there now, the answer period starts on its receipt
        # (298-п Порядок п.11; engine.routes.receipt): the send-by timers keep running
        request["state"] = RequestState.delivered
        request["delivered_at"] = now
        batch.audit.append((SYSTEM, "request", request_id, "placed_in_inbox", route_id, None,
                            {"agency_id": agency.id, "awaiting_receipt": True}, None))
    batch.audit.append((actor, "step", step.id, "ready", route_id,
                        {"status": StepStatus.planned.value},
                        {"status": step.status.value, "agency_id": agency.id,
                         "send_by": send.due_date, "request_id": request_id}, None))
    mirror_jobs += 1 if cfg.mirror else 0
    batch.requests.append(request)
    return mirror_jobs


def import_applications(session: Session, cfg: EngineConfig,
                        apps: Sequence[tuple[int, ApplicationIn]], *, now: datetime,
                        actor: str, coordinator_id: str | None = None) -> ImportResult:
    """Check every application, then register them all in the caller's transaction
    (ImportRefusedError listing every bad line, nothing written, if any is bad)."""
    errors = check_applications(session, cfg, apps, now=now)
    if errors:
        raise ImportRefusedError(errors)
    agencies = _agencies(session, {a.region for _, a in apps})
    load = _open_requests(session, agencies)
    stored: dict[str, dict[str, Any]] = {}
    snils = sorted({a.snils for _, a in apps})
    for i in range(0, len(snils), 1000):
        for p in session.exec(select(col(Person.id), col(Person.snils), col(Person.full_name),
                                     col(Person.birth_date))
                              .where(col(Person.snils).in_(snils[i:i + 1000]))):
            stored[p[1]] = {"id": p[0], "snils": p[1], "full_name": p[2], "birth_date": p[3]}
    ipras = current_ipras(session, [p["id"] for p in stored.values()])
    formings: dict[str, _Formed] = {}
    batch = _Batch(now)
    created = reused = 0
    route_ids = []
    for _, app in apps:
        person = stored.get(app.snils)
        if person is None:
            person = {"id": new_id("pn"), "full_name": app.full_name, "snils": app.snils,
                      "birth_date": app.birth_date, "region": app.region,
                      "representative": app.representative, "synthetic": False,
                      "created_at": utcnow()}
            batch.persons.append(person)
            stored[app.snils] = person
            batch.audit.append((actor, "person", person["id"], "created", None, None,
                                {"region": app.region}, None))
            created += 1
        else:
            reused += 1
        formed = _formed(session, app, ipras.get(person["id"]), formings)
        route_ids.append(_register(batch, cfg, app, person, agencies, load, formed=formed,
                                   actor=actor, coordinator_id=coordinator_id))
    batch.write(session)
    _arm_expiry_timers(session, route_ids, now=now, actor=actor)
    return ImportResult(routes=len(route_ids), persons_created=created, persons_reused=reused,
                        route_ids=route_ids)


def _arm_expiry_timers(session: Session, route_ids: list[str], *, now: datetime,
                       actor: str) -> None:
    """The ИПРА-expiry timer (004 п.13 а; ``engine.routes.ipra_term``) of each new route whose
    person has an ИПРА on file — one query finds them; a person new to the file has none."""
    if not route_ids:
        return
    with session.no_autoflush:
        rows = list(session.exec(
            select(Route).where(
                col(Route.id).in_(route_ids),
                # EXISTS, not a join + DISTINCT: PostgreSQL compares no JSON (route.plan)
                select(IpraRecord.id).where(
                    col(IpraRecord.person_id) == col(Route.person_id)).exists())))
    for route in rows:
        arm_ipra_expiry(session, route, now=now, actor=actor)


def import_file(engine: Engine, cfg: EngineConfig, path: Path, *, now: datetime, actor: str,
                coordinator_id: str | None = None) -> ImportResult:
    """``rehab import``: read, check and register the file's applications in one
    transaction (ImportRefusedError with every bad line: nothing stored)."""
    with path.open(encoding="utf-8") as f:
        apps, errors = read_applications(f)
    with Session(engine) as session:
        if errors:  # the lines that parsed are checked too: every error at once
            errors += check_applications(session, cfg, apps, now=now)
            raise ImportRefusedError(sorted(errors, key=lambda e: e.line))
        result = import_applications(session, cfg, apps, now=now, actor=actor,
                                     coordinator_id=coordinator_id)
        session.commit()
    return result
