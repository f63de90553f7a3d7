"""A route's transitions as log lines of its Prefect flow run: Russian, with the business date.

Each line comes from one audit record of the route (the audit log is the history of every
transition, ``engine/infra/audit.py``), e.g. ``24.01.2026: шаг 2 — получен ответ участника
«Минздрав», опоздание 2 раб. дн.``: sent (delivered to the agency, with the answer-by day of
298-п Порядок п.11, Регламент п.12), answered, notice of absence (п.11), returned for
clarification, refused, overdue and escalated (the ladder: 298-п Порядок п.13, Регламент
п.17; 363н п.10б), extended, reassigned, closed by a supervisor, closed with the route's
termination (004 п.13) or its completion (a recurring check), suspended (152-ФЗ art. 9 ч.2)
and resumed, a participant refused and resumed (004 п.11), terminated (004 п.13), re-planned,
migrated, cancelled, completed. The date is the record's business instant in the route's
region (its calendar's time zone); the line's timestamp is that instant too, so the Logs tab
reads in business time. Records of one instant (one transaction: an answer and the next
step's request, the route's completion) are a microsecond apart in record order, as Prefect
orders logs by timestamp alone and PostgreSQL returns ties in any order.

Identifiers and agency names only (152-ФЗ): a record's free text (a supervisor's reason, an
agency's comment, a clarification) never becomes a log line.

Once per transition: the mirror keeps a watermark (``models/mirror.py:RouteMirror``) — every
record up to ``log_through`` is written, and the ids above it written already are listed in
``log_recent`` until they are older than ``SETTLE_SECONDS`` of real time. (On PostgreSQL two
transactions of one route may commit out of id order; a record is only ever passed over by
the watermark once every transaction that could still commit a smaller id has had a minute.)
Each line's logger name carries its record's id (``rehab.audit.<id>``), so a pass whose
outcome is unknown (a crash, a timeout) reads the run's logs back and writes only what is
missing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp
from sqlalchemy import and_, or_, select
from sqlmodel import Session

import calendars
from engine.escalations.ladder import REFUSED
from models.audit import AuditEvent
from models.route_life import END_REASON_RU, EndReason
from models.timers import DeadlineKind, EscalationLevel
from models.types import utcnow

#: Real seconds after which an audit record can no longer be overtaken by a record of a
#: transaction still open (transactions last well under it).
SETTLE_SECONDS = 60.0
#: Longest ``log_recent`` kept (its column's length).
RECENT_MAX_CHARS = 2000
#: Logger name of a line: ``rehab.audit.<audit record id>``.
LOGGER_PREFIX = "rehab.audit."

INFO, WARNING = 20, 30
#: Logs read back per call (Prefect's default page limit).
READ_PAGE = 200

T = TypeVar("T")

#: (entity, action) of the audit records that are transitions a coordinator reads.
LOGGED: frozenset[tuple[str, str]] = frozenset({
    ("route", "registered"), ("route", "completed"), ("route", "cancelled"),
    ("route", "suspended"), ("route", "resumed"),
    ("route", "participant_refused"), ("route", "participant_resumed"),
    ("route", "terminated"), ("route", "replanned"), ("route", "migrated"),
    ("step", "awaiting_answer"), ("step", "answer_provided"), ("step", "answer_absent"),
    ("step", "answer_rejected"), ("step", "request_refused"),
    ("step", "resent_with_clarification"), ("step", "reassigned"), ("step", "closed"),
    ("step", "deadline_extended"), ("step", "closed_route_terminated"),
    ("step", "closed_with_route"),
    ("escalation", "opened"), ("escalation", "acknowledged"),
})


@dataclass(frozen=True)
class LogEvent:
    """The parts of an audit record a log line is made of (never its free-text reason)."""

    id: int
    at: datetime
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any]
    after: dict[str, Any]
    #: real time the record was written (the watermark's settle time counts from it)
    real_at: datetime
    refused: bool = False  # an escalation opened because the agency refused the request
    #: its line is in Prefect already (an id of ``Watermark.recent``)
    written: bool = False


@dataclass(frozen=True)
class StepRef:
    """How a line names a step: its number and its agency's short name."""

    seq: int
    agency: str


@dataclass(frozen=True)
class LogLine:
    event_id: int
    #: the line's timestamp: its record's business instant (plus the tie-break of
    #: ``log_lines``)
    at: datetime
    level: int
    message: str

    @property
    def name(self) -> str:
        return f"{LOGGER_PREFIX}{self.event_id}"


@dataclass(frozen=True)
class Watermark:
    through: int = 0
    recent: frozenset[int] = frozenset()

    @staticmethod
    def parse(through: int, recent: str | None) -> Watermark:
        ids = frozenset(int(x) for x in (recent or "").split(",") if x.strip())
        return Watermark(through, frozenset(i for i in ids if i > through))

    def recent_text(self) -> str | None:
        return ",".join(str(i) for i in sorted(self.recent)) or None


def load_events(session: Session, route_id: str, mark: Watermark) -> list[LogEvent]:
    """The route's audit records of the kinds that make log lines above the watermark, in id
    order (one indexed read); those whose line is written already are marked ``written``."""
    return load_events_many(session, {route_id: mark})[route_id]


_ACTIONS = sorted({a for _, a in LOGGED})


def load_events_many(session: Session,
                     marks: dict[str, Watermark]) -> dict[str, list[LogEvent]]:
    """``load_events`` of several routes in one read (each above its own watermark)."""
    out: dict[str, list[LogEvent]] = {rid: [] for rid in marks}
    if not marks:
        return out
    # plain rows of the columns a line is made of (no ORM objects: a route's records
    # within the settle time are read again on each pass)
    t = AuditEvent.__table__  # type: ignore[attr-defined]
    rows = session.connection().execute(
        select(t.c.id, t.c.route_id, t.c.at, t.c.entity, t.c.entity_id, t.c.action,
                  t.c.before, t.c.after, t.c.real_at, t.c.reason)
        .where(or_(*(and_(t.c.route_id == rid, t.c.id > mark.through)
                     for rid, mark in sorted(marks.items()))),
               t.c.action.in_(_ACTIONS))
        .order_by(t.c.id)).all()
    for r in rows:
        if (r.entity, r.action) not in LOGGED:
            continue
        out[r.route_id].append(LogEvent(
            r.id, r.at, r.entity, r.entity_id, r.action, dict(r.before or {}),
            dict(r.after or {}), r.real_at,
            refused=r.entity == "escalation" and (r.reason or "").startswith(REFUSED),
            written=r.id in marks[r.route_id].recent))
    return out


def advance(mark: Watermark, handled: Iterable[LogEvent], *,
            real_now: datetime | None = None) -> Watermark:
    """The watermark once ``handled`` (every record above it that was loaded: their lines
    reached Prefect, now or before, or they make none): a record older than
    ``SETTLE_SECONDS`` of real time moves ``through`` up to it; newer ones wait in
    ``recent``."""
    real_now = real_now or utcnow()
    settled_before = real_now - timedelta(seconds=SETTLE_SECONDS)
    through = mark.through
    recent = set(mark.recent)
    for ev in handled:
        if ev.real_at < settled_before:
            through = max(through, ev.id)
        else:
            recent.add(ev.id)
    kept = sorted(i for i in recent if i > through)
    while kept and len(",".join(map(str, kept))) > RECENT_MAX_CHARS:
        through = kept.pop(0)  # the oldest goes under the watermark (the column's length)
    return Watermark(through, frozenset(kept))


def _day(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%d.%m.%Y")


def _date(value: Any) -> str:
    """A date stored in an audit record (ISO text or a date) as dd.mm.yyyy."""
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10]).strftime("%d.%m.%Y")
        except ValueError:
            return "—"
    return "—"


def _late(days: Any) -> str:
    if isinstance(days, int) and days > 0:
        return f", опоздание {days} раб. дн."
    return ", в срок"


def _message(ev: LogEvent, steps: dict[str, StepRef], agencies: dict[str, str],
             escalations: dict[str, str], n_steps: int) -> tuple[int, str] | None:
    """(level, text after the date) of one record; None: no line."""
    a, b = ev.after, ev.before
    if ev.entity == "route":
        return _route_message(ev, agencies, n_steps)
    step_id = str(a.get("step_id") or escalations.get(ev.entity_id, "")) \
        if ev.entity == "escalation" else ev.entity_id
    ref = steps.get(step_id)
    if ref is None:
        return None
    agency = agencies.get(str(a.get("agency_id") or ""), ref.agency)
    head = f"шаг {ref.seq + 1} — "
    if ev.entity == "escalation":
        if ev.action == "acknowledged":
            return INFO, head + "эскалация принята руководителем в работу"
        return _escalation(ev, head, agency)
    match ev.action:
        case "awaiting_answer":
            return INFO, (head + f"запрос доставлен участнику «{agency}», срок ответа "
                          f"{_date(a.get('answer_by'))}")
        case "answer_provided":
            return INFO, head + f"получен ответ участника «{agency}»" + _late(
                a.get("late_working_days"))
        case "answer_absent":
            return INFO, head + f"участник «{agency}» сообщил об отсутствии сведений" + _late(
                a.get("late_working_days"))
        case "answer_rejected":
            return WARNING, head + (f"участник «{agency}» вернул запрос на уточнение; "
                                    f"ждёт уточнения координатором")
        case "request_refused":
            return WARNING, head + (f"система участника «{agency}» отказала в приёме "
                                    f"запроса; ждёт уточнения координатором")
        case "resent_with_clarification":
            return INFO, head + (f"уточнённый запрос направлен участнику «{agency}», срок "
                                 f"направления {_date(a.get('send_by'))}")
        case "reassigned":
            old = agencies.get(str(b.get("agency_id") or ""), "—")
            return INFO, head + (f"передан участнику «{agency}» (был «{old}»), срок "
                                 f"направления {_date(a.get('send_by'))}")
        case "closed":
            return WARNING, head + "закрыт руководителем"
        case "closed_route_terminated":
            return WARNING, head + "закрыт: сопровождение прекращено"
        case "closed_with_route":
            return INFO, head + "повторяющаяся проверка завершена вместе с маршрутом"
        case "deadline_extended":
            new = a.get("answer_by") or a.get("send_by") or a.get("complete_by")
            return INFO, head + f"срок продлён руководителем до {_date(new)}"
    return None


def _route_message(ev: LogEvent, agencies: dict[str, str],
                   n_steps: int) -> tuple[int, str] | None:
    """A route-level record: registered, completed, closed, suspended and resumed (152-ФЗ
    art. 9), a participant refused and resumed (004 п.11), terminated (004 п.13),
    re-planned on a new ИПРА (004 п.10 пп.б), migrated to a new template version."""
    a, b = ev.after, ev.before
    who = agencies.get(str(a.get("agency_id") or ""), "") if a.get("agency_id") else ""
    party = f"участника «{who}»" if who else "всех участников"
    reason = ""
    if ev.action == "terminated" and a.get("reason") in set(EndReason):
        reason = END_REASON_RU[EndReason(str(a["reason"]))]
    return {
        "registered": (INFO, f"маршрут зарегистрирован, шагов: {n_steps}"),
        "completed": (INFO, "маршрут завершён"),
        "cancelled": (WARNING, "маршрут закрыт руководителем"),
        "suspended": (WARNING, "маршрут приостановлен: согласие на обработку данных "
                               "отозвано"),
        "resumed": (INFO, "маршрут возобновлён"),
        "participant_refused": (WARNING, f"отказ от сопровождения {party}: шаги "
                                         "приостановлены"),
        "participant_resumed": (INFO, f"сопровождение {party} возобновлено с оставшимися "
                                      "рабочими днями"),
        "terminated": (WARNING, "сопровождение прекращено" + (f": {reason}" if reason else "")),
        "replanned": (INFO, f"маршрут пересмотрен по новой ИПРА: добавлено "
                            f"{len(a.get('added', ()))}, отменено {len(a.get('cancelled', ()))}, "
                            f"перенесено {len(a.get('redated', ()))}"),
        "migrated": (INFO, f"маршрут переведён на версию шаблона {a.get('template_version')} "
                           f"(была {b.get('template_version')})"),
    }.get(ev.action)


def _escalation(ev: LogEvent, head: str, agency: str) -> tuple[int, str] | None:
    """A rung of the ladder reached (298-п Порядок п.10, п.11, п.13; 363н п.10б)."""
    a = ev.after
    try:
        level = EscalationLevel(int(a.get("level", -1)))
        kind = DeadlineKind(str(a.get("deadline_kind", DeadlineKind.answer_by.value)))
    except ValueError:
        return None
    due = _date(a.get("deadline"))
    if ev.refused:
        return WARNING, head + (f"эскалация руководителю: участник «{agency}» отказал в "
                                f"приёме запроса")
    if level is EscalationLevel.reminder:
        return INFO, head + f"напоминание участнику «{agency}»: срок ответа {due}"
    overdue = level is EscalationLevel.overdue
    if kind is DeadlineKind.send_by:
        return WARNING, head + (f"запрос участнику «{agency}» не доставлен в срок {due}, "
                                f"координатор уведомлён" if overdue else
                                f"эскалация руководителю: запрос участнику «{agency}» не "
                                f"доставлен, срок был {due}")
    if kind is DeadlineKind.complete_by:
        return WARNING, head + (f"шаг не выполнен в срок {due}, координатор уведомлён"
                                if overdue else
                                f"эскалация руководителю: шаг не выполнен, срок был {due}")
    return WARNING, head + (f"ответ участника «{agency}» просрочен (срок {due}), "
                            f"координатор уведомлён" if overdue else
                            f"эскалация руководителю: участник «{agency}» не ответил, срок "
                            f"был {due}")


def log_lines(events: Iterable[LogEvent], *, region: str, steps: dict[str, StepRef],
              agencies: dict[str, str], n_steps: int,
              escalations: dict[str, str] | None = None) -> list[LogLine]:
    """The log lines of ``events`` (``dd.mm.yyyy: …``, the date in ``region``'s calendar
    time zone), one per record that makes a line and is not ``written``; ``events`` in id
    order, the k-th record of one instant stamped k microseconds after it. ``steps``: by step
    id; ``agencies``: short names by id; ``escalations``: the step id of each escalation
    id."""
    tz = ZoneInfo(calendars.get_calendar(region).timezone)
    out = []
    of_instant: dict[datetime, int] = {}  # records seen so far at each instant
    for ev in events:
        k = of_instant.get(ev.at, 0)
        of_instant[ev.at] = k + 1
        if ev.written:
            continue
        made = _message(ev, steps, agencies, escalations or {}, n_steps)
        if made is not None:
            level, text = made
            out.append(LogLine(ev.id, ev.at + timedelta(microseconds=k), level,
                               f"{_day(ev.at, tz)}: {text}"))
    return out


def event_id_of(logger_name: str) -> int | None:
    """The audit record id a line's logger name carries (None: not one of ours)."""
    if not logger_name.startswith(LOGGER_PREFIX):
        return None
    tail = logger_name.removeprefix(LOGGER_PREFIX)
    return int(tail) if tail.isdigit() else None


class Call(Protocol):
    """One Prefect API call as the mirror makes it (busy answers asked again, counted)."""

    def __call__(self, fn: Callable[[], Awaitable[T]]) -> Awaitable[T]: ...


async def written_before(client: PrefectClient, call: Call, flow_run_id: str,
                         lines: list[LogLine]) -> set[int]:
    """Of ``lines``, the record ids whose line the flow run has already (a pass whose outcome
    was unknown wrote them): the run's logs in the lines' time window, read back."""
    if not lines:
        return set()
    flt = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(flow_run_id)]),
                    timestamp=LogFilterTimestamp(after_=min(ln.at for ln in lines),
                                                 before_=max(ln.at for ln in lines)))
    found: set[int] = set()
    offset = 0
    while True:
        page = await call(partial(client.read_logs, log_filter=flt, limit=READ_PAGE,
                                  offset=offset))
        found.update(i for log in page if (i := event_id_of(log.name)) is not None)
        if len(page) < READ_PAGE:
            return found & {ln.event_id for ln in lines}
        offset += READ_PAGE


async def write_lines(client: PrefectClient, call: Call, flow_run_id: str,
                      lines: list[LogLine]) -> None:
    """The lines as logs of the flow run, in one call."""
    if not lines:
        return
    # the JSON of ``LogCreate`` built directly (no models to build and dump per line)
    await call(partial(client.request, "POST", "/logs/", json=[
        {"name": ln.name, "level": ln.level, "message": ln.message,
         "timestamp": _utc(ln.at).isoformat(), "flow_run_id": flow_run_id,
         "task_run_id": None} for ln in lines]))


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
