"""A step's complete-by deadline: the execution deadline of its ИПРА measure («срок
исполнения»: the ИПРА form lists each measure with its executor and deadline, 545н), given
with the application, or a template's N working days from registration (363н п.10б). The
step is overdue when not done by the end of that day in the acting agency's time zone:
level 1 to the coordinator, level 2 to the supervisors after the configured working days."""

from __future__ import annotations

from datetime import date
from typing import Any

import pendulum
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from api.app import create_app
from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from models.agencies import Agency, AgencyRole, AnswerOutcome
from models.notifications import Notification
from models.persons import Person
from models.routes import Route, StepStatus
from models.templates import TEMPLATES, RouteTemplate, StepTemplate
from models.timers import DeadlineKind, EscalationStatus, Timer, TimerKind, TimerStatus
from sim.seed import make_persons, seed_agencies
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff, audits, escalations, new_route, step_of, sweep

APP: dict[str, Any] = {"full_name": "Синтетиков Иван", "snils": "112-233-445 95",
                       "birth_date": "1990-05-01", "template": "supported_living"}


@pytest.fixture
def api(db: Engine, clock: DbClock, staff: dict[str, Staff]) -> TestClient:
    return TestClient(create_app(db, settings=Settings(environment="test",
                                                       prefect_mirror=False), clock=clock))


def _count_routes(db: Engine) -> int:
    with Session(db) as s:
        return int(s.exec(select(func.count()).select_from(Route)).one())


def _timers(db: Engine, step_id: str, *kinds: TimerKind) -> list[Timer]:
    with Session(db) as s:
        return list(s.exec(select(Timer).where(Timer.step_id == step_id,
                                               col(Timer.kind).in_(kinds))
                           .order_by(col(Timer.due_at))))


def _answer(db: Engine, clock: DbClock, cfg: EngineConfig, route_id: str, seq: int,
            outcome: AnswerOutcome = AnswerOutcome.provided) -> None:
    step = step_of(db, route_id, seq)
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        ans, _ = record_answer(s, agency=agency, webhook_id=f"w-{step.id}-{outcome.value}",
                               now=clock.now(),
                               answer=AnswerIn(step.current_request_id, outcome, {}, None))
        s.commit()
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()


# ------------------------------------------------------------------------------- the API
def test_application_carries_ipra_deadlines_shown_in_the_route_and_its_history(
    api: TestClient, db: Engine, staff: dict[str, Staff],
) -> None:
    # the route the API forms: the newest supported_living data template (a step kind of it)
    r = api.post("/api/applications", headers=staff["coord39"].headers,
                 json={**APP, "ipra_deadlines": {"supported_housing": "2025-04-30"}})
    assert r.status_code == 201, r.text
    steps = r.json()["steps"]
    assert [(s["kind"], s["ipra_due_date"], s["complete_by_date"], s["complete_by_source"])
            for s in steps if s["ipra_due_date"] or s["complete_by_date"]] == [
        ("supported_housing", "2025-04-30", "2025-04-30", "ipra")]
    assert [s["kind"] for s in steps][:4] == [
        "need_assessment", "need_monitoring", "training_apartment", "supported_housing"]
    route_id = r.json()["id"]
    hist = api.get(f"/api/routes/{route_id}/history", headers=staff["coord39"].headers).json()
    assert hist[0]["action"] == "registered"
    assert hist[0]["after"]["ipra_deadlines"] == {"supported_housing": "2025-04-30"}
    [set_] = [x for x in hist if x["action"] == "complete_by_set"]
    assert set_["after"] == {"complete_by": "2025-04-30", "source": "ipra",
                             "ipra_due_date": "2025-04-30", "working_days": None}
    # the planned step already has its ladder on that day (Kaliningrad, the agencies' zone)
    step = step_of(db, route_id, 3)
    [overdue, esc] = _timers(db, step.id, TimerKind.complete_overdue,
                             TimerKind.complete_escalation)
    assert overdue.due_at == pendulum.datetime(2025, 5, 1, tz="Europe/Kaliningrad")
    assert (str(overdue.due_date), str(esc.due_date)) == ("2025-04-30", "2025-05-06")


@pytest.mark.parametrize(("deadlines", "rule"), [
    ({"tsr_provision": "2025-04-30"}, "is not a step of template supported_living"),
    ({"supported_housing": "2025-03-02"}, "is before the application's registration day"),
    ({"supported_housing": "30.04.2025"}, ""),
    ({"supported_housing": "2025-02-30"}, ""),
])
def test_bad_ipra_deadline_is_refused_naming_the_field(
    api: TestClient, db: Engine, staff: dict[str, Staff], deadlines: dict[str, str],
    rule: str,
) -> None:
    r = api.post("/api/applications", headers=staff["coord39"].headers,
                 json={**APP, "ipra_deadlines": deadlines})
    assert r.status_code == 422, r.text
    kind = next(iter(deadlines))
    assert r.json()["detail"].startswith(f"ipra_deadlines.{kind}:"), r.json()
    assert rule in r.json()["detail"]
    assert _count_routes(db) == 0


# ------------------------------------------------------------------------------- the ladder
def test_ipra_deadline_ladder_in_the_agency_time_zone_and_lateness_on_completion(
    db: Engine, clock: DbClock, cfg: EngineConfig, staff: dict[str, Staff],
) -> None:
    """Bashkortostan (02, Asia/Yekaterinburg, UTC+5): the ИПРА deadline Thu 05.06.2025 ends
    at local midnight (19:00 UTC); level 2 comes 2 working days later there — Fri 06.06 is
    Курбан-байрам in Bashkortostan, so Mon 09.06 and Tue 10.06."""
    with Session(db, expire_on_commit=False) as s:
        seed_agencies(s, region="02")
        person = make_persons(s, 1, region="02", seed=1402)[0]
        s.commit()
    registered = pendulum.datetime(2025, 6, 2, 10, 0, tz="Asia/Yekaterinburg")
    route_id = new_route(db, clock, cfg, person, at=registered,
                         ipra_deadlines={"need_assessment": date(2025, 6, 5)}, region="02")
    step = step_of(db, route_id)
    assert (step.complete_by_date, step.complete_by_source) == (date(2025, 6, 5), "ipra")
    [overdue, esc] = _timers(db, step.id, TimerKind.complete_overdue,
                             TimerKind.complete_escalation)
    assert overdue.due_at == pendulum.datetime(2025, 6, 5, 19, 0, tz="UTC")
    assert esc.due_date == date(2025, 6, 10) and overdue.region == "02"

    clock.freeze(pendulum.datetime(2025, 6, 5, 23, 59, tz="Asia/Yekaterinburg"))
    assert "complete_overdue" not in sweep(db, clock, cfg).fired
    clock.freeze(pendulum.datetime(2025, 6, 6, 0, 0, 30, tz="Asia/Yekaterinburg"))
    assert sweep(db, clock, cfg).fired.get("complete_overdue") == 1
    clock.freeze(pendulum.datetime(2025, 6, 10, 23, 59, tz="Asia/Yekaterinburg"))
    assert "complete_escalation" not in sweep(db, clock, cfg).fired
    clock.freeze(pendulum.datetime(2025, 6, 11, 0, 0, 30, tz="Asia/Yekaterinburg"))
    assert sweep(db, clock, cfg).fired.get("complete_escalation") == 1
    complete = [e for e in escalations(db, route_id)
                if e.deadline_kind is DeadlineKind.complete_by]
    assert [(int(e.level), str(e.due_date), e.region) for e in complete] == [
        (1, "2025-06-05", "02"), (2, "2025-06-05", "02")]
    with Session(db) as s:
        subjects = [n.subject for n in s.exec(select(Notification).where(
            Notification.route_id == route_id))]
    assert "Мероприятие маршрута не выполнено в срок 05.06.2025" in subjects

    clock.freeze(pendulum.datetime(2025, 6, 11, 10, 0, tz="Asia/Yekaterinburg"))
    _answer(db, clock, cfg, route_id, 0)
    complete = [e for e in escalations(db, route_id)
                if e.deadline_kind is DeadlineKind.complete_by]
    assert {e.status for e in complete} == {EscalationStatus.resolved}
    # (05.06, 11.06] in Bashkortostan: 09, 10, 11 June (06.06 and 12.06 are days off)
    assert {e.resolution for e in complete} == {"step completed 3 working day(s) late"}


def test_a_rejection_keeps_the_complete_by_ladder_and_an_answer_stops_it(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0],
                         ipra_deadlines={"need_assessment": date(2025, 3, 20)})
    step = step_of(db, route_id)
    _answer(db, clock, cfg, route_id, 0, AnswerOutcome.rejected)
    assert step_of(db, route_id).status is StepStatus.needs_clarification
    kinds = {t.kind for t in _timers(db, step.id, *TimerKind) if t.status is TimerStatus.pending}
    assert kinds == {TimerKind.complete_overdue, TimerKind.complete_escalation}
    clock.freeze(kaliningrad(2025, 3, 21, 0, 0, 30))  # still not done by 20.03
    assert sweep(db, clock, cfg).fired == {"complete_overdue": 1}
    with Session(db) as s:
        from engine.routes.transitions import resend_after_clarification

        resend_after_clarification(s, cfg, step_id=step.id, clarification="уточнено",
                                   now=clock.now(), actor="staff:coord39")
        s.commit()
    _answer(db, clock, cfg, route_id, 0)
    assert step_of(db, route_id).status is StepStatus.answered
    assert not [t for t in _timers(db, step.id, *TimerKind) if t.status is TimerStatus.pending]
    [esc] = [e for e in escalations(db, route_id) if e.deadline_kind is DeadlineKind.complete_by]
    assert esc.status is EscalationStatus.resolved
    assert esc.resolution == "step completed 1 working day(s) late"


def test_template_deadline_in_working_days_from_registration(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = RouteTemplate(
        code="deadline_test", title="Проверка", basis="363н п.10б",
        steps=(
            StepTemplate(kind="need_assessment", role=AgencyRole.social_policy,
                         requested="Оценка", basis="298-п п.9", deadline_days=10),
            StepTemplate(kind="medical_check", role=AgencyRole.health, requested="Сведения",
                         basis="298-п п.6", deadline_days=15),
        ))
    monkeypatch.setitem(TEMPLATES, template.code, template)
    # registered Wed 30.04.2025: 10 working days over the May holidays end on 20.05
    route_id = new_route(db, clock, cfg, seeded[0], template=template.code,
                         at=kaliningrad(2025, 4, 30, 10, 0),
                         ipra_deadlines={"medical_check": date(2025, 6, 30)})
    s0, s1 = step_of(db, route_id, 0), step_of(db, route_id, 1)
    assert (str(s0.complete_by_date), s0.complete_by_source) == ("2025-05-20", "template")
    assert (str(s1.complete_by_date), s1.complete_by_source) == ("2025-06-30", "ipra")
    [t0] = _timers(db, s0.id, TimerKind.complete_overdue)
    assert (t0.working_days, t0.anchor_at) == (10, kaliningrad(2025, 4, 30, 10, 0))


def test_invalid_ipra_deadline_changes_nothing(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
) -> None:
    with pytest.raises(EngineError, match=r"^ipra_deadlines\.need_assessment: must be a date"):
        new_route(db, clock, cfg, seeded[0], ipra_deadlines={"need_assessment": "2025-03-20"})
    assert _count_routes(db) == 0
    assert audits(db) == []
