"""The route's timeline chart in business dates, drawn on the server as SVG (no script, no
CDN): one row per step — sent, due, answered; the working days late in red; escalations
(triangles) and supervisors' actions (diamonds) on the day they happened, all in the
region's local dates. Deadlines: 298-п Порядок п.10 (send within 1 working day), п.11
(answer within 5); a supervisor's control, п.13."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

import pendulum

from api.web.core import region_tz


@dataclass(frozen=True)
class Bar:
    """One step as drawn."""

    label: str
    sent: date | None
    due: date | None
    answered: date | None
    late_days: int


@dataclass(frozen=True)
class Mark:
    """An escalation or a supervisor's action on a step's row."""

    row: int
    day: date
    kind: str  # "escalation" or "action"
    label: str


def local_date(at: datetime | None, region: str) -> date | None:
    if at is None:
        return None
    d = pendulum.instance(at).in_timezone(region_tz(region))
    return date(d.year, d.month, d.day)


LEFT, ROW, TOP, WIDTH = 190, 34, 40, 900


def svg(bars: list[Bar], marks: list[Mark], *, today: date, title_id: str = "tl-title",
        desc_id: str = "tl-desc") -> str:
    """The chart; its <title> and <desc> say in words what it draws."""
    days = [d for b in bars for d in (b.sent, b.due, b.answered) if d] + \
        [m.day for m in marks] + [today]
    start = min(days) - timedelta(days=1)
    end = max(days) + timedelta(days=2)
    span = max((end - start).days, 1)
    scale = (WIDTH - LEFT - 20) / span
    height = TOP + ROW * max(len(bars), 1) + 30

    def x(d: date) -> float:
        return round(LEFT + (d - start).days * scale, 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
           f'role="img" aria-labelledby="{title_id} {desc_id}" width="{WIDTH}" '
           f'height="{height}" font-family="system-ui, sans-serif" font-size="13">',
           f'<title id="{title_id}">Шаги маршрута на шкале рабочих дат</title>',
           f'<desc id="{desc_id}">Серая полоса — от отправки запроса до срока ответа; '
           'зелёный круг — ответ получен; красная полоса — просрочка; треугольник — '
           'эскалация; ромб — действие куратора. Те же сведения — в таблице ниже.</desc>']
    step = max(1, span // 8)
    d = start
    while d <= end:  # the date axis
        out.append(f'<line x1="{x(d)}" y1="{TOP - 8}" x2="{x(d)}" y2="{height - 25}" '
                   'stroke="#d0d0d0"/>')
        out.append(f'<text x="{x(d)}" y="{TOP - 14}" text-anchor="middle" '
                   f'fill="#1a1a1a">{d:%d.%m}</text>')
        d += timedelta(days=step)
    out.append(f'<line x1="{x(today)}" y1="{TOP - 8}" x2="{x(today)}" y2="{height - 25}" '
               'stroke="#0b4f9c" stroke-width="2" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x(today)}" y="{height - 8}" text-anchor="middle" '
               f'fill="#0b4f9c">сегодня {today:%d.%m.%Y}</text>')
    for i, b in enumerate(bars):
        y = TOP + i * ROW
        out.append(f'<text x="8" y="{y + 17}" fill="#1a1a1a">{escape(b.label)}</text>')
        if b.sent and b.due:
            out.append(f'<rect x="{x(b.sent)}" y="{y + 6}" width="{max(x(b.due) - x(b.sent), 3)}"'
                       f' height="16" fill="#9aa5b1"><title>отправлен {b.sent:%d.%m.%Y}, '
                       f'срок {b.due:%d.%m.%Y}</title></rect>')
        end_day = b.answered or (today if b.late_days else None)
        if b.due and end_day and b.late_days and end_day > b.due:
            out.append(f'<rect x="{x(b.due)}" y="{y + 6}" width="{x(end_day) - x(b.due)}" '
                       f'height="16" fill="#a4000f"><title>просрочка {b.late_days} раб. дн.'
                       f'</title></rect>')
        if b.answered:
            out.append(f'<circle cx="{x(b.answered)}" cy="{y + 14}" r="7" fill="#1d5e20">'
                       f'<title>ответ {b.answered:%d.%m.%Y}</title></circle>')
    for m in marks:
        y = TOP + m.row * ROW + 14
        cx = x(m.day)
        if m.kind == "escalation":
            shape = (f'<polygon points="{cx},{y - 10} {cx - 8},{y + 6} {cx + 8},{y + 6}" '
                     'fill="#ffbf47" stroke="#1a1a1a">')
        else:
            shape = (f'<polygon points="{cx},{y - 9} {cx + 9},{y} {cx},{y + 9} {cx - 9},{y}" '
                     'fill="#5b2c83" stroke="#1a1a1a">')
        out.append(f'{shape}<title>{escape(m.label)} {m.day:%d.%m.%Y}</title></polygon>')
    out.append("</svg>")
    return "\n".join(out)
