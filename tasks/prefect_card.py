"""What a coordinator reads of a route in Prefect beside its state: the route's artifact (a
markdown card, kept up to date) and the state tags they filter the flow runs on.

The card's first line is the flow run's whole state message (the UI cuts it short in the
Details tab); then a table of the steps: number, what is requested (the template's Russian
text), the agency's short name, the business dates the request was sent, is due (the
answer-by day of 298-п Порядок п.11, Регламент п.12, in the agency's region) and was
answered, the lateness in working days, and the highest rung of the escalation ladder the
step reached (298-п Порядок п.13; 363н п.10б). Dates are the business clock's, in the
region's calendar and time zone — never the wall-clock instant of mirroring.

Tags (``state:awaiting``, ``state:overdue``, ``state:escalated``) say what Prefect's own
state filter cannot: a custom state's name. Identifiers and agency names only (152-ФЗ).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import partial

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.exceptions import PrefectHTTPStatusError

from models.labels import region_name
from models.routes import StepStatus
from models.timers import EscalationLevel
from tasks.prefect_logs import Call

TAG_AWAITING = "state:awaiting"
TAG_OVERDUE = "state:overdue"
TAG_ESCALATED = "state:escalated"
STATE_TAGS = (TAG_AWAITING, TAG_OVERDUE, TAG_ESCALATED)

STATUS_RU: dict[StepStatus, str] = {
    StepStatus.planned: "запланирован",
    StepStatus.sending: "запрос направляется",
    StepStatus.awaiting: "ждёт ответа",
    StepStatus.needs_clarification: "на уточнении",
    StepStatus.answered: "ответ получен",
    StepStatus.absent: "сведений нет",
    StepStatus.cancelled: "закрыт",
    StepStatus.paused: "приостановлен (отказ от сопровождения)",  # 004 п.11
}
#: Prefect state names (identifiers, kept in Prefect) as the card says them.
STATE_NAME_RU: dict[str, str] = {
    "AwaitingReceipt": "ожидает получения запроса",
    "Sending": "запрос направляется",
    "SendOverdue": "запрос не направлен в срок",
    "AwaitingAnswer": "ожидает ответа",
    "Overdue": "ответ просрочен",
    "Escalated": "эскалация",
    "Paused": "приостановлен (отказ от сопровождения)",
    "NeedsClarification": "на уточнении",
    "NextCheck": "ждёт следующей проверки",
    "Answered": "ответ получен",
    "InformationAbsent": "сведений нет",
    "Closed": "закрыт",
    "Running": "в работе",
    "Completed": "завершён",
    "Cancelled": "отменён",
    "Terminated": "сопровождение прекращено",
    "Suspended": "приостановлен (согласие отозвано)",
}
RUNG_RU: dict[EscalationLevel, str] = {
    EscalationLevel.reminder: "напоминание",
    EscalationLevel.overdue: "просрочка",
    EscalationLevel.escalated: "эскалация",
}


@dataclass(frozen=True)
class CardStep:
    """One row of the card (what ``tasks.prefect_mirror.load_view`` knows of a step)."""

    seq: int
    title: str
    status: StepStatus
    agency: str
    sent: date | None
    send_by: date | None
    answer_by: date | None
    answered: date | None
    late_days: int | None
    overdue_days: int | None
    rung_open: EscalationLevel | None
    rung_reached: EscalationLevel | None
    started: bool = True


def artifact_key(route_id: str) -> str:
    """``route-<id>`` in the letters Prefect allows in a key (lowercase, digits, dashes)."""
    return "route-" + re.sub(r"[^a-z0-9-]+", "-", route_id.lower()).strip("-")


def _d(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else "—"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _sent(st: CardStep) -> str:
    if st.sent is not None:
        return _d(st.sent)
    if st.status is StepStatus.sending and st.send_by is not None:
        return f"— (до {_d(st.send_by)})"
    return "—"


def _lateness(st: CardStep) -> str:
    if st.status in (StepStatus.answered, StepStatus.absent):
        return str(st.late_days or 0)
    if st.overdue_days is not None and st.status in (StepStatus.sending, StepStatus.awaiting):
        what = "ответа нет" if st.status is StepStatus.awaiting else "не направлен"
        return f"{st.overdue_days} ({what})"
    return "—"


def _rung(st: CardStep) -> str:
    if st.rung_reached is None:
        return "—"
    text = RUNG_RU[st.rung_reached]
    if st.rung_open is not None:
        return f"{RUNG_RU[st.rung_open]} (открыта)" if st.rung_open == st.rung_reached \
            else f"{text}; открыта: {RUNG_RU[st.rung_open]}"
    return f"{text} (снята)"


def card_markdown(*, route_id: str, state_name: str, state_message: str, template: str,
                  region: str, steps: Iterable[CardStep]) -> str:
    """The route's card: the state message as the first line, then the steps' table."""
    lines = [
        state_message,
        "",
        f"Маршрут `{route_id}` · «{template}» · {region_name(region)} · состояние "
        f"**{STATE_NAME_RU.get(state_name, state_name)}**. "
        "Даты — в часовом поясе региона; опоздание — в рабочих днях его производственного "
        "календаря.",
        "",
        "| № | Шаг | Участник | Состояние | Отправлен | Срок ответа | Ответ получен "
        "| Опоздание, раб. дн. | Эскалация |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for st in steps:
        status = STATUS_RU[st.status] if st.started or st.status is not StepStatus.cancelled \
            else "не начат (закрыт)"
        cells = [str(st.seq + 1), st.title, st.agency, status, _sent(st), _d(st.answer_by),
                 _d(st.answered), _lateness(st), _rung(st)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def card_digest(markdown: str) -> str:
    return hashlib.sha256(markdown.encode()).hexdigest()


def state_tags(steps: Iterable[CardStep], *, active: bool) -> list[str]:
    """The state tags of a route (sorted): over its open steps, ``state:awaiting`` — one
    waits on its agency within its deadline (its request being delivered, lying in a paper
    or inbox agency's inbox until received — 298-п Порядок п.10–11 — or answered);
    ``state:overdue`` — one is past its send-by or answer-by deadline, or its ladder is at
    the overdue rung; ``state:escalated`` — a supervisor has it (rung 2, open or
    acknowledged). A route that is not active has none."""
    if not active:
        return []
    tags: set[str] = set()
    for st in steps:
        if st.status not in (StepStatus.sending, StepStatus.awaiting,
                             StepStatus.needs_clarification):
            continue
        if st.rung_open is EscalationLevel.escalated:
            tags.add(TAG_ESCALATED)
        if st.overdue_days is not None or st.rung_open is EscalationLevel.overdue:
            tags.add(TAG_OVERDUE)
        if st.status in (StepStatus.awaiting, StepStatus.sending) and st.overdue_days is None:
            tags.add(TAG_AWAITING)  # its request on the way, in an inbox, or answered soon
    return sorted(tags)


async def write_card(client: PrefectClient, call: Call, *, route_id: str, flow_run_id: str,
                     markdown: str, artifact_id: str | None, look_up: bool) -> str:
    """Put the card on the flow run; return the artifact's id.

    One artifact per route (key ``route-<id>``, linked to its flow run), updated in place
    when the route changes: the flow run's Artifacts tab lists every artifact of the run —
    every version of a key, in no useful order — so a new version per change would bury
    the current card. ``look_up``: a pass whose outcome was unknown may have created it
    already (found by key and flow run, not created twice). Plain API requests: the
    client's artifact helpers also emit events, which the worker does not need."""
    key = artifact_key(route_id)
    if artifact_id is None and look_up:
        found = await call(partial(
            client.read_artifacts,
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(flow_run_id)])),
            limit=1))
        artifact_id = str(found[0].id) if found else None
    description = f"Маршрут {route_id}: шаги, даты, опоздания и эскалации"
    if artifact_id is not None:
        # the JSON of ``ArtifactUpdate``/``ArtifactCreate`` built directly (no models)
        try:
            await call(partial(client.request, "PATCH", "/artifacts/{id}",
                               path_params={"id": artifact_id},
                               json={"data": markdown, "description": description}))
            return artifact_id
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            # deleted in Prefect: created again below
    created = {"key": key, "type": "markdown", "data": markdown, "description": description,
               "flow_run_id": str(uuid.UUID(flow_run_id))}
    resp = await call(partial(client.request, "POST", "/artifacts/", json=created))
    return str(resp.json()["id"])
