"""Pages for people (Russian): the coordinator's overview of routes.

The page is not behind sign-in, so it shows identifiers only — route ids, programmes,
regions, agencies and deadlines, never a person's name, SNILS or birth date (152-ФЗ); a
person's data is shown only on pages behind staff sign-in (the interfaces issue).
Deadlines follow 298-п Порядок п.10 (send within 1 working day) and п.11, п.12 (answer
within 5 working days); a deadline counted on a provisional production calendar (the
next year's decree not yet published) is marked «предварительно».
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from html import escape
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlmodel import Session, col, select

import calendars
from models.agencies import Agency
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import TEMPLATES

router = APIRouter(include_in_schema=False)

STATUS_RU = {
    RouteStatus.active: "в работе", RouteStatus.completed: "завершён",
    RouteStatus.cancelled: "отменён", RouteStatus.suspended: "приостановлен",
}
STEP_RU = {
    StepStatus.planned: "запланирован", StepStatus.sending: "отправка запроса",
    StepStatus.awaiting: "ожидание ответа", StepStatus.needs_clarification: "нужно уточнение",
    StepStatus.answered: "ответ получен", StepStatus.absent: "сведения отсутствуют",
    StepStatus.cancelled: "закрыт",
}


def _late_days(due_date: date, due_at: datetime, region: str, now: datetime) -> int:
    """Working days past the deadline (0 on the deadline's own overdue night or on days
    off right after it), as the ladder counts them."""
    cal = calendars.get_calendar(region)
    due = calendars.Deadline(due_date=due_date, due_at=due_at, region=cal.code,
                             timezone=cal.timezone, provisional=False)
    try:
        return calendars.working_days_late(due, now)
    except calendars.CalendarError:
        return 0


def _days(n: int) -> str:
    return f"{n} раб. дн."


def _current(st: Step, agency: str, agency_region: str, sender_region: str,
             now: datetime) -> tuple[str, str]:
    """(where the route stands, its mark) for the current step."""
    who = escape(agency)
    if st.status is StepStatus.awaiting and st.answer_by and st.answer_by_date:
        due_date, due_at, region = st.answer_by_date, st.answer_by, agency_region
    elif st.status is StepStatus.sending and st.send_by and st.send_by_date:
        due_date, due_at, region = st.send_by_date, st.send_by, sender_region
    else:
        return f"{STEP_RU[st.status]}: {who}", ""
    prov = " (предварительно)" if st.deadline_provisional else ""
    where = f"{STEP_RU[st.status]}: {who}, срок {due_date:%d.%m.%Y}{prov}"
    if now < due_at:
        return where, ""
    late = _late_days(due_date, due_at, region, now)
    mark = f"просрочено на {_days(late)}" if late else "срок истёк"
    return where, f'<strong class="late">⚠ {mark}</strong>'


def _late_answers(steps: list[Step]) -> list[str]:
    return [f"шаг {x.seq + 1}: ответ с опозданием на {_days(x.late_working_days)}"
            for x in steps if x.late_working_days]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request,
             limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> str:
    """Маршруты: статус и текущий шаг каждого (только идентификаторы)."""
    state = request.app.state
    engine = state.engine
    now: datetime = state.clock.now()
    sender_region: str = state.cfg.sender_region
    with Session(engine) as s:
        counts = dict(s.exec(select(Route.status, func.count()).group_by(Route.status)).all())
        routes = list(s.exec(select(Route).order_by(col(Route.created_at).desc()).limit(limit)))
        ids = [r.id for r in routes]
        steps = list(s.exec(select(Step).where(col(Step.route_id).in_(ids))))
        agencies = {a.id: (a.short_name, a.region) for a in s.exec(select(Agency))}
    by_route: dict[str, list[Step]] = {}
    for st in steps:
        by_route.setdefault(st.route_id, []).append(st)
    rows = []
    overdue = 0
    for r in routes:
        ordered = sorted(by_route.get(r.id, []), key=lambda x: x.seq)
        cur = next((x for x in ordered
                    if not x.status.terminal and x.status is not StepStatus.planned), None)
        where, mark = "—", ""
        if cur is not None:
            short, region = agencies.get(cur.agency_id or "", ("—", sender_region))
            where, mark = _current(cur, short, region, sender_region, now)
            overdue += bool(mark)
        marks = [m for m in [mark, *(escape(x) for x in _late_answers(ordered))] if m]
        title = TEMPLATES[r.template].title if r.template in TEMPLATES else r.template
        rows.append(f"<tr><td><code>{escape(r.id)}</code></td><td>{escape(title)}</td>"
                    f"<td>{escape(r.region)}</td><td>{STATUS_RU[r.status]}</td>"
                    f"<td>{where}</td><td>{'<br>'.join(marks) or '—'}</td></tr>")
    summary = ", ".join(f"{STATUS_RU[RouteStatus(k)]}: {v}" for k, v in counts.items()) or "нет"
    late_note = f" Просрочено (на этой странице): {overdue}." if overdue else ""
    return f"""<!doctype html><html lang="ru"><head><meta charset="utf-8">
<title>Маршруты реабилитации</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem}}th{{background:#f3f3f3}}
.late{{color:#b00020}}</style></head>
<body><h1>Индивидуальные реабилитационные маршруты</h1>
<p>Маршруты: {summary}.{late_note} Сейчас: {now.astimezone(UTC):%d.%m.%Y %H:%M} UTC.
<a href="/docs">API</a></p>
<p><small>«предварительно» — срок посчитан по производственному календарю, который ещё
не утверждён; он может измениться.</small></p>
<table><tr><th>Маршрут</th><th>Программа</th><th>Регион</th><th>Статус</th>
<th>Где сейчас</th><th>Отметки</th></tr>{''.join(rows)}</table></body></html>"""
