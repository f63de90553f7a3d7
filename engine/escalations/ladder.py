"""The escalation ladder: reminder (0), overdue (1), escalated (2), and its resolution.

- level 0, reminder: the agency is reminded before its answer deadline (298-п Порядок п.11,
  Регламент п.12: 5 working days to answer);
- level 1, overdue: at a deadline the route's coordinator is told — the rehabilitation
  organisation answers for the route's deadlines (363н п.10б). The deadlines: send by
  (298-п Порядок п.10: 1 working day), answer by, and complete by (the ИПРА measure's
  execution deadline, 545н, or the template's);
- level 2, escalated: some working days later the region's supervisors are told — the
  Ministry of Social Policy controls interagency interaction (298-п Порядок п.13,
  Регламент п.17). An agency that refuses a request outright (a 4xx) is level 2 at once.

Each level happens once per step, deadline and deadline version (``Escalation`` is unique on
(step_id, deadline_kind, level, deadline_version)); an answer stops the ladder and resolves
what is open, recording how many working days late it came.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, exists, update
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

import calendars
from engine.escalations import timers
from engine.infra import audit
from engine.infra.locks import lock_step, reread
from engine.notifications import outbox as notify
from models.agencies import Agency
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import template_of
from models.timers import (
    DeadlineKind,
    Escalation,
    EscalationLevel,
    EscalationStatus,
    Timer,
    TimerKind,
    TimerStatus,
)

SYSTEM = "system:ladder"

LEVEL_OF: dict[TimerKind, EscalationLevel] = {
    TimerKind.answer_reminder: EscalationLevel.reminder,
    TimerKind.answer_overdue: EscalationLevel.overdue,
    TimerKind.send_overdue: EscalationLevel.overdue,
    TimerKind.complete_overdue: EscalationLevel.overdue,
    TimerKind.answer_escalation: EscalationLevel.escalated,
    TimerKind.send_escalation: EscalationLevel.escalated,
    TimerKind.complete_escalation: EscalationLevel.escalated,
}

OPEN_STATES = (EscalationStatus.open, EscalationStatus.acknowledged)

_ESCALATIONS = Escalation.__table__  # type: ignore[attr-defined]
_OPEN_OF_STEP = (select(_ESCALATIONS.c.id, _ESCALATIONS.c.status, _ESCALATIONS.c.deadline_kind)
                 .where(_ESCALATIONS.c.step_id == bindparam("step_id"),
                        _ESCALATIONS.c.status.in_(OPEN_STATES))
                 .order_by(_ESCALATIONS.c.id))



def has_open_of(step_id: Any) -> Any:
    """An EXISTS: the step has an open (or acknowledged) escalation. Read with the step
    after its lock, it lets a transition skip ``resolve_open``'s SELECT when there are none
    (most transitions)."""
    t = _ESCALATIONS
    return exists().where(t.c.step_id == step_id, t.c.status.in_(OPEN_STATES))


REFUSED = "agency refused the request"
"""The cause of a level-2 escalation opened at once when the agency refuses a request."""


class FireOutcome(StrEnum):
    fired = "fired"  # the rung was reached (escalation opened, people notified)
    stale = "stale"  # the step moved on: the timer was cancelled instead
    busy = "busy"  # another transaction holds the step: left pending for a later pass


def _ru(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else "—"


def _texts(kind: DeadlineKind, level: EscalationLevel, *, step: Step, requested: str,
           agency: str, due: date | None, cause: str | None = None) -> tuple[str, str]:
    """Subject and body in Russian; identifiers only, no personal data (152-ФЗ)."""
    ref = f"маршрут {step.route_id}, шаг {step.seq + 1} «{requested}»"
    task = f"запрос {step.current_request_id}" if step.current_request_id else "запрос"
    control = ("Контроль межведомственного взаимодействия — Министерство социальной политики "
               "(постановление 298-п, п. 13, п. 17).")
    if cause is not None and cause.startswith(REFUSED):
        return (
            f"Участник отказал в приёме межведомственного запроса: {agency}",
            f"Система участника «{agency}» отказала в приёме межведомственного запроса "
            f"({task}; {ref}): {cause.removeprefix(REFUSED).lstrip(': ')}. Шаг ждёт "
            f"уточнения запроса координатором или решения руководителя. {control}",
        )
    if kind is DeadlineKind.send_by:
        if level is EscalationLevel.overdue:
            return (
                f"Запрос не направлен в срок {_ru(due)}: {agency}",
                f"Межведомственный запрос ({task}; {ref}) участнику «{agency}» не доставлен "
                f"в срок {_ru(due)} — 1 рабочий день (постановление 298-п, п. 10).",
            )
        return (
            f"Эскалация: межведомственный запрос не направлен, срок был {_ru(due)}",
            f"Эскалация: межведомственный запрос ({task}; {ref}) участнику «{agency}» так и "
            f"не доставлен; срок направления (1 рабочий день, постановление 298-п, п. 10) "
            f"истёк {_ru(due)}. {control}",
        )
    if kind is DeadlineKind.complete_by:
        source = ("срок исполнения мероприятия ИПРА" if step.complete_by_source == "ipra"
                  else "срок шага по шаблону маршрута")
        if level is EscalationLevel.overdue:
            return (
                f"Мероприятие маршрута не выполнено в срок {_ru(due)}",
                f"Шаг маршрута ({ref}; участник «{agency}») не выполнен к {_ru(due)} "
                f"({source}). Организация обеспечивает соблюдение сроков и полноту "
                f"маршрута (приказ 363н, п. 10б).",
            )
        return (
            f"Эскалация: мероприятие маршрута не выполнено, срок был {_ru(due)}",
            f"Эскалация: шаг маршрута ({ref}; участник «{agency}») не выполнен; {source} "
            f"истёк {_ru(due)}. {control}",
        )
    if level is EscalationLevel.reminder:
        return (
            f"Напоминание: срок ответа на межведомственный запрос истекает {_ru(due)}",
            f"Напоминание: срок ответа на межведомственный запрос ({task}; {ref}) истекает "
            f"{_ru(due)}. Срок — 5 рабочих дней со дня получения запроса "
            f"(постановление 298-п, п. 11).",
        )
    if level is EscalationLevel.overdue:
        return (
            f"Просрочен ответ на межведомственный запрос: {agency}, срок {_ru(due)}",
            f"Ответ на межведомственный запрос ({task}; {ref}) от участника «{agency}» не "
            f"получен в срок {_ru(due)}. Организация отвечает за сроки маршрута "
            f"(приказ 363н, п. 10б).",
        )
    return (
        f"Эскалация: нет ответа на межведомственный запрос, срок был {_ru(due)}",
        f"Эскалация: участник «{agency}» не ответил на межведомственный запрос ({task}; "
        f"{ref}); срок ответа истёк {_ru(due)}. {control}",
    )


def _applies(timer: Timer, step: Step, route: Route) -> str | None:
    """Why the timer no longer applies (None: it does)."""
    if route.status is not RouteStatus.active:
        return f"route is {route.status.value}"
    kind = timer.kind.deadline_kind
    if kind is DeadlineKind.complete_by:
        # a paused step (004 п.11: the person refused its participant) runs no deadline
        # until it is resumed, which arms its own timers
        stopped = step.status.terminal or step.status is StepStatus.paused
        return f"step is {step.status.value}" if stopped else None
    want = StepStatus.sending if kind is DeadlineKind.send_by else StepStatus.awaiting
    if step.status is not want:
        return f"step is {step.status.value}"
    return None


def fire_timer(session: Session, timer: Timer, *, now: datetime, actor: str,
               skip_locked: bool = True) -> FireOutcome:
    """Fire one due timer in the caller's transaction: the timer becomes ``fired``, the
    ladder's rung is opened and the people are notified (outbox + job), all or nothing.

    The step's row is locked first (``FOR UPDATE``; with ``skip_locked`` a step held by
    another transaction — an answer being applied, a supervisor acting — is left for a later
    pass: ``busy``), then the step and the timer are read afresh, so an answer committed
    meanwhile makes the timer ``stale`` (cancelled, not fired).
    """
    step = lock_step(session, timer.step_id, skip_locked=skip_locked)
    if step is None:
        return FireOutcome.busy
    fresh = reread(session, Timer, timer.id)
    route = session.get(Route, timer.route_id)
    assert fresh is not None and route is not None
    timer = fresh
    if timer.status is not TimerStatus.pending:
        return FireOutcome.stale  # settled by another transaction before our lock
    stale = _applies(timer, step, route)
    if stale is not None:
        timer.status = TimerStatus.cancelled
        timer.cancelled_reason = f"stale: {stale}"
        session.add(timer)
        audit.record(session, at=now, actor=actor, entity="timer", entity_id=str(timer.id),
                     route_id=route.id, action="cancelled",
                     before={"status": TimerStatus.pending.value},
                     after={"status": timer.status.value, "kind": timer.kind.value},
                     reason=timer.cancelled_reason)
        return FireOutcome.stale
    timer.status = TimerStatus.fired
    timer.fired_at = now
    timer.fired_by = actor
    session.add(timer)
    audit.record(session, at=now, actor=actor, entity="timer", entity_id=str(timer.id),
                 route_id=route.id, action="fired",
                 before={"status": TimerStatus.pending.value},
                 after={"status": timer.status.value, "kind": timer.kind.value,
                        "due_at": timer.due_at, "deadline_version": timer.deadline_version})
    kind = timer.kind.deadline_kind
    _, deadline = timers.step_deadline(step, kind)
    open_rung(session, step, route, kind=kind, level=LEVEL_OF[timer.kind],
              version=timer.deadline_version, due_date=deadline or timer.due_date,
              cause=f"timer {timer.kind.value} due {timer.due_date.isoformat()}",
              now=now, actor=actor)
    return FireOutcome.fired


def open_rung(session: Session, step: Step, route: Route, *, kind: DeadlineKind,
              level: EscalationLevel, version: int, due_date: date, cause: str,
              now: datetime, actor: str) -> Escalation | None:
    """Open the rung (once per step, deadline, level and version; None if it exists) and
    queue its notifications: level 0 the agency, level 1 the coordinator, level 2 the
    region's supervisors (and, for a refused request, the coordinator too)."""
    exists = session.exec(select(Escalation.id).where(
        Escalation.step_id == step.id, Escalation.deadline_kind == kind,
        Escalation.level == level, Escalation.deadline_version == version,
    )).first()
    if exists is not None:
        return None  # this rung was reached already for this deadline
    esc = Escalation(
        step_id=step.id, route_id=route.id, region=route.region, agency_id=step.agency_id,
        level=level, deadline_kind=kind, deadline_version=version, due_date=due_date,
        cause=cause[:300], opened_at=now,
    )
    session.add(esc)
    session.flush()
    audit.record(session, at=now, actor=actor, entity="escalation", entity_id=str(esc.id),
                 route_id=route.id, action="opened",
                 after={"level": int(level), "deadline_kind": kind.value, "step_id": step.id,
                        "agency_id": step.agency_id, "deadline": esc.due_date,
                        "deadline_version": esc.deadline_version}, reason=cause)
    agency = session.get(Agency, step.agency_id) if step.agency_id else None
    requested = template_of(route).step(step.seq).requested
    subject, body = _texts(kind, level, step=step, requested=requested,
                           agency=agency.short_name if agency else "—", due=esc.due_date,
                           cause=cause)
    if level is EscalationLevel.reminder:
        people = [notify.agency_recipient(agency)] if agency else []
    elif level is EscalationLevel.overdue:
        people = [notify.staff_recipient(u) for u in notify.coordinators_of(session, route)]
    else:
        people = [notify.staff_recipient(u) for u in notify.supervisors_of(session, route.region)]
        if cause.startswith(REFUSED):
            people += [notify.staff_recipient(u)
                       for u in notify.coordinators_of(session, route)]
    for r in people:
        notify.queue_notification(
            session, dedupe_key=f"esc:{esc.id}:{r.key}", recipient=r, subject=subject,
            body=body, now=now, route_id=route.id, step_id=step.id,
        )
    return esc


def cancel_timers(session: Session, step: Step, *, now: datetime, actor: str, reason: str,
                  kinds: Iterable[TimerKind] | None = None) -> int:
    """Cancel the step's pending timers (of ``kinds``; None: all), one audit record each."""
    return timers.cancel_pending(session, step.id, reason=reason, now=now, actor=actor,
                                 kinds=kinds)


def resolve_open(session: Session, step: Step, *, now: datetime, actor: str,
                 resolution: str, action: str, extra: dict[str, Any] | None = None,
                 kinds: Iterable[DeadlineKind] | None = None,
                 before_version: int | None = None,
                 status: EscalationStatus = EscalationStatus.resolved,
                 reason: str | None = None) -> int:
    """Settle the step's open (or acknowledged) escalations — of deadline ``kinds`` (None:
    all) and, with ``before_version``, only of older deadline versions — as ``status``
    (``resolved``; ``closed`` when the step is closed) with ``resolution``, one audit record
    each."""
    t = _ESCALATIONS
    stmt = _OPEN_OF_STEP
    params: dict[str, object] = {"step_id": step.id}
    if kinds is not None:
        stmt = stmt.where(t.c.deadline_kind.in_(bindparam("kinds", expanding=True)))
        params["kinds"] = list(kinds)
    if before_version is not None:
        stmt = stmt.where(t.c.deadline_version < before_version)
    if any(isinstance(o, Escalation) for o in (*session.new, *session.dirty)):
        session.flush()  # an escalation changed in this transaction is seen as it is now
    # Core, not ORM rows: the transition that resolves escalations never reads them again,
    # and most transitions find none (one light SELECT, no UPDATE)
    conn = session.connection()
    rows = conn.execute(stmt, params).all()
    if not rows:
        return 0
    conn.execute(update(t).where(t.c.id.in_([r[0] for r in rows]))
                 .values(status=status, resolved_at=now, resolution=resolution))
    for esc_id, _, _ in rows:  # keep loaded escalations truthful
        obj = session.identity_map.get(identity_key(Escalation, esc_id))
        if obj is not None:
            session.expire(obj)
    audit.record_many(session, at=now, actor=actor, entries=[audit.Entry(
        entity="escalation", entity_id=str(esc_id), route_id=step.route_id, action=action,
        before={"status": EscalationStatus(before).value},
        after={"status": status.value, "resolution": resolution,
               "deadline_kind": DeadlineKind(kind).value, **(extra or {})}, reason=reason)
        for esc_id, before, kind in rows])
    return len(rows)


def days_late(due_date: date, due_at: datetime | None, region: str, at: datetime) -> int:
    """Working days (of ``region``) from the deadline's day to the local day of ``at``; 0 on
    time (``calendars.working_days_late``)."""
    cal = calendars.get_calendar(region)
    if due_at is None:
        due_at = timers.end_of_day(due_date, region).due_at
    due = calendars.Deadline(due_date=due_date, due_at=due_at, region=cal.code,
                             timezone=cal.timezone, provisional=False)
    return calendars.working_days_late(due, at)


def _late_text(what: str, late: int) -> str:
    return f"{what} {late} working day(s) late" if late else f"{what} on time"


def resolve_on_answer(session: Session, step: Step, *, now: datetime, late_days: int,
                      received_at: datetime | None = None) -> int:
    """An answer stops the request's ladder: open escalations of its send-by and answer-by
    deadlines are resolved, recording that the answer came late and by how many working
    days (298-п Порядок п.11). When the answer completes the step, its complete-by
    escalations are resolved too, with the lateness against that deadline (363н п.10б).
    The step's timers were cancelled (and audited) by ``apply_answer``."""
    n = resolve_open(session, step, now=now, actor=SYSTEM,
                     resolution=_late_text("answer received", late_days),
                     action="resolved_by_answer", extra={"late_working_days": late_days},
                     kinds=(DeadlineKind.send_by, DeadlineKind.answer_by))
    if step.status.terminal and step.complete_by_date is not None:
        with session.no_autoflush:
            region = session.exec(select(Route.region).where(Route.id == step.route_id)).one()
        late = days_late(step.complete_by_date, None, region, received_at or now)
        n += resolve_open(session, step, now=now, actor=SYSTEM,
                          resolution=_late_text("step completed", late),
                          action="resolved_by_answer", extra={"late_working_days": late},
                          kinds=(DeadlineKind.complete_by,))
    return n


def refuse(session: Session, step_id: str, *, now: datetime, error: str) -> Escalation | None:
    """The agency refused the step's request outright (a 4xx): make it visible at once — a
    level-2 escalation to the region's supervisors (and the coordinator), on the send-by
    deadline it can no longer meet (298-п Порядок п.10, п.13)."""
    step = session.get(Step, step_id)
    assert step is not None
    route = session.get(Route, step.route_id)
    assert route is not None
    version = session.exec(
        select(Timer.deadline_version).where(Timer.step_id == step.id,
                                             Timer.kind == TimerKind.send_overdue)
        .order_by(col(Timer.deadline_version).desc())).first()
    return open_rung(session, step, route, kind=DeadlineKind.send_by,
                     level=EscalationLevel.escalated, version=version or 0,
                     due_date=step.send_by_date or now.date(),
                     cause=f"{REFUSED}: {error}"[:300], now=now, actor=SYSTEM)
