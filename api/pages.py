"""Pages for people (Russian): the coordinator's overview of routes.

No personal data is shown here: routes are named by id; a person's data is shown only on
pages behind staff sign-in (the interfaces issue).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlmodel import Session, col, select

from models.agencies import Agency
from models.routes import Route, RouteStatus, Step, StepStatus
from models.templates import TEMPLATES

router = APIRouter(include_in_schema=False)

STATUS_RU = {
    RouteStatus.active: "в работе", RouteStatus.completed: "завершён",
    RouteStatus.cancelled: "отменён",
}
STEP_RU = {
    StepStatus.planned: "запланирован", StepStatus.sending: "отправка запроса",
    StepStatus.awaiting: "ожидание ответа", StepStatus.needs_clarification: "нужно уточнение",
    StepStatus.answered: "ответ получен", StepStatus.absent: "сведения отсутствуют",
    StepStatus.cancelled: "закрыт",
}


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, limit: int = 200) -> str:
    """Маршруты: статус и текущий шаг каждого."""
    engine = request.app.state.engine
    with Session(engine) as s:
        counts = dict(s.exec(select(Route.status, func.count()).group_by(Route.status)).all())
        routes = list(s.exec(select(Route).order_by(col(Route.created_at).desc()).limit(limit)))
        ids = [r.id for r in routes]
        steps = list(s.exec(select(Step).where(col(Step.route_id).in_(ids))))
        agencies = {a.id: a.short_name for a in s.exec(select(Agency))}
    by_route: dict[str, list[Step]] = {}
    for st in steps:
        by_route.setdefault(st.route_id, []).append(st)
    rows = []
    for r in routes:
        cur = next((x for x in sorted(by_route.get(r.id, []), key=lambda x: x.seq)
                    if not x.status.terminal and x.status is not StepStatus.planned), None)
        where = "—"
        if cur is not None:
            who = escape(agencies.get(cur.agency_id or "", "—"))
            due = cur.answer_by_date or cur.send_by_date
            where = f"{STEP_RU[cur.status]}: {who}, срок {due:%d.%m.%Y}" if due else who
        title = TEMPLATES[r.template].title if r.template in TEMPLATES else r.template
        rows.append(f"<tr><td><code>{escape(r.id)}</code></td><td>{escape(title)}</td>"
                    f"<td>{escape(r.region)}</td><td>{STATUS_RU[r.status]}</td>"
                    f"<td>{where}</td></tr>")
    summary = ", ".join(f"{STATUS_RU[RouteStatus(k)]}: {v}" for k, v in counts.items()) or "нет"
    return f"""<!doctype html><html lang="ru"><head><meta charset="utf-8">
<title>Маршруты реабилитации</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem}}th{{background:#f3f3f3}}</style></head>
<body><h1>Индивидуальные реабилитационные маршруты</h1>
<p>Маршруты: {summary}. <a href="/docs">API</a></p>
<table><tr><th>Маршрут</th><th>Программа</th><th>Регион</th><th>Статус</th>
<th>Где сейчас</th></tr>{''.join(rows)}</table></body></html>"""
