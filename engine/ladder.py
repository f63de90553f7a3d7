"""The escalation ladder: reminder (0), overdue (1), escalated (2), and its resolution.

- level 0, reminder: the agency is reminded before its answer deadline (298-п Порядок п.11,
  Регламент п.12: 5 working days to answer);
- level 1, overdue: at the deadline the route's coordinator is told — the rehabilitation
  organisation answers for the route's deadlines (363н п.10б); a request not sent by its
  send-by day (298-п Порядок п.10: 1 working day) is level 1 too;
- level 2, escalated: some working days later the region's supervisors are told — the
  Ministry of Social Policy controls interagency interaction (298-п Порядок п.13,
  Регламент п.17).

Each level happens once per step and deadline version (``Escalation`` is unique on
(step_id, level, deadline_version)); an answer stops the ladder and resolves what is open.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from engine import audit, notify, timers
from models.agencies import Agency
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import get_template
from models.timers import (
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
    TimerKind.answer_escalation: EscalationLevel.escalated,
}

OPEN_STATES = (EscalationStatus.open, EscalationStatus.acknowledged)


def _ru(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else "—"


def _texts(kind: TimerKind, *, step: Step, requested: str, agency: str,
           due: date | None) -> tuple[str, str]:
    """Subject and body in Russian; identifiers only, no personal data (152-ФЗ)."""
    ref = f"маршрут {step.route_id}, шаг {step.seq + 1} «{requested}»"
    task = f"запрос {step.current_request_id}" if step.current_request_id else "запрос"
    if kind is TimerKind.answer_reminder:
        return (
            f"Напоминание: срок ответа на межведомственный запрос истекает {_ru(due)}",
            f"Напоминание: срок ответа на межведомственный запрос ({task}; {ref}) истекает "
            f"{_ru(due)}. Срок — 5 рабочих дней со дня получения запроса "
            f"(постановление 298-п, п. 11).",
        )
    if kind is TimerKind.answer_overdue:
        return (
            f"Просрочен ответ на межведомственный запрос: {agency}, срок {_ru(due)}",
            f"Ответ на межведомственный запрос ({task}; {ref}) от участника «{agency}» не "
            f"получен в срок {_ru(due)}. Организация отвечает за сроки маршрута "
            f"(приказ 363н, п. 10б).",
        )
    if kind is TimerKind.send_overdue:
        return (
            f"Запрос не направлен в срок {_ru(due)}: {agency}",
            f"Межведомственный запрос ({task}; {ref}) участнику «{agency}» не доставлен в "
            f"срок {_ru(due)} — 1 рабочий день (постановление 298-п, п. 10).",
        )
    return (
        f"Эскалация: нет ответа на межведомственный запрос, срок был {_ru(due)}",
        f"Эскалация: участник «{agency}» не ответил на межведомственный запрос ({task}; "
        f"{ref}); срок ответа истёк {_ru(due)}. Контроль межведомственного взаимодействия — "
        f"Министерство социальной политики (постановление 298-п, п. 13, п. 17).",
    )


def _applies(timer: Timer, step: Step, route: Route) -> str | None:
    """Why the timer no longer applies (None: it does)."""
    if route.status is not RouteStatus.active:
        return f"route is {route.status.value}"
    want = StepStatus.sending if timer.kind is TimerKind.send_overdue else StepStatus.awaiting
    if step.status is not want:
        return f"step is {step.status.value}"
    return None


def fire_timer(session: Session, timer: Timer, *, now: datetime, actor: str) -> bool:
    """Fire one due timer in the caller's transaction: the timer becomes ``fired``, the
    ladder's rung is opened and the people are notified (outbox + job), all or nothing.

    Returns False when the timer went stale (the step moved on): it is cancelled instead.
    """
    step = session.get(Step, timer.step_id)
    route = session.get(Route, timer.route_id)
    assert step is not None and route is not None
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
        return False
    timer.status = TimerStatus.fired
    timer.fired_at = now
    timer.fired_by = actor
    session.add(timer)
    audit.record(session, at=now, actor=actor, entity="timer", entity_id=str(timer.id),
                 route_id=route.id, action="fired",
                 before={"status": TimerStatus.pending.value},
                 after={"status": timer.status.value, "kind": timer.kind.value,
                        "due_at": timer.due_at, "deadline_version": timer.deadline_version})
    _open_rung(session, timer, step, route, now=now, actor=actor)
    return True


def _open_rung(session: Session, timer: Timer, step: Step, route: Route, *, now: datetime,
               actor: str) -> None:
    level = LEVEL_OF[timer.kind]
    deadline = step.send_by_date if timer.kind is TimerKind.send_overdue else step.answer_by_date
    exists = session.exec(select(Escalation.id).where(
        Escalation.step_id == step.id, Escalation.level == level,
        Escalation.deadline_version == timer.deadline_version,
    )).first()
    if exists is not None:
        return  # this rung was reached already for this deadline
    esc = Escalation(
        step_id=step.id, route_id=route.id, region=route.region, agency_id=step.agency_id,
        level=level, deadline_version=timer.deadline_version,
        due_date=deadline or timer.due_date, opened_at=now,
    )
    session.add(esc)
    session.flush()
    audit.record(session, at=now, actor=actor, entity="escalation", entity_id=str(esc.id),
                 route_id=route.id, action="opened",
                 after={"level": int(level), "step_id": step.id, "agency_id": step.agency_id,
                        "deadline": esc.due_date, "deadline_version": esc.deadline_version},
                 reason=f"timer {timer.kind.value} due {timer.due_date.isoformat()}")
    agency = session.get(Agency, step.agency_id) if step.agency_id else None
    requested = get_template(route.template).step(step.seq).requested
    subject, body = _texts(timer.kind, step=step, requested=requested,
                           agency=agency.short_name if agency else "—", due=esc.due_date)
    if level is EscalationLevel.reminder:
        recipients = [notify.agency_recipient(agency)] if agency else []
    elif level is EscalationLevel.overdue:
        recipients = [notify.staff_recipient(u) for u in notify.coordinators_of(session, route)]
    else:
        recipients = [notify.staff_recipient(u)
                      for u in notify.supervisors_of(session, route.region)]
    for r in recipients:
        notify.queue_notification(
            session, dedupe_key=f"esc:{esc.id}:{r.key}", recipient=r, subject=subject,
            body=body, now=now, route_id=route.id, step_id=step.id,
        )


def cancel_timers(session: Session, step: Step, *, now: datetime, actor: str,
                  reason: str) -> int:
    """Cancel the step's pending timers, one audit record each."""
    return timers.cancel_pending(session, step.id, reason=reason, now=now, actor=actor)


def resolve_open(session: Session, step: Step, *, now: datetime, actor: str,
                 resolution: str, action: str, extra: dict[str, Any] | None = None) -> int:
    """Resolve the step's open (or acknowledged) escalations with ``resolution``."""
    with session.no_autoflush:  # escalations are committed by the sweeper that opens them
        rows = list(session.exec(
            select(Escalation).where(Escalation.step_id == step.id,
                                     col(Escalation.status).in_(OPEN_STATES))
        ))
    for esc in rows:
        before = {"status": esc.status.value}
        esc.status = EscalationStatus.resolved
        esc.resolved_at = now
        esc.resolution = resolution
        session.add(esc)
        audit.record(session, at=now, actor=actor, entity="escalation", entity_id=str(esc.id),
                     route_id=step.route_id, action=action, before=before,
                     after={"status": esc.status.value, "resolution": resolution,
                            **(extra or {})})
    return len(rows)


def resolve_on_answer(session: Session, step: Step, *, now: datetime, late_days: int) -> int:
    """An answer stops the ladder: open escalations of the step are resolved, recording
    that the answer came late and by how many working days (298-п Порядок п.11). The
    step's timers were cancelled (and audited) by ``apply_answer``."""
    resolution = (f"answer received {late_days} working day(s) late" if late_days
                  else "answer received on time")
    return resolve_open(session, step, now=now, actor=SYSTEM, resolution=resolution,
                        action="resolved_by_answer", extra={"late_working_days": late_days})
