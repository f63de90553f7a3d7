"""What a coordinator reads in Prefect is Russian: the flow run's state message (the card's
first line) for every kind of step and route state, and the card's header with the state's
Russian name and the region's name. Prefect's own state names (``Escalated`` …) stay as
identifiers; agency names and identifiers only (152-ФЗ)."""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import date

import pytest

from models.route_life import EndReason
from models.routes import RouteStatus, StepStatus
from models.timers import EscalationLevel
from tasks import prefect_mirror as pm
from tasks.prefect_card import STATE_NAME_RU
from tasks.prefect_mirror import RouteView, StepView, route_card, route_state, step_state

LATIN = re.compile(r"[A-Za-z]")


def _sv(status: StepStatus, seq: int = 0, **extra: object) -> StepView:
    return StepView(f"rt1-s{seq}", seq, "medical_check", status, "Минздрав",
                    date(2026, 1, 19), date(2026, 1, 13), None, None, **extra)  # type: ignore[arg-type]


VARIANTS: list[dict[str, object]] = [
    {}, {"overdue_days": 0}, {"overdue_days": 2, "escalation": EscalationLevel.overdue},
    {"overdue_days": 3, "escalation": EscalationLevel.escalated}, {"late_days": 4},
    {"awaiting_receipt": True}, {"next_check": date(2026, 4, 8)},
]


@pytest.mark.parametrize(("status", "extra"), list(itertools.product(
    [s for s in StepStatus if s is not StepStatus.planned], VARIANTS)))
def test_every_step_state_message_is_russian(status: StepStatus,
                                             extra: dict[str, object]) -> None:
    state = step_state(_sv(status, **extra))
    assert state is not None and state.message
    assert not LATIN.search(state.message), state.message
    assert str(state.name) in STATE_NAME_RU  # the card can name it in Russian


@pytest.mark.parametrize("status", list(RouteStatus))
def test_every_route_state_and_its_card_header_are_russian(status: RouteStatus) -> None:
    steps = [_sv(StepStatus.answered, 0), _sv(StepStatus.awaiting, 1, overdue_days=2,
                                               escalation=EscalationLevel.escalated),
             _sv(StepStatus.planned, 2)]
    view = RouteView("rt1", "39", "supported_living", status, None, None, steps,
                     end_reason=EndReason.ipra_expired.value
                     if status is RouteStatus.terminated else None,
                     template_title="Сопровождаемое проживание")
    state = route_state(view)
    assert state.message and not LATIN.search(state.message), state.message
    card = route_card(view).splitlines()
    assert card[0] == state.message
    header = card[2]
    assert f"**{STATE_NAME_RU[str(state.name)]}**" in header
    assert "Калининградская область" in header and "регион 39" not in header
    # the route's id (in backticks) is the only Latin text of the header
    assert not LATIN.search(header.replace("`rt1`", "")), header


def test_the_awaited_answer_reads_as_the_coordinator_says_it() -> None:
    view = RouteView("rt1", "39", "supported_living", RouteStatus.active, None, None,
                     [_sv(StepStatus.answered, 0), _sv(StepStatus.awaiting, 1),
                      _sv(StepStatus.planned, 2)])
    state = route_state(view)
    assert state.name == "AwaitingAnswer"  # Prefect's identifier is kept
    assert state.message == "ожидается ответ участника «Минздрав» до 19.01.2026 — шаг 2 из 3"
    assert "состояние **ожидает ответа**" in route_card(view)


def test_parallel_open_steps_are_named_in_russian() -> None:
    view = RouteView("rt1", "39", "supported_living", RouteStatus.active, None, None,
                     [_sv(StepStatus.awaiting, 0), _sv(StepStatus.sending, 1)])
    message = route_state(view).message or ""
    assert message.startswith("открыто шагов: 2 из 2 — шаг 1 «сведения о здоровье»: ")
    assert not LATIN.search(message)


class _Recorder:
    """Stands in for Prefect's client: keeps the JSON of the requests it is given."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    async def request(self, method: str, path: str, json: dict[str, object]) -> object:
        self.sent.append(json)
        body = {"id": json["id"], "state": json["state"]}

        class _Resp:
            def json(self) -> dict[str, object]:
                return body

        return _Resp()


def test_a_steps_task_run_is_named_by_its_russian_step_name() -> None:
    client = _Recorder()
    st = _sv(StepStatus.awaiting, 1)
    state = step_state(st)
    assert state is not None
    asyncio.run(pm._create_task_run(client, "00000000-0000-0000-0000-000000000001",  # type: ignore[arg-type]
                                    st, state, [0]))
    assert client.sent[0]["name"] == "2. сведения о здоровье → Минздрав"
    assert client.sent[0]["dynamic_key"] == "rt1-s1"  # the identifier stays the key
