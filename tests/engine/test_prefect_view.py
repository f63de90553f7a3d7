"""The Prefect view a coordinator reads (issue 12): each route's flow run carries a card
(artifact) whose first line is the whole state message and whose table tells the steps in
business dates; every transition is one Russian log line with its business date, written
once however often the route is reconciled; tags ``state:awaiting|overdue|escalated`` follow
the route. Identifiers and agency names only (152-ФЗ)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from engine.routes.transitions import register_application as register
from engine.runtime.sweeper import sweep_due_timers
from engine.runtime.worker import Worker
from models.agencies import Agency, AnswerOutcome
from models.audit import AuditEvent
from models.mirror import RouteMirror
from models.persons import Person
from models.routes import RouteStatus, Step, StepStatus
from models.templates import Ladder
from models.timers import EscalationLevel
from tasks import prefect_logs as pl
from tasks import prefect_mirror as pm
from tasks.prefect_card import CardStep, artifact_key, state_tags
from tests.conftest import kaliningrad
from tests.ladder.conftest import receive_inbox

slow = pytest.mark.slow
MIRROR = EngineConfig(sender_region="39", public_base_url="http://127.0.0.1:9",
                      default_ladder=Ladder(1, 2), mirror=True)


def _register(db: Engine, clock: DbClock, person: Person) -> str:
    with Session(db, expire_on_commit=False) as s:
        rid = register(s, MIRROR, now=clock.now(), person_id=person.id,
                       template_code="supported_living", template_version=0).id
        s.commit()
    receive_inbox(db, clock, MIRROR, rid)  # the agency opens its inbox at once
    return rid


def _answer(db: Engine, clock: DbClock, route_id: str, seq: int, hook: str,
            outcome: AnswerOutcome = AnswerOutcome.provided) -> None:
    with Session(db, expire_on_commit=False) as s:
        step = s.exec(select(Step).where(Step.route_id == route_id, Step.seq == seq)).one()
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        ans, _ = record_answer(s, agency=agency, webhook_id=hook, now=clock.now(),
                               answer=AnswerIn(step.current_request_id, outcome, {}, None))
        s.commit()
        assert ans.id is not None
        apply_answer(s, MIRROR, ans.id, now=clock.now())
        s.commit()
    receive_inbox(db, clock, MIRROR, route_id)  # the next agency opens its inbox at once


def _at(clock: DbClock, db: Engine, *when: int) -> None:
    """Business time moves to ``when`` (Kaliningrad) and the due timers fire."""
    clock.freeze(kaliningrad(*when))
    sweep_due_timers(db, clock, MIRROR, sweeper_id="t")


@dataclass
class Seen:
    """What Prefect shows of one route's flow run."""

    tags: list[str]
    state_name: str
    state_message: str
    logs: list[str]
    log_names: list[str]
    cards: list[str]
    card_descriptions: list[str]


async def _seen(api: str, flow_run_id: str) -> Seen:
    async with PrefectClient(api=api) as c:
        fr = await c.read_flow_run(UUID(flow_run_id))
        logs = await c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[fr.id])))
        arts = await c.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[fr.id])))
    assert fr.state is not None
    return Seen(sorted(fr.tags), str(fr.state.name), fr.state.message or "",
                [lg.message for lg in logs], [lg.name for lg in logs],
                [str(a.data) for a in arts], [a.description or "" for a in arts])


class _Mirror:
    """Reconciles one route against a Prefect server, as the worker's handler does."""

    def __init__(self, api: str, db: Engine, clock: DbClock, route_id: str) -> None:
        self.api, self.db, self.clock, self.route_id = api, db, clock, route_id

    def __call__(self, *, verify: bool = False) -> Seen:
        async def go() -> None:
            async with PrefectClient(api=self.api) as c:
                await pm.reconcile(c, self.db, self.route_id, now=self.clock.now(),
                                   verify=verify)

        asyncio.run(go())
        view = pm.load_view(self.db, self.route_id, self.clock.now())
        assert view is not None and view.flow_run_id
        return asyncio.run(_seen(self.api, view.flow_run_id))


def _no_personal_data(seen: Seen, people: list[Person]) -> None:
    pd = [p.full_name for p in people] + [p.snils for p in people] + \
        [p.birth_date.strftime("%d.%m.%Y") for p in people] + \
        [p.birth_date.isoformat() for p in people]
    blob = " ".join([*seen.tags, seen.state_message, *seen.logs, *seen.cards,
                     *seen.card_descriptions])
    assert not any(x in blob for x in pd), "personal data reached Prefect"


STATE = {"state:awaiting", "state:overdue", "state:escalated"}
BASE = {"region:39", "template:supported_living"}


# --------------------------------------------------------------------------- with Prefect
@slow
def test_the_card_logs_and_tags_follow_a_late_escalated_route(
    prefect_api: str, db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    rid = _register(db, clock, seeded[0])
    mirror = _Mirror(prefect_api, db, clock, rid)
    base = BASE | {f"route:{rid}"}

    seen = mirror()
    assert set(seen.tags) == base | {"state:awaiting"}
    assert seen.logs == [
        "12.01.2026: маршрут зарегистрирован, шагов: 3",
        "12.01.2026: шаг 1 — запрос доставлен участнику «Минсоцполитики», срок ответа "
        "19.01.2026",
    ]
    # the reminder (16.01), the deadline missed (20.01), the escalation (night of 21.01)
    _at(clock, db, 2026, 1, 16, 10, 0)
    assert set(mirror().tags) == base | {"state:awaiting"}
    _at(clock, db, 2026, 1, 20, 10, 0)
    assert set(mirror().tags) == base | {"state:overdue"}
    _at(clock, db, 2026, 1, 21, 10, 0)
    assert set(mirror().tags) == base | {"state:overdue"}
    _at(clock, db, 2026, 1, 22, 9, 0)
    seen = mirror()
    assert set(seen.tags) == base | {"state:overdue", "state:escalated"}
    assert seen.state_name == "Escalated"
    # the answer comes on Thursday 22.01, three working days late
    clock.freeze(kaliningrad(2026, 1, 22, 11, 0))
    _answer(db, clock, rid, 0, "late-1")
    seen = mirror()
    assert set(seen.tags) == base | {"state:awaiting"}  # step 2 waits, within its time

    # the card: one artifact, updated in place; first line the whole state message
    assert len(seen.cards) == 1
    card = seen.cards[0].splitlines()
    assert card[0] == seen.state_message
    assert seen.state_message == ("ожидается ответ участника «Минздрав» до 29.01.2026 — шаг 2 из 3")
    rows = [ln for ln in card if ln.startswith("| ")]
    assert rows[0].startswith("| № | Шаг | Участник |")
    assert rows[1] == ("| 1 | Оценка нуждаемости в сопровождаемом проживании | Минсоцполитики "
                       "| ответ получен | 12.01.2026 | 19.01.2026 | 22.01.2026 | 3 "
                       "| эскалация (снята) |")
    assert rows[2] == ("| 2 | Сведения о состоянии здоровья и противопоказаниях | Минздрав "
                       "| ждёт ответа | 22.01.2026 | 29.01.2026 | — | — | — |")
    assert rows[3].startswith("| 3 | Зачисление на обучение") and "| запланирован |" in rows[3]

    # one line per transition, in order, with its business date
    assert seen.logs == [
        "12.01.2026: маршрут зарегистрирован, шагов: 3",
        "12.01.2026: шаг 1 — запрос доставлен участнику «Минсоцполитики», срок ответа "
        "19.01.2026",
        "16.01.2026: шаг 1 — напоминание участнику «Минсоцполитики»: срок ответа 19.01.2026",
        "20.01.2026: шаг 1 — ответ участника «Минсоцполитики» просрочен (срок 19.01.2026), "
        "координатор уведомлён",
        "22.01.2026: шаг 1 — эскалация руководителю: участник «Минсоцполитики» не ответил, "
        "срок был 19.01.2026",
        "22.01.2026: шаг 1 — получен ответ участника «Минсоцполитики», опоздание 3 раб. дн.",
        "22.01.2026: шаг 2 — запрос доставлен участнику «Минздрав», срок ответа 29.01.2026",
    ]
    # forced re-reconciles, with and without reading Prefect back: nothing twice
    assert mirror().logs == seen.logs
    assert mirror(verify=True).logs == seen.logs
    # the route completes: the state tags go, the others stay
    clock.freeze(kaliningrad(2026, 1, 23, 10, 0))
    _answer(db, clock, rid, 1, "a-2")
    _answer(db, clock, rid, 2, "a-3", AnswerOutcome.absent)
    seen = mirror()
    assert set(seen.tags) == base and seen.state_name == "Completed"
    assert seen.logs[7:] == [
        "23.01.2026: шаг 2 — получен ответ участника «Минздрав», в срок",
        "23.01.2026: шаг 3 — запрос доставлен участнику «Минобразования», срок ответа "
        "30.01.2026",
        "23.01.2026: шаг 3 — участник «Минобразования» сообщил об отсутствии сведений, в срок",
        "23.01.2026: маршрут завершён",
    ]
    assert len(seen.cards) == 1 and seen.cards[0].splitlines()[0] == seen.state_message
    _no_personal_data(seen, seeded)


@slow
def test_a_pass_that_ended_unseen_writes_no_line_twice(
    prefect_api: str, db: Engine, clock: DbClock, seeded: list[Person],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines that reached Prefect while their pass died (a crash before our commit; a
    timeout after the server took them) are read back, not written again."""
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    rid = _register(db, clock, seeded[1])
    mirror = _Mirror(prefect_api, db, clock, rid)
    assert len(mirror().logs) == 2
    with Session(db) as s:
        before = s.get(RouteMirror, rid)
        assert before is not None and before.log_recent
        saved = {"log_through": before.log_through, "log_recent": before.log_recent}
    clock.freeze(kaliningrad(2026, 1, 13, 10, 0))
    _answer(db, clock, rid, 0, "c-1")
    shown = mirror().logs
    assert len(shown) == 4
    # a crash after the lines went out, before the watermark was stored: the job is
    # claimed again (its second attempt), which reads Prefect back before writing
    with db.begin() as conn:
        conn.execute(update(RouteMirror).where(
            RouteMirror.route_id == rid).values(**saved))  # type: ignore[arg-type]
    assert mirror(verify=True).logs == shown
    assert mirror().logs == shown

    # a timeout after Prefect took the lines: the pass records that it is unsure
    clock.freeze(kaliningrad(2026, 1, 14, 10, 0))
    _answer(db, clock, rid, 1, "c-2")
    real = pl.write_lines

    async def lost_reply(*args: Any, **kw: Any) -> None:
        await real(*args, **kw)
        raise httpx.ReadTimeout("the reply was lost")

    monkeypatch.setattr(pm, "write_lines", lost_reply)
    with pytest.raises(httpx.ReadTimeout):
        mirror()
    with Session(db) as s:
        row = s.get(RouteMirror, rid)
        assert row is not None and row.unsure
    monkeypatch.setattr(pm, "write_lines", real)
    seen = mirror()  # no verify asked: the stored doubt is enough
    new = seen.logs[len(shown):]
    assert len(new) == len(set(new)) == 2, new
    assert new[0].startswith("14.01.2026: шаг 2 — получен ответ участника «Минздрав»")
    with Session(db) as s:
        row = s.get(RouteMirror, rid)
        assert row is not None and not row.unsure
    _no_personal_data(seen, seeded)


def test_the_worker_reads_back_for_a_job_claimed_before(
    db: Engine, clock: DbClock, seeded: list[Person], monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    _register(db, clock, seeded[2])
    seen: list[bool] = []

    async def spy(client: Any, engine: Engine, route_id: str, **kw: Any) -> int:
        seen.append(kw["verify"])
        return 0

    monkeypatch.setattr(pm, "reconcile", spy)
    with db.begin() as conn:
        conn.exec_driver_sql("UPDATE job SET attempts = 1 WHERE kind = 'mirror_route'")
    w = Worker(db, clock, MIRROR, Settings(environment="test"), worker_id="w-v",
               handlers=[pm.PrefectMirrorHandler("http://127.0.0.1:9/api")])

    async def go() -> None:
        async with w:
            await w.handlers[0].run_once(w, None)

    asyncio.run(go())
    assert seen == [True], "claimed once before: this claim is its second attempt"


# --------------------------------------------------------------------------- without Prefect
def test_the_card_tells_business_dates_in_the_regions_calendar(
    db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    """The card is built from our rows alone: the answer of 22.01 late by 3 working days,
    the escalation it settled, the next step sent the same day."""
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    rid = _register(db, clock, seeded[0])
    for day in (16, 20, 21, 22):
        _at(clock, db, 2026, 1, day, 9, 0)
    view = pm.load_view(db, rid, clock.now())
    assert view is not None
    card = pm.route_card(view).splitlines()
    assert card[0] == pm.route_state(view).message == (
        "ожидается ответ участника «Минсоцполитики» до 19.01.2026, просрочен на 3 раб. дн. "
        "(эскалация) — шаг 1 из 3")
    assert card[6].endswith("| ждёт ответа | 12.01.2026 | 19.01.2026 | — | 3 (ответа нет) "
                            "| эскалация (открыта) |")
    # late in the evening of 22.01 Kaliningrad time (UTC+2): still the 22nd there
    clock.freeze(datetime(2026, 1, 22, 21, 30, tzinfo=UTC))
    _answer(db, clock, rid, 0, "eve")
    view = pm.load_view(db, rid, clock.now())
    assert view is not None
    card = pm.route_card(view).splitlines()
    assert card[6].endswith("| 12.01.2026 | 19.01.2026 | 22.01.2026 | 3 | эскалация (снята) |")
    assert card[7].split(" | ")[4:6] == ["22.01.2026", "29.01.2026"]


def _cs(status: StepStatus, *, overdue: int | None = None,
        rung: EscalationLevel | None = None) -> CardStep:
    return CardStep(0, "t", status, "Минздрав", None, None, None, None, None, overdue, rung,
                    rung)


@pytest.mark.parametrize(("steps", "active", "tags"), [
    ([_cs(StepStatus.awaiting)], True, ["state:awaiting"]),
    ([_cs(StepStatus.awaiting, rung=EscalationLevel.reminder)], True, ["state:awaiting"]),
    ([_cs(StepStatus.awaiting, overdue=1, rung=EscalationLevel.overdue)], True,
     ["state:overdue"]),
    ([_cs(StepStatus.awaiting, overdue=0)], True, ["state:overdue"]),
    ([_cs(StepStatus.awaiting, overdue=2, rung=EscalationLevel.escalated)], True,
     ["state:escalated", "state:overdue"]),
    ([_cs(StepStatus.sending, overdue=1, rung=EscalationLevel.overdue)], True,
     ["state:overdue"]),
    ([_cs(StepStatus.needs_clarification, rung=EscalationLevel.escalated)], True,
     ["state:escalated"]),
    # a request on its way or in an inbox until received: the route waits on its agency
    ([_cs(StepStatus.sending), _cs(StepStatus.planned)], True, ["state:awaiting"]),
    ([_cs(StepStatus.answered), _cs(StepStatus.awaiting, overdue=1)], True, ["state:overdue"]),
    ([_cs(StepStatus.awaiting), _cs(StepStatus.awaiting, overdue=3,
                                    rung=EscalationLevel.escalated)], True,
     ["state:awaiting", "state:escalated", "state:overdue"]),
    ([_cs(StepStatus.awaiting, overdue=3, rung=EscalationLevel.escalated)], False, []),
])
def test_state_tags(steps: list[CardStep], active: bool, tags: list[str]) -> None:
    assert state_tags(steps, active=active) == tags


def test_the_artifact_key_is_one_prefect_accepts() -> None:
    assert artifact_key("rt_3f2A9c") == "route-rt-3f2a9c"
    assert artifact_key("rt-1") == "route-rt-1"


def _ev(id_: int, entity: str, action: str, *, after: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None, refused: bool = False,
        at: datetime = kaliningrad(2026, 1, 24, 0, 30)) -> pl.LogEvent:
    eid = "rt1-s1" if entity == "step" else ("7" if entity == "escalation" else "rt1")
    return pl.LogEvent(id_, at, entity, eid, action, before or {}, after or {},
                       datetime(2026, 1, 1, tzinfo=UTC), refused=refused)


def _esc(level: int, kind: str = "answer_by") -> dict[str, Any]:
    return {"level": level, "deadline_kind": kind, "step_id": "rt1-s1", "agency_id": "mz39",
            "deadline": "2026-01-19"}


LINES: list[tuple[pl.LogEvent, int, str]] = [
    (_ev(1, "step", "answer_provided", after={"late_working_days": 2}), pl.INFO,
     "шаг 2 — получен ответ участника «Минздрав», опоздание 2 раб. дн."),
    (_ev(2, "step", "answer_provided", after={"late_working_days": 0}), pl.INFO,
     "шаг 2 — получен ответ участника «Минздрав», в срок"),
    (_ev(3, "step", "answer_absent", after={"late_working_days": 1}), pl.INFO,
     "шаг 2 — участник «Минздрав» сообщил об отсутствии сведений, опоздание 1 раб. дн."),
    (_ev(4, "step", "answer_rejected"), pl.WARNING,
     "шаг 2 — участник «Минздрав» вернул запрос на уточнение; ждёт уточнения координатором"),
    (_ev(5, "step", "request_refused"), pl.WARNING,
     "шаг 2 — система участника «Минздрав» отказала в приёме запроса; ждёт уточнения "
     "координатором"),
    (_ev(6, "escalation", "opened", after=_esc(1)), pl.WARNING,
     "шаг 2 — ответ участника «Минздрав» просрочен (срок 19.01.2026), координатор уведомлён"),
    (_ev(7, "escalation", "opened", after=_esc(2)), pl.WARNING,
     "шаг 2 — эскалация руководителю: участник «Минздрав» не ответил, срок был 19.01.2026"),
    (_ev(8, "escalation", "opened", after=_esc(1, "send_by")), pl.WARNING,
     "шаг 2 — запрос участнику «Минздрав» не доставлен в срок 19.01.2026, координатор "
     "уведомлён"),
    (_ev(9, "escalation", "opened", after=_esc(2, "complete_by")), pl.WARNING,
     "шаг 2 — эскалация руководителю: шаг не выполнен, срок был 19.01.2026"),
    (_ev(10, "escalation", "opened", after=_esc(2, "send_by"), refused=True), pl.WARNING,
     "шаг 2 — эскалация руководителю: участник «Минздрав» отказал в приёме запроса"),
    (_ev(11, "escalation", "acknowledged"), pl.INFO,
     "шаг 2 — эскалация принята руководителем в работу"),
    (_ev(12, "step", "deadline_extended", after={"answer_by": "2026-01-30"}), pl.INFO,
     "шаг 2 — срок продлён руководителем до 30.01.2026"),
    (_ev(13, "step", "reassigned", before={"agency_id": "mz39"},
         after={"agency_id": "psu39a", "send_by": "2026-01-26"}), pl.INFO,
     "шаг 2 — передан участнику «ЦСО «Доверие»» (был «Минздрав»), срок направления "
     "26.01.2026"),
    (_ev(14, "step", "resent_with_clarification", after={"send_by": "2026-01-26"}), pl.INFO,
     "шаг 2 — уточнённый запрос направлен участнику «Минздрав», срок направления 26.01.2026"),
    (_ev(15, "step", "closed"), pl.WARNING, "шаг 2 — закрыт руководителем"),
    (_ev(25, "step", "closed_route_terminated"), pl.WARNING,
     "шаг 2 — закрыт: сопровождение прекращено"),
    (_ev(26, "step", "closed_with_route"), pl.INFO,
     "шаг 2 — повторяющаяся проверка завершена вместе с маршрутом"),
    (_ev(16, "route", "suspended"), pl.WARNING,
     "маршрут приостановлен: согласие на обработку данных отозвано"),
    (_ev(17, "route", "resumed"), pl.INFO, "маршрут возобновлён"),
    (_ev(18, "route", "cancelled"), pl.WARNING, "маршрут закрыт руководителем"),
    (_ev(19, "route", "completed"), pl.INFO, "маршрут завершён"),
    (_ev(20, "route", "participant_refused", after={"agency_id": "mz39"}), pl.WARNING,
     "отказ от сопровождения участника «Минздрав»: шаги приостановлены"),
    (_ev(21, "route", "participant_resumed", after={"agency_id": None}), pl.INFO,
     "сопровождение всех участников возобновлено с оставшимися рабочими днями"),
    (_ev(22, "route", "terminated", after={"reason": "ipra_expired"}), pl.WARNING,
     "сопровождение прекращено: окончание срока действия ИПРА (363н п.13 а)"),
    (_ev(23, "route", "replanned", after={"added": [{}], "cancelled": [{}, {}],
                                          "redated": []}), pl.INFO,
     "маршрут пересмотрен по новой ИПРА: добавлено 1, отменено 2, перенесено 0"),
    (_ev(24, "route", "migrated", before={"template_version": 1},
         after={"template_version": 2}), pl.INFO,
     "маршрут переведён на версию шаблона 2 (была 1)"),
]


@pytest.mark.parametrize(("event", "level", "text"), LINES,
                         ids=[f"{e.entity}-{e.action}-{e.id}" for e, _, _ in LINES])
def test_each_transition_is_one_russian_line_with_its_business_date(
    event: pl.LogEvent, level: int, text: str,
) -> None:
    [line] = pl.log_lines([event], region="39", steps={"rt1-s1": pl.StepRef(1, "Минздрав")},
                          agencies={"mz39": "Минздрав", "psu39a": "ЦСО «Доверие»"},
                          n_steps=3, escalations={"7": "rt1-s1"})
    # 00:30 in Kaliningrad on the 24th is still the 23rd in UTC: the region's day counts
    assert line.message == f"24.01.2026: {text}"
    assert line.level == level and line.name == f"rehab.audit.{event.id}"
    assert pl.event_id_of(line.name) == event.id


def test_lines_of_one_instant_keep_their_record_order_in_the_timestamp() -> None:
    """Prefect orders a run's logs by timestamp alone: records of one transaction (an answer,
    the next request, the completion) must not tie. A record written already still counts,
    so a later pass continues after it."""
    at = kaliningrad(2026, 1, 23, 10, 0)
    evs = [_ev(1, "step", "answer_provided", at=at), _ev(2, "route", "suspended", at=at),
           _ev(3, "route", "completed", at=at), _ev(4, "route", "resumed",
                                                    at=at + timedelta(hours=1))]
    kw: dict[str, Any] = {"region": "39", "steps": {"rt1-s1": pl.StepRef(1, "Минздрав")},
                          "agencies": {"mz39": "Минздрав"}, "n_steps": 3}
    lines = pl.log_lines(evs, **kw)
    assert [ln.at - at for ln in lines] == [timedelta(microseconds=k) for k in (0, 1, 2)] \
        + [timedelta(hours=1)]
    assert all(ln.message.startswith("23.01.2026: ") for ln in lines)
    again = pl.log_lines([replace(evs[0], written=True), *evs[1:]], **kw)
    assert [ln.at for ln in again] == [ln.at for ln in lines[1:]]


def test_records_that_are_not_transitions_make_no_line() -> None:
    assert pl.log_lines([_ev(1, "step", "answer_provided")], region="39", steps={},
                        agencies={}, n_steps=3) == []  # a step the route does not have
    assert pl.event_id_of("prefect.flow_runs") is None


def test_the_watermark_passes_a_record_only_once_it_has_settled() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    old = replace(_ev(5, "route", "completed"), real_at=now - timedelta(minutes=5))
    new = replace(_ev(9, "route", "completed"), real_at=now - timedelta(seconds=5))
    mark = pl.advance(pl.Watermark(), [old, new], real_now=now)
    assert (mark.through, mark.recent) == (5, frozenset({9}))
    assert pl.Watermark.parse(mark.through, mark.recent_text()) == mark
    # later: 9 has settled and goes under the watermark; 7 (an older id that committed
    # late, PostgreSQL) is still above it and is written, not skipped
    late = replace(_ev(7, "route", "resumed"), real_at=now - timedelta(minutes=3))
    later = pl.advance(mark, [late, replace(new, real_at=now - timedelta(minutes=2))],
                       real_now=now)
    assert (later.through, later.recent) == (9, frozenset())


def test_load_events_marks_what_was_written(
    db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    rid = _register(db, clock, seeded[0])
    with Session(db) as s:
        events = pl.load_events(s, rid, pl.Watermark())
        assert [(e.entity, e.action, e.written) for e in events] == [
            ("route", "registered", False), ("step", "awaiting_answer", False)]
        every = s.exec(select(AuditEvent.id).where(AuditEvent.route_id == rid)).all()
        assert len(every) > len(events)  # timers, requests...: no lines of their own
        first_out = pl.Watermark(0, frozenset({events[0].id}))
        again = pl.load_events(s, rid, first_out)
        assert [e.written for e in again] == [True, False]
        lines = pl.log_lines(again, region="39", steps={f"{rid}-s0": pl.StepRef(0, "М")},
                             agencies={}, n_steps=3)
        assert [ln.event_id for ln in lines] == [events[1].id]
        assert pl.load_events(s, rid, pl.Watermark(events[1].id)) == []


def test_a_route_suspended_and_cancelled_has_no_state_tags(
    db: Engine, clock: DbClock, seeded: list[Person],
) -> None:
    clock.freeze(kaliningrad(2026, 1, 12, 10, 0))
    rid = _register(db, clock, seeded[0])
    view = pm.load_view(db, rid, clock.now())
    assert view is not None
    assert pm.flow_run_tags(view)[3:] == ["state:awaiting"]
    for status in (RouteStatus.suspended, RouteStatus.cancelled, RouteStatus.completed):
        assert pm.flow_run_tags(replace(view, status=status)) == [
            f"route:{rid}", "region:39", "template:supported_living"]
    assert date(2026, 1, 12) == view.steps[0].sent_date
