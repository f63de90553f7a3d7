"""Mirroring routes into Prefect: reconcile one route's flow run and task runs with our DB.

Reconciliation is idempotent, so a crash between a Prefect call and our commit repeats
nothing visible:

- the flow run is created with the idempotency key ``route:<id>`` (unique per flow in
  Prefect's database), so two reconcilers racing after a lease expiry, or one repeating a
  creation whose id it never stored, get the same run;
- a task run's id is derived from the flow run id and the step id, and Prefect keeps one
  task run per (flow run, task, dynamic key = step number);
- a stored flow run id that Prefect no longer knows (its database was reset, someone deleted
  the run) is forgotten and the run is created again with the route's whole history.

Only identifiers reach Prefect (152-ФЗ): route id, step kind, agency short name (agencies
are not persons), region, template, dates and counts — never a name, SNILS or birth date.

The mirror refers to the ``rehabilitation-route`` flow and its ``agency-step`` task by name
(``flows/names.py``), never to the flow objects, and the worker runs it as a registered job
handler (:class:`PrefectMirrorHandler`): the engine's core imports nothing of Prefect. Our
database is read and written in threads, never on the worker's event loop; what was mirrored
is recorded with row locks taken in a fixed order that skip rows another transaction holds,
so two workers (or a worker and a transition) never deadlock on PostgreSQL.

Beside the states, each pass writes what changed of the route's card (an artifact), its
state tags and its new log lines (``tasks/prefect_card.py``, ``tasks/prefect_logs.py``);
what went out is recorded in ``route_mirror``. Log lines have no idempotency key in Prefect:
a pass whose outcome is unknown reads them back first (``reconcile(verify=True)``).

The state says where the route stands now, in Russian for the coordinators who read it (its
name stays Prefect's identifier, e.g. ``Escalated``), e.g. ``ожидается ответ участника
«Минздрав» до 19.01.2026, просрочен на 2 раб. дн. (эскалация) — шаг 2 из 3``: the answer period of
298-п Порядок п.11 (Регламент п.12), the send-by day of п.10, and the rungs of the
escalation ladder (363н п.10б; 298-п Порядок п.13, Регламент п.17).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from time import monotonic
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import prefect.context
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import FlowRunCreate
from prefect.client.schemas.objects import (
    FlowRun,
    FlowRunPolicy,
    State,
    StateType,
)
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES
from prefect.states import to_state_create
from sqlalchemy import Engine, bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

import calendars
from engine.infra import queue
from engine.infra.backoff import backoff_seconds, retry_async
from engine.infra.clock import DbClock
from engine.routes.receipt import steps_awaiting_receipt
from engine.runtime.handlers import WorkerContext
from flows.names import ROUTE_FLOW_NAME, STEP_TASK_NAME
from models.agencies import Agency
from models.jobs import ROUTE_WORK, JobKind
from models.labels import step_kind_ru
from models.mirror import RouteMirror
from models.route_life import END_REASON_RU, EndReason
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import template_of
from models.timers import (
    Escalation,
    EscalationLevel,
    EscalationStatus,
    Timer,
    TimerKind,
    TimerStatus,
)
from tasks.prefect_card import (
    STATE_TAGS,
    CardStep,
    card_digest,
    card_markdown,
    state_tags,
    write_card,
)
from tasks.prefect_logs import (
    LogEvent,
    StepRef,
    Watermark,
    advance,
    load_events_many,
    log_lines,
    write_lines,
    written_before,
)

NAMESPACE = uuid.UUID("6f1d7b1c-8a8e-4f8e-9a43-3d0a1f5e2c11")

#: Mirror jobs a worker claims at once.
BATCH_SIZE = 20
#: Routes reconciled side by side. 1: on Prefect's SQLite server concurrent flow-run
#: creations contend for its write lock (measured here: 2.8 routes/s one at a time, 0.9 with
#: two at a time, 0.5 with four; its 503s are asked again, ``BUSY_ATTEMPTS``).
CONCURRENCY = 1
#: Real seconds a worker spends on mirroring per pass before it goes back to core jobs
#: (answers and requests never wait long behind Prefect); unstarted jobs are released.
SLICE_SECONDS = 2.0
#: Route jobs due at once (answers to apply, requests to send) from which the workers count
#: as busy and the mirror gives way (``claim_mirror_jobs``); a region's steady load is a few.
BUSY_BACKLOG = 20
#: Real seconds one route's reconciliation may take before Prefect counts as unavailable.
CALL_TIMEOUT_SECONDS = 15.0
#: Real seconds to leave Prefect alone after it was found unavailable.
DOWN_RETRY_SECONDS = 5.0
#: Backoff of one route whose reconciliation failed on its own (base, cap; real seconds).
ERROR_BACKOFF_BASE_SECONDS = 5.0
ERROR_BACKOFF_MAX_SECONDS = 300.0

#: Prefect answers that mean "the server is unwell", not "this route is wrong".
_UNAVAILABLE_STATUS = frozenset({502, 503, 504})


def prefect_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says Prefect's API is down or unwell as a whole (connection refused
    or reset, timeout, a 502/503/504), so every route's mirroring should wait; False for an
    error of one route's reconciliation (a 4xx, a 500 on one request, bad data)."""
    if isinstance(exc, httpx.TransportError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in _UNAVAILABLE_STATUS
    return False


_NO_RETRY_SETTINGS: dict[int, tuple[Any, Any]] = {}


@contextmanager
def no_client_retries() -> Iterator[None]:
    """Within it, Prefect's client makes one attempt per request: its own retry loop waits
    up to a minute (2, 4, 8, 16, 32 s) on a dead server, and the worker must not; the job
    queue retries the mirroring instead. Tasks started inside inherit it."""
    ctx = prefect.context.get_settings_context()
    cached = _NO_RETRY_SETTINGS.get(id(ctx.settings))
    if cached is None or cached[0] is not ctx.settings:
        # building settings takes ~60 ms: once per base settings object
        cached = (ctx.settings,
                  ctx.settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: 0}))
        _NO_RETRY_SETTINGS[id(ctx.settings)] = cached
    with prefect.context.SettingsContext(profile=ctx.profile, settings=cached[1]):
        yield


@dataclass(frozen=True)
class MirrorMark:
    """``models/mirror.py:RouteMirror`` as the mirror reads it."""

    log: Watermark = Watermark()
    artifact_id: str | None = None
    artifact_digest: str | None = None
    tags: str | None = None
    unsure: bool = False


@dataclass(frozen=True)
class StepView:
    id: str
    seq: int
    kind: str
    status: StepStatus
    agency: str
    answer_by_date: date | None
    send_by_date: date | None
    task_run_id: str | None
    mirrored: str | None
    #: working days past the running deadline (None: not overdue)
    overdue_days: int | None = None
    #: the highest open rung of the escalation ladder (None: none open)
    escalation: EscalationLevel | None = None
    #: working days the answer came late (answered / absent steps)
    late_days: int | None = None
    #: the step was ever made ready (a planned step closed with its route never was)
    started: bool = True
    #: its request lies in a paper/inbox agency's inbox, not yet received (298-п п.11)
    awaiting_receipt: bool = False
    #: what is requested (the template's Russian text), for the route's card
    title: str = ""
    #: business dates the request reached the agency and the answer came (local days)
    sent_date: date | None = None
    answered_date: date | None = None
    #: the highest rung of the ladder the step ever reached (open or settled)
    rung_reached: EscalationLevel | None = None
    #: a recurring step between occurrences: the day its next check opens (001 Регламент
    #: п.6 пп.8); it is still open while the route lives
    next_check: date | None = None


@dataclass(frozen=True)
class RouteView:
    id: str
    region: str
    template: str
    status: RouteStatus
    flow_run_id: str | None
    mirrored: str | None
    steps: list[StepView]
    end_reason: str | None = None  # a terminated route's (004 п.13)
    #: the template's Russian title (the card)
    template_title: str = ""
    #: what was mirrored of the route beside its states (logs, artifact, tags)
    mark: MirrorMark = field(default_factory=MirrorMark)
    #: the route's audit records above the log watermark (``written``: lines already out)
    events: list[LogEvent] = field(default_factory=list)
    #: agencies' short names by id (the steps' and the records')
    agencies: dict[str, str] = field(default_factory=dict)
    #: the step id of each of the route's escalations, by escalation id
    escalations: dict[str, str] = field(default_factory=dict)
    #: branch steps waiting for the route's branch decision (000 п.13–15)
    awaiting_decision: tuple[str, ...] = ()


def _overdue_days(due_date: date | None, due_at: datetime | None, region: str,
                  provisional: bool, now: datetime) -> int | None:
    """Working days past a deadline (0: past it only by days off); None: not overdue."""
    if due_date is None or due_at is None or now < due_at:
        return None
    tz = calendars.get_calendar(region).timezone
    return calendars.working_days_late(
        calendars.Deadline(due_date=due_date, due_at=due_at, region=region, timezone=tz,
                           provisional=provisional), now)


def _local_day(at: datetime | None, region: str) -> date | None:
    if at is None:
        return None
    return at.astimezone(ZoneInfo(calendars.get_calendar(region).timezone)).date()


def load_view(engine: Engine, route_id: str, now: datetime | None = None) -> RouteView | None:
    """What the mirror shows of a route, as of business time ``now`` (default: the clock)."""
    return load_views(engine, [route_id], now).get(route_id)


def load_views(engine: Engine, route_ids: list[str],
               now: datetime | None = None) -> dict[str, RouteView]:
    """``load_view`` of several routes (a mirror pass's batch) in one read of each table,
    not one per route; a route that is not there is left out."""
    if now is None:
        now = DbClock(engine, ttl=0).now()
    ids = sorted(set(route_ids))
    with Session(engine) as s:
        routes = {r.id: r for r in s.exec(select(Route).where(col(Route.id).in_(ids)))}
        if not routes:
            return {}
        rows: dict[str, list[Step]] = {rid: [] for rid in routes}
        for st in s.exec(select(Step).where(col(Step.route_id).in_(routes))
                         .order_by(col(Step.route_id), col(Step.seq))):
            rows[st.route_id].append(st)
        rungs: dict[str, EscalationLevel] = {}
        reached: dict[str, EscalationLevel] = {}
        escalations: dict[str, dict[str, str]] = {rid: {} for rid in routes}
        for esc in s.exec(select(Escalation).where(col(Escalation.route_id).in_(routes))):
            step_id, level, status = esc.step_id, esc.level, esc.status
            escalations[esc.route_id][str(esc.id)] = step_id
            rung = EscalationLevel(level)
            reached[step_id] = max(reached.get(step_id, rung), rung)
            if status in (EscalationStatus.open, EscalationStatus.acknowledged):
                rungs[step_id] = max(rungs.get(step_id, rung), rung)
        marks = {rid: MirrorMark() for rid in routes}
        for stored in s.exec(select(RouteMirror)
                             .where(col(RouteMirror.route_id).in_(routes))):
            marks[stored.route_id] = MirrorMark(
                Watermark.parse(stored.log_through, stored.log_recent), stored.artifact_id,
                stored.artifact_digest, stored.tags, stored.unsure)
        events = load_events_many(s, {rid: m.log for rid, m in marks.items()})
        agency_ids = {st.agency_id for steps in rows.values() for st in steps if st.agency_id}
        for evs in events.values():
            for ev in evs:
                agency_ids.update(str(x) for x in (ev.before.get("agency_id"),
                                                   ev.after.get("agency_id")) if x)
        agencies = {a.id: a for a in s.exec(select(Agency)
                                            .where(col(Agency.id).in_(agency_ids)))}
        unreceived = steps_awaiting_receipt(
            s, [st.id for steps in rows.values() for st in steps
                if st.status is StepStatus.sending])
        next_check: dict[str, date] = dict(s.exec(
            select(col(Timer.step_id), col(Timer.due_date))
            .where(col(Timer.route_id).in_(routes), Timer.kind == TimerKind.recur_next,
                   Timer.status == TimerStatus.pending)).all())
    return {rid: _view(route, rows[rid], now, rungs=rungs, reached=reached,
                       escalations=escalations[rid], mark=marks[rid], events=events[rid],
                       agencies=agencies, unreceived=unreceived, next_check=next_check)
            for rid, route in routes.items()}


def _view(route: Route, rows: list[Step], now: datetime, *,
          rungs: dict[str, EscalationLevel], reached: dict[str, EscalationLevel],
          escalations: dict[str, str], mark: MirrorMark, events: list[LogEvent],
          agencies: dict[str, Agency], unreceived: set[str],
          next_check: dict[str, date]) -> RouteView:
    """One route's view out of what ``load_views`` read for its batch."""
    waiting: tuple[str, ...] = ()
    try:
        template = template_of(route)
        template_title = template.title
        titles = [t.requested for t in template.steps]
        waiting = tuple(st.kind for st in rows if st.status is StepStatus.planned
                        and st.seq < len(template.steps)
                        and template.waits_for_decision(st.seq))
    except ValueError:  # a template file gone: the step kinds stand in
        template_title, titles = route.template, []
    steps = []
    for st in rows:
        agency = agencies.get(st.agency_id or "")
        overdue: int | None = None
        if st.status is StepStatus.sending:
            # the send-by day is the sender's, the route's region (298-п Порядок п.10)
            overdue = _overdue_days(st.send_by_date, st.send_by, route.region,
                                    st.deadline_provisional, now)
        elif st.status is StepStatus.awaiting and agency is not None:
            # the answer-by day is the agency's (298-п Порядок п.11, Регламент п.12)
            overdue = _overdue_days(st.answer_by_date, st.answer_by, agency.region,
                                    st.deadline_provisional, now)
        steps.append(StepView(
            st.id, st.seq, st.kind, st.status, agency.short_name if agency else "—",
            st.answer_by_date, st.send_by_date, st.prefect_task_run_id, st.prefect_state,
            overdue_days=overdue, escalation=rungs.get(st.id),
            late_days=st.late_working_days, started=st.ready_at is not None,
            title=titles[st.seq] if st.seq < len(titles) else step_kind_ru(st.kind),
            sent_date=_local_day(st.sent_at, route.region),
            answered_date=_local_day(st.answered_at,
                                     agency.region if agency else route.region),
            rung_reached=reached.get(st.id),
            awaiting_receipt=st.id in unreceived,
            next_check=next_check.get(st.id),
        ))
    named = {st.agency_id for st in rows if st.agency_id}
    for ev in events:
        named.update(str(x) for x in (ev.before.get("agency_id"), ev.after.get("agency_id"))
                     if x)
    return RouteView(route.id, route.region, route.template, route.status,
                     route.prefect_flow_run_id, route.prefect_state, steps,
                     end_reason=route.end_reason,
                     template_title=template_title, mark=mark, events=events,
                     agencies={a: agencies[a].short_name for a in sorted(named)
                               if a in agencies},
                     escalations=escalations, awaiting_decision=waiting)


def _d(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else "—"


def _days(n: int) -> str:
    return f"{n} раб. дн."


def _overdue(st: StepView) -> str:
    """``, просрочен на 2 раб. дн. (эскалация)``; empty when on time."""
    if st.overdue_days is None:
        return ""
    text = f", просрочен на {_days(st.overdue_days)}" if st.overdue_days else ", просрочен"
    if st.escalation is EscalationLevel.escalated:
        text += " (эскалация)"
    elif st.escalation is EscalationLevel.overdue:
        text += " (координатор уведомлён)"
    return text


def _late(st: StepView) -> str:
    return f", опоздание {_days(st.late_days)}" if st.late_days else ""


def _of(st: StepView) -> str:
    """The agency as the object of a phrase: «участника «Минздрав»» (a short name is not
    declined: it stays in quotes, as in the log lines of ``tasks.prefect_logs``)."""
    return f"участника «{st.agency}»"


def step_state(st: StepView) -> State | None:
    """The Prefect state that shows a step (None: never started, no task run). The state's
    name is Prefect's identifier; its message is Russian (coordinators read it)."""
    if st.status is StepStatus.planned or not st.started:
        return None
    late = st.overdue_days is not None
    escalated = st.escalation is EscalationLevel.escalated
    if st.status is StepStatus.sending and st.awaiting_receipt:  # 298-п Порядок п.10, п.11
        return State(type=StateType.RUNNING,
                     name="Escalated" if escalated else "SendOverdue" if late
                     else "AwaitingReceipt",
                     message=f"запрос во входящих {_of(st)} ждёт получения (срок ответа "
                             f"считается с него); направить до {_d(st.send_by_date)}"
                             f"{_overdue(st)}")
    if st.status is StepStatus.sending:
        return State(type=StateType.RUNNING,
                     name="Escalated" if escalated else "SendOverdue" if late else "Sending",
                     message=f"запрос {_of(st)} направляется, направить до "
                             f"{_d(st.send_by_date)}{_overdue(st)}")
    if st.status is StepStatus.awaiting:
        return State(type=StateType.PAUSED,
                     name="Escalated" if escalated else "Overdue" if late else "AwaitingAnswer",
                     message=f"ожидается ответ {_of(st)} до {_d(st.answer_by_date)}"
                             f"{_overdue(st)}")
    if st.status is StepStatus.paused:  # 004 п.11
        return State(type=StateType.PAUSED, name="Paused",
                     message=f"отказ от сопровождения {_of(st)}; запросы не направляются "
                             "до возобновления")
    if st.status is StepStatus.needs_clarification:
        return State(type=StateType.PAUSED, name="NeedsClarification",
                     message=f"участник «{st.agency}» вернул запрос на уточнение; ожидается "
                             "уточнённый запрос координатора")
    if st.next_check is not None:  # a recurring check between occurrences
        return State(type=StateType.SCHEDULED, name="NextCheck",
                     message=f"участник «{st.agency}» ответил{_late(st)}; следующая "
                             f"проверка {_d(st.next_check)}")
    if st.status is StepStatus.answered:
        return State(type=StateType.COMPLETED, name="Answered",
                     message=f"участник «{st.agency}» ответил{_late(st)}")
    if st.status is StepStatus.absent:
        return State(type=StateType.COMPLETED, name="InformationAbsent",
                     message=f"участник «{st.agency}» сообщил об отсутствии сведений"
                             f"{_late(st)}")
    return State(type=StateType.CANCELLED, name="Closed", message="шаг закрыт куратором")


def route_state(view: RouteView) -> State:
    """The flow run's state: where the route stands now (its message in Russian); an active
    route whose branch steps wait for the branch decision says so (000 п.10–15: the person's
    choice and the assessment decide)."""
    state = _route_state(view)
    if view.status is RouteStatus.active and view.awaiting_decision:
        return State(type=state.type, name=state.name,
                     message=f"{state.message}; ожидается решение о направлениях: "
                             f"{', '.join(step_kind_ru(k) for k in view.awaiting_decision)}")
    return state


def _route_state(view: RouteView) -> State:
    n = len(view.steps)
    if view.status is RouteStatus.completed:
        answered = sum(s.status is StepStatus.answered for s in view.steps)
        absent = sum(s.status is StepStatus.absent for s in view.steps)
        closed = sum(s.status is StepStatus.cancelled for s in view.steps)
        parts = [f"ответов {answered}"]
        if absent:
            parts.append(f"сведений нет {absent}")
        if closed:
            parts.append(f"закрыто {closed}")
        return State(type=StateType.COMPLETED, name="Completed",
                     message=f"маршрут завершён: шагов {n}, {', '.join(parts)}")
    if view.status is RouteStatus.cancelled:
        done = sum(s.status in (StepStatus.answered, StepStatus.absent) for s in view.steps)
        return State(type=StateType.CANCELLED, name="Cancelled",
                     message=f"маршрут отменён куратором после {done} из {n} шагов")
    if view.status is RouteStatus.terminated:  # 004 п.13
        done = sum(s.status in (StepStatus.answered, StepStatus.absent) for s in view.steps)
        reason = view.end_reason or ""
        why = END_REASON_RU[EndReason(reason)] if reason in EndReason.__members__ \
            else (reason or "—")
        return State(type=StateType.CANCELLED, name="Terminated",
                     message=f"сопровождение прекращено ({why}) после {done} из {n} шагов")
    if view.status is RouteStatus.suspended:  # 152-ФЗ art. 9 ч.2
        done = sum(s.status in (StepStatus.answered, StepStatus.absent) for s in view.steps)
        return State(type=StateType.CANCELLED, name="Suspended",
                     message=f"маршрут приостановлен: согласие отозвано, после {done} из {n} "
                             "шагов")
    open_steps = [s for s in view.steps if (not s.status.terminal
                                            and s.status is not StepStatus.planned)
                  or s.next_check is not None]
    if not open_steps:
        return State(type=StateType.RUNNING, name="Running",
                     message="переход к следующему шагу")
    if len(open_steps) > 1:  # parallel steps (a template's depends_on): say which are open
        parts = []
        for s in open_steps:
            ss = step_state(s)
            assert ss is not None
            parts.append(f"шаг {s.seq + 1} «{step_kind_ru(s.kind)}»: {ss.message}")
        return State(type=StateType.RUNNING, name="Running",
                     message=f"открыто шагов: {len(open_steps)} из {n} — " + "; ".join(parts))
    current = open_steps[0]
    st = step_state(current)
    assert st is not None
    return State(type=StateType.RUNNING, name=st.name,
                 message=f"{st.message} — шаг {current.seq + 1} из {n}")


def _key(state: State) -> str:
    return f"{state.type.value}:{state.name}:{state.message}"[:200]


def task_run_id_for(flow_run_id: str, step_id: str) -> str:
    """The task run id of a step in a flow run (derived: a repeated creation finds it)."""
    return str(uuid.uuid5(NAMESPACE, f"{flow_run_id}/{step_id}"))


#: Prefect's id of the ``rehabilitation-route`` flow, per API URL (one POST less per route).
_FLOW_IDS: dict[str, uuid.UUID] = {}
#: A call Prefect refused as busy (503: its SQLite database was locked by a concurrent
#: write) is repeated after 0.05, 0.1, 0.2 … s (``engine.infra.backoff``), ``BUSY_ATTEMPTS`` calls
#: in all; then it counts as unavailable.
BUSY_ATTEMPTS = 6
BUSY_BACKOFF_BASE_SECONDS = 0.05
BUSY_BACKOFF_MAX_SECONDS = 0.8

T = TypeVar("T")


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code == 503


async def _call(fn: Callable[[], Awaitable[T]], calls: list[int]) -> T:
    """One Prefect API call, repeated after short waits while Prefect answers 503 (busy)."""

    def count() -> None:
        calls[0] += 1

    return await retry_async(fn, attempts=BUSY_ATTEMPTS, base=BUSY_BACKOFF_BASE_SECONDS,
                             cap=BUSY_BACKOFF_MAX_SECONDS, retry_on=_busy, on_attempt=count)


def _same(actual: State | None, wanted: State) -> bool:
    return actual is not None and _key(actual) == _key(wanted)


async def create_route_flow_run(client: PrefectClient, view: RouteView, state: State,
                                calls: list[int] | None = None) -> FlowRun:
    """The route's flow run, created once in ``state``: the idempotency key ``route:<id>``
    makes Prefect return the existing run (in whatever state it is) to a repeated or
    concurrent creation."""
    calls = calls if calls is not None else [0]
    tag = f"route:{view.id}"
    api = str(client.api_url)
    for attempt in (1, 2):
        flow_id = _FLOW_IDS.get(api)
        if flow_id is None:
            flow_id = await _call(partial(client.create_flow_from_name, ROUTE_FLOW_NAME),
                                  calls)
            _FLOW_IDS[api] = flow_id
        body = FlowRunCreate(
            flow_id=flow_id,
            name=f"route-{view.id}", parameters={"route_id": view.id},
            tags=flow_run_tags(view), idempotency_key=tag, state=to_state_create(state),
            empirical_policy=FlowRunPolicy(retries=0, retry_delay=0),
        )
        payload = body.model_dump(mode="json", exclude_unset=True)
        try:
            resp = await _call(partial(client.request, "POST", "/flow_runs/", json=payload),
                               calls)
        except PrefectHTTPStatusError as exc:
            if attempt == 2 or not _missing(exc):
                raise
            _FLOW_IDS.pop(api, None)  # Prefect's database was reset: the flow is new too
            continue
        return FlowRun.model_validate(resp.json())
    raise AssertionError("unreachable")


def _missing(exc: BaseException) -> bool:
    """Prefect says an object is not there (404) or refuses a reference to it (409)."""
    if isinstance(exc, ObjectNotFound):
        return True
    return isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code in (404, 409)


async def _flow_run_exists(client: PrefectClient, flow_run_id: str, calls: list[int]) -> bool:
    try:
        await _call(partial(client.read_flow_run, uuid.UUID(flow_run_id)), calls)
    except ObjectNotFound:
        return False
    return True


def forget(engine: Engine, route_id: str) -> None:
    """Drop what we stored of the route's Prefect runs (they are gone from Prefect)."""
    with Session(engine) as s:
        route = s.get(Route, route_id)
        if route is None:
            return
        route.prefect_flow_run_id = None
        route.prefect_state = None
        s.add(route)
        for st in s.exec(select(Step).where(Step.route_id == route_id)):
            st.prefect_task_run_id = None
            st.prefect_state = None
            s.add(st)
        s.execute(delete(RouteMirror).where(col(RouteMirror.route_id) == route_id))
        s.commit()


#: What one route's pass recorded, for ``_store``: the rows' updates and its
#: ``RouteMirror`` columns.
Updates = list[tuple[type[Route] | type[Step], str, dict[str, str]]]


@dataclass
class MirrorBatch:
    """What a pass over several routes reached Prefect with, recorded together at its end
    (``store``: one transaction for the batch, not one per route)."""

    #: by route id: the rows' updates and the ``RouteMirror`` columns of its last attempt
    routes: dict[str, tuple[Updates, dict[str, Any]]] = field(default_factory=dict)

    def add(self, route_id: str, updates: Updates, shown: dict[str, Any]) -> None:
        self.routes[route_id] = (updates, shown)

    def flow_run_id(self, route_id: str) -> str | None:
        """The flow run id this pass created for the route (not stored yet)."""
        for table, _, values in self.routes.get(route_id, ([], {}))[0]:
            if table is Route and "prefect_flow_run_id" in values:
                return values["prefect_flow_run_id"]
        return None

    def store(self, engine: Engine) -> int:
        updates = [u for ups, _ in self.routes.values() for u in ups]
        shown = [(rid, sh) for rid, (_, sh) in self.routes.items()]
        self.routes = {}
        return _store(engine, updates, shown)


async def reconcile(client: PrefectClient, engine: Engine, route_id: str, *,
                    now: datetime | None = None, verify: bool = False,
                    view: RouteView | None = None, batch: MirrorBatch | None = None) -> int:
    """Bring the route's Prefect runs in line with our DB; return the API calls made.

    ``now`` is business time (default: the clock), for "overdue by N working days".
    A flow run id of ours that Prefect no longer knows is forgotten and the run recreated.
    ``verify``: an earlier pass over this route may have ended unseen (its worker died, its
    lease ran out): the log lines and the card it may have written are read back first, so
    none is written twice (a pass that failed midway asks for this itself).
    ``view``: the route as the caller read it (``load_views``: a batch in one read);
    ``batch``: what reached Prefect is added to it, for the caller to store with the
    batch's (``MirrorBatch.store``), instead of being stored at once.
    """
    if view is None:
        view = await asyncio.to_thread(load_view, engine, route_id, now)
    if view is None:
        return 0
    calls = [0]
    try:
        await _reconcile(client, engine, view, calls, verify, batch)
    except (ObjectNotFound, PrefectHTTPStatusError) as exc:
        stored = (batch.flow_run_id(route_id) if batch is not None else None) \
            or await asyncio.to_thread(_stored_flow_run_id, engine, route_id)
        if not _missing(exc) or stored is None \
                or await _flow_run_exists(client, stored, calls):
            raise
        if batch is not None:  # what this attempt wrote went with the gone run
            batch.routes.pop(route_id, None)
        await asyncio.to_thread(forget, engine, route_id)
        view = await asyncio.to_thread(load_view, engine, route_id, now)
        assert view is not None
        await _reconcile(client, engine, view, calls, verify, batch)
    return calls[0]


def _stored_flow_run_id(engine: Engine, route_id: str) -> str | None:
    with Session(engine) as s:
        route = s.get(Route, route_id)
        return route.prefect_flow_run_id if route else None


async def _reconcile(client: PrefectClient, engine: Engine, view: RouteView,
                     calls: list[int], verify: bool = False,
                     batch: MirrorBatch | None = None) -> None:
    """Create what is missing (in its current state) and move what changed — the states,
    then the tags, the card and the log lines; what reached Prefect is recorded in one
    transaction at the end, even if a later call failed (or added to ``batch``)."""
    rstate = route_state(view)
    rkey = _key(rstate)
    route_values: dict[str, str] = {}
    updates: Updates = [(Route, view.id, route_values)]
    shown: dict[str, Any] = {}
    try:
        flow_run_id = view.flow_run_id
        route_mirrored = view.mirrored
        created_tags: list[str] | None = None
        if flow_run_id is None:
            fr = await create_route_flow_run(client, view, rstate, calls)
            created_tags = list(fr.tags)
            flow_run_id = str(fr.id)
            route_values["prefect_flow_run_id"] = flow_run_id
            route_mirrored = rkey if _same(fr.state, rstate) else None
            if route_mirrored:
                route_values["prefect_state"] = rkey
        for st in view.steps:
            state = step_state(st)
            if state is None:
                continue
            key = _key(state)
            if st.mirrored == key and st.task_run_id is not None:
                continue
            task_run_id = st.task_run_id
            done = False
            if task_run_id is None:
                created = await _create_task_run(client, flow_run_id, st, state, calls)
                task_run_id, done = str(created["id"]), _json_key(created.get("state")) == key
            if not done:
                try:
                    await _set_state(client, "task_runs", task_run_id, state, calls)
                except PrefectHTTPStatusError as exc:
                    if exc.response.status_code != 404:
                        raise
                    # the task run is gone, the flow run may not be: create it again
                    created = await _create_task_run(client, flow_run_id, st, state, calls)
                    task_run_id = str(created["id"])
                    if _json_key(created.get("state")) != key:
                        await _set_state(client, "task_runs", task_run_id, state, calls)
            updates.append((Step, st.id, {"prefect_task_run_id": task_run_id,
                                          "prefect_state": key}))
        if route_mirrored != rkey:
            await _set_state(client, "flow_runs", flow_run_id, rstate, calls)
            route_values["prefect_state"] = rkey
        await _show(client, view, flow_run_id, rstate, shown, calls,
                    verify=verify or view.mark.unsure, created_tags=created_tags)
    finally:
        if batch is not None:
            batch.add(view.id, updates, shown)
        else:
            await asyncio.to_thread(_store, engine, updates, (view.id, shown))


def _json_key(state: dict[str, Any] | None) -> str | None:
    """``_key`` of a state as Prefect's API returned it (JSON)."""
    if not state:
        return None
    return f"{state.get('type')}:{state.get('name')}:{state.get('message')}"[:200]


async def _set_state(client: PrefectClient, runs: str, run_id: str, state: State,
                     calls: list[int]) -> None:
    """Force a flow run's (``runs="flow_runs"``) or task run's (``"task_runs"``) state: the
    JSON of ``StateCreate`` built directly, the answer not parsed into models (the client's
    ``set_*_state`` build and validate several per call)."""
    flow = runs == "flow_runs"
    body = {"state": {"type": state.type.value, "name": state.name, "message": state.message,
                      "state_details": {"flow_run_id" if flow else "task_run_id": run_id,
                                        "transition_id": str(uuid.uuid4())},
                      "data": None},
            "force": True}
    await _call(partial(client.request, "POST", "/flow_runs/{id}/set_state" if flow
                        else "/task_runs/{id}/set_state",
                        path_params={"id": run_id}, json=body), calls)


class _Caller:
    """``_call`` with the pass's call counter (``prefect_logs.Call``)."""

    def __init__(self, calls: list[int]) -> None:
        self.calls = calls

    async def __call__(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await _call(fn, self.calls)


def _cards(view: RouteView) -> list[CardStep]:
    return [CardStep(st.seq, st.title or step_kind_ru(st.kind), st.status, st.agency, st.sent_date,
                     st.send_by_date, st.answer_by_date, st.answered_date, st.late_days,
                     st.overdue_days, st.escalation, st.rung_reached, st.started)
            for st in view.steps]


def flow_run_tags(view: RouteView) -> list[str]:
    """``route:<id>``, ``region:<code>``, ``template:<code>`` and the state tags."""
    return [f"route:{view.id}", f"region:{view.region}", f"template:{view.template}",
            *state_tags(_cards(view), active=view.status is RouteStatus.active)]


def route_card(view: RouteView, state: State | None = None) -> str:
    """The route's card (markdown): its state message first, then its steps."""
    state = state or route_state(view)
    return card_markdown(route_id=view.id, state_name=str(state.name),
                         state_message=state.message or "", template=view.template_title
                         or view.template, region=view.region, steps=_cards(view))


async def _show(client: PrefectClient, view: RouteView, flow_run_id: str, rstate: State,
                shown: dict[str, Any], calls: list[int], *, verify: bool,
                created_tags: list[str] | None) -> None:
    """The tags, the card and the new log lines of the route's flow run, each written only
    when it changed; ``shown`` collects what reached Prefect (``RouteMirror``'s columns)."""
    call = _Caller(calls)
    tags = flow_run_tags(view)
    state_text = ",".join(t for t in tags if t in STATE_TAGS)
    # a run just created has the tags it was created with (or, found by its idempotency
    # key, the ones it had); any other run, the ones last set
    had = None if created_tags is None else sorted(created_tags)
    if (had != sorted(tags)) if had is not None else (view.mark.tags != state_text):
        await call(partial(client.request, "PATCH", "/flow_runs/{id}",
                           path_params={"id": flow_run_id}, json={"tags": tags}))
    if view.mark.tags != state_text:
        shown["tags"] = state_text
    card = route_card(view, rstate)
    digest = card_digest(card)
    lines = log_lines(view.events, region=view.region, agencies=view.agencies,
                      steps={st.id: StepRef(st.seq, st.agency) for st in view.steps},
                      n_steps=len(view.steps), escalations=view.escalations)
    card_due = digest != view.mark.artifact_digest or view.mark.artifact_id is None
    if not card_due and all(ev.written for ev in view.events) and not verify:
        return  # (the watermark moves over settled ids with the next write)
    shown["unsure"] = True  # until the calls below are known to have gone through
    if card_due:
        shown["artifact_id"] = await write_card(
            client, call, route_id=view.id, flow_run_id=flow_run_id, markdown=card,
            artifact_id=view.mark.artifact_id, look_up=verify)
        shown["artifact_digest"] = digest
    if verify:
        done = await written_before(client, call, flow_run_id, lines)
        lines = [ln for ln in lines if ln.event_id not in done]
    await write_lines(client, call, flow_run_id, lines)
    mark = advance(view.mark.log, view.events)
    shown.update(log_through=mark.through, log_recent=mark.recent_text(), unsure=False)


async def _create_task_run(client: PrefectClient, flow_run_id: str, st: StepView,
                           state: State, calls: list[int]) -> dict[str, Any]:
    """The step's task run of ``agency-step``, created in ``state`` (Prefect returns an
    existing run of this flow run and dynamic key, in whatever state it is), as Prefect's
    JSON (``id``, ``state``). The key is the step's id, not its number: a template migration
    renumbers a route's steps, and a step taking over a number must not be mirrored onto
    another step's run. The JSON of ``TaskRunCreate`` is built directly (no models)."""
    body = {
        "id": task_run_id_for(flow_run_id, st.id),
        "name": f"{st.seq + 1}. {step_kind_ru(st.kind)} → {st.agency}", "flow_run_id": flow_run_id,
        "task_key": STEP_TASK_NAME, "dynamic_key": st.id, "tags": [], "labels": {},
        "empirical_policy": {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": None,
                             "retry_delay": None, "retry_jitter_factor": None},
        "state": {"type": state.type.value, "name": state.name, "message": state.message,
                  "state_details": {}, "data": None},
        "task_inputs": {},
    }
    resp = await _call(partial(client.request, "POST", "/task_runs/", json=body), calls)
    out: dict[str, Any] = resp.json()
    return out


def _store(engine: Engine, updates: Updates,
           shown: tuple[str, dict[str, Any]] | list[tuple[str, dict[str, Any]]] | None = None,
           ) -> int:
    """Record what was mirrored, in one transaction; return the rows written.

    ``shown`` (route id, columns), or a list of them (a batch's routes): the routes'
    ``RouteMirror`` rows — written always (an upsert, in route id order): no transition
    touches them, only another mirror of the same route, briefly.

    The rows are locked in a fixed order — the steps by id, then the routes, the order a
    transition takes them — and a row another transaction holds is skipped, never waited
    for (``FOR UPDATE SKIP LOCKED`` on PostgreSQL): two workers' mirrors, or a mirror and a
    transition, never deadlock. A skipped row is being changed; the next reconciliation
    compares again (Prefect's side is idempotent). ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: the
    ``route_mirror`` upsert's foreign key takes ``KEY SHARE`` on the route, which ``FOR
    UPDATE`` would block — two mirrors of one route deadlocked on it (the other holding the
    route and waiting for this one's ``route_mirror`` row). Rows with the same columns to set
    are written by one statement (executemany), not one each."""
    updates = [u for u in updates if u[2]]
    rows = [shown] if isinstance(shown, tuple) else list(shown or [])
    rows = sorted(((rid, values) for rid, values in rows if values), key=lambda r: r[0])
    if not updates and not rows:
        return 0
    written = 0
    with Session(engine) as s:
        held: set[str] = set()
        for table in (Step, Route):
            ids = sorted({row_id for t, row_id, _ in updates if t is table})
            if ids:
                held.update(s.exec(
                    select(table.id).where(col(table.id).in_(ids))
                    .order_by(col(table.id))
                    .with_for_update(skip_locked=True, key_share=True)))
        conn = s.connection()
        groups: dict[tuple[type[Route] | type[Step], tuple[str, ...]], list[dict[str, str]]] = {}
        for table, row_id, values in sorted(updates, key=lambda u: (u[0] is Route, u[1])):
            if row_id in held:
                groups.setdefault((table, tuple(sorted(values))), []).append(
                    {"_id": row_id, **{f"_v_{k}": v for k, v in values.items()}})
        for (table, keys), params in groups.items():
            t = Step.__table__ if table is Step else Route.__table__  # type: ignore[attr-defined]
            conn.execute(update(t).where(t.c.id == bindparam("_id"))
                         .values({k: bindparam(f"_v_{k}") for k in keys}), params)
            written += len(params)
        dialect = conn.dialect.name
        # one statement for each run of consecutive rows with the same columns, so the rows
        # are written (and locked) in ascending route id across statements too: two
        # overlapping batches never wait for each other in opposite orders
        runs: list[tuple[tuple[str, ...], list[dict[str, Any]]]] = []
        for rid, values in rows:
            keys = tuple(sorted(values))
            if not runs or runs[-1][0] != keys:
                runs.append((keys, []))
            runs[-1][1].append({"route_id": rid, **values})
        for keys, group in runs:
            conn.execute(_upsert_mirror(dialect, keys, group))
            written += len(group)
        s.commit()
    return written


def _upsert_mirror(dialect: str, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> Any:
    table = RouteMirror.__table__  # type: ignore[attr-defined]
    ins: Any = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    ins = ins.values(rows)
    return ins.on_conflict_do_update(index_elements=["route_id"],
                                     set_={k: ins.excluded[k] for k in keys})


# --------------------------------------------------------------------------- the handler
log = logging.getLogger("rehab.mirror")


def claim_mirror_jobs(worker: WorkerContext, refs: list[str] | None) -> list[queue.ClaimedJob]:
    """A batch of due mirror jobs — only those due ``mirror_max_lag_seconds`` already while
    the workers are busy with the routes' own work (``queue.busy``: ``BUSY_BACKLOG`` jobs of
    it due, or one waiting unclaimed for over a second). In a burst, Prefect's calls (and
    the Prefect server's CPU behind each, about four times the caller's) wait, the routes
    go first and the mirror catches up after, its view never more than the lag late. Asked
    for given routes (``refs``), it claims them at once."""
    lag = worker.settings.mirror_max_lag_seconds
    wait = lag if refs is None and lag and queue.busy(
        worker.engine, ROUTE_WORK, backlog=BUSY_BACKLOG) else 0.0
    return queue.claim(worker.engine, worker.worker_id, kinds=[JobKind.mirror_route],
                       limit=BATCH_SIZE, lease_seconds=worker.settings.job_lease_seconds,
                       refs=refs, due_for_seconds=wait)


class PrefectMirrorHandler:
    """The worker's handler of ``mirror_route`` jobs (registered at start-up).

    Each pass mirrors a batch of routes (``CONCURRENCY`` at a time) for at most
    ``SLICE_SECONDS`` of real time (jobs not started within it are released for the next
    pass, not counted as attempts), so that answers and requests never wait long behind
    Prefect. Prefect unavailable (connection refused, timeout, 502/503/504): the batch's
    unfinished jobs wait ``DOWN_RETRY_SECONDS`` (not counted as attempts either) and no
    mirror job is claimed meanwhile; the routes go on and the mirror catches up. Any other
    error is one route's: only its job backs off, the others are mirrored.
    """

    kinds: tuple[JobKind, ...] = (JobKind.mirror_route,)

    def __init__(self, api_url: str | None = None) -> None:
        self.api_url = api_url or None
        self.client: PrefectClient | None = None
        #: real-time instant (monotonic) before which Prefect is left alone (it was down)
        self.down_until = 0.0

    async def aclose(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.__aexit__(None, None, None)

    async def run_once(self, worker: WorkerContext, refs: list[str] | None) -> int:
        if monotonic() < self.down_until:
            return 0
        jobs = await asyncio.to_thread(claim_mirror_jobs, worker, refs)
        if not jobs:
            return 0
        with no_client_retries():  # our queue retries, not a minute-long client loop
            down, pending = await self._mirror_jobs(worker, jobs)
        if down is not None:  # Prefect down: the routes go on, the mirror catches up
            worker.stats.mirror_errors += 1
            self.down_until = monotonic() + DOWN_RETRY_SECONDS
            try:
                await self.aclose()
            except Exception:  # noqa: BLE001 - a dead connection may not close cleanly
                log.debug("closing the Prefect client failed", exc_info=True)
            log.warning("prefect unavailable (%s: %s); mirroring waits %.0f s",
                        type(down).__name__, str(down)[:300], DOWN_RETRY_SECONDS)
            error = f"prefect unavailable: {type(down).__name__}: {down}"
            for j in pending:  # not the route's fault: not counted against its maximum
                await asyncio.to_thread(worker.retry_job, j, error[:300],
                                        delay=DOWN_RETRY_SECONDS, count_attempt=False)
        return len(jobs)

    async def _mirror_jobs(
        self, worker: WorkerContext, jobs: list[queue.ClaimedJob],
    ) -> tuple[BaseException | None, list[queue.ClaimedJob]]:
        """Reconcile the jobs' routes; return (why Prefect is unavailable or None, the jobs
        left unfinished because of it)."""
        try:
            if self.client is None:
                client = PrefectClient(api=self.api_url) if self.api_url else get_client()
                await client.__aenter__()
                self.client = client
        except Exception as exc:  # noqa: BLE001 - any failure to reach Prefect
            return exc, jobs
        prefect = self.client
        now = worker.clock.now()
        slice_end = monotonic() + SLICE_SECONDS
        try:  # the batch's routes in one read of each table, not one each
            views: dict[str, RouteView] | None = await asyncio.to_thread(
                load_views, worker.engine, [j.ref for j in jobs], now)
        except Exception:  # noqa: BLE001 - each route reads its own: a bad one fails alone
            log.warning("reading the mirror batch failed; routes read one by one",
                        exc_info=True)
            views = None
        batch = MirrorBatch()
        done: list[queue.ClaimedJob] = []

        async def one(job: queue.ClaimedJob) -> None:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                # claimed before and not finished (a worker died, a lease ran out, a retry):
                # what that pass wrote is read back before logs and the card are written
                await reconcile(prefect, worker.engine, job.ref, now=now,
                                verify=job.attempts > 1,
                                view=views.get(job.ref) if views is not None else None,
                                batch=batch)
            done.append(job)

        failed: list[tuple[queue.ClaimedJob, str, float]] = []
        try:
            return await self._each(worker, jobs, one, slice_end, failed)
        finally:  # what reached Prefect is recorded, then the jobs done are finished
            await asyncio.to_thread(self._settle, worker, batch, done, failed)

    @staticmethod
    def _settle(worker: WorkerContext, batch: MirrorBatch, done: list[queue.ClaimedJob],
                failed: list[tuple[queue.ClaimedJob, str, float]]) -> None:
        """Record the batch's outcome in one transaction, then finish its done jobs in
        another (a job's row is never locked while the routes' rows are); if recording
        fails, the done jobs are retried (Prefect's side is idempotent). The jobs of routes
        that failed are released for their retry only now, after what their pass showed was
        recorded: another worker's later pass is never overwritten by this one's."""
        try:
            batch.store(worker.engine)
        except Exception as exc:  # noqa: BLE001 - the jobs are retried, not lost
            log.warning("recording the mirror batch failed (%s: %s)", type(exc).__name__,
                        str(exc)[:200])
            for job in done:
                worker.retry_job(job, f"{type(exc).__name__}: {exc}"[:300])
        else:
            worker.finish_jobs(done)
        for job, error, delay in failed:
            worker.retry_job(job, error, delay=delay)

    async def _each(
        self, worker: WorkerContext, jobs: list[queue.ClaimedJob],
        one: Callable[[queue.ClaimedJob], Awaitable[None]], slice_end: float,
        failed: list[tuple[queue.ClaimedJob, str, float]],
    ) -> tuple[BaseException | None, list[queue.ClaimedJob]]:
        """Mirror the jobs' routes, ``CONCURRENCY`` at a time; a route's own failure is put
        in ``failed`` (its job, error, delay) for ``_settle`` to retry after the batch is
        recorded. Returns Prefect's unavailability and the jobs not done, or (None, [])."""
        pending = list(jobs)
        while pending:
            chunk, pending = pending[:CONCURRENCY], pending[CONCURRENCY:]
            results = await asyncio.gather(*(one(j) for j in chunk), return_exceptions=True)
            down: BaseException | None = None
            for job, res in zip(chunk, results, strict=True):
                if res is None:
                    worker.stats.mirrored += 1
                elif not isinstance(res, Exception):
                    raise res  # cancellation, KeyboardInterrupt: not ours to swallow
                elif prefect_unavailable(res):
                    down = res
                    pending.append(job)
                else:
                    # this route's own trouble: it backs off alone, the others go on
                    worker.stats.mirror_errors += 1
                    delay = backoff_seconds(job.attempts, base=ERROR_BACKOFF_BASE_SECONDS,
                                            cap=ERROR_BACKOFF_MAX_SECONDS)
                    log.warning("prefect mirror of route %s failed (%s: %s); retry in %.0f s",
                                job.ref, type(res).__name__, str(res)[:200], delay)
                    failed.append((job, f"{type(res).__name__}: {res}"[:300], delay))
            if down is not None:
                return down, pending
            if pending and monotonic() >= slice_end:
                for j in pending:  # the slice is used up: core jobs go first
                    await asyncio.to_thread(worker.retry_job, j,
                                            "deferred: mirror time slice used up", delay=0.0,
                                            count_attempt=False)
                return None, []
        return None, []
