"""Pages for people (Russian): the public overview — aggregate counts only.

The page is not behind sign-in, so it shows no route, region, agency or person: only how
many routes there are in each status, how many steps are past their deadline and how many
escalations are open, for the whole installation (152-ФЗ; a region's workload and who is
late are staff matters). The route lists with their deadlines belong to pages behind staff
sign-in (the interfaces issue); until then staff use the API (``/api/routes``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from engine.routes.reads import overview_counts
from models.routes import RouteStatus
from models.timers import EscalationLevel

router = APIRouter(include_in_schema=False)

STATUS_RU = {
    RouteStatus.active: "в работе", RouteStatus.completed: "завершён",
    RouteStatus.cancelled: "отменён", RouteStatus.suspended: "приостановлен",
}
LEVEL_RU = {
    EscalationLevel.reminder: "напоминания", EscalationLevel.overdue: "просрочки",
    EscalationLevel.escalated: "эскалации",
}


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> str:
    """Маршруты: сколько их в каждом статусе, сколько шагов просрочено (только числа)."""
    state = request.app.state
    now: datetime = state.clock.now()
    with Session(state.read_engine) as s:
        counts = overview_counts(s, now)
    routes = ", ".join(f"{STATUS_RU[st]}: {counts['routes'].get(st.value, 0)}"
                       for st in RouteStatus)
    escalations = ", ".join(f"{LEVEL_RU[lv]}: {counts['escalations'].get(lv.name, 0)}"
                            for lv in EscalationLevel)
    return f"""<!doctype html><html lang="ru"><head><meta charset="utf-8">
<title>Маршруты реабилитации</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}</style></head>
<body><h1>Индивидуальные реабилитационные маршруты</h1>
<p>Маршруты — {routes}.</p>
<p>Шагов с истёкшим сроком: {counts['steps']['overdue']}. Открытые {escalations}.</p>
<p>Сейчас: {now.astimezone(UTC):%d.%m.%Y %H:%M} UTC. <a href="/docs">API</a></p>
<p><small>Списки маршрутов со сроками — для сотрудников, после входа.</small></p>
</body></html>"""
