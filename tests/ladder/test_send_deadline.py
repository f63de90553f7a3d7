"""The send-by deadline of an HTTP agency's request (298-п Порядок п.10: 1 working day):
level 1 and level 2 when the request is not delivered, resolution with the send's lateness
when it is, a refused request made visible at once, a clarified request getting a new
send-by, and a supervisor extending the send-by of a step still sending."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from engine.routes.transitions import resend_after_clarification as resend
from engine.supervisor.actions import list_escalations
from models.agencies import Agency, AgencyRequest, AnswerOutcome, RequestState
from models.notifications import Notification
from models.persons import Person
from models.routes import StepStatus
from models.staff import StaffUser
from models.timers import DeadlineKind, EscalationStatus, Timer, TimerKind, TimerStatus
from tests.conftest import kaliningrad
from tests.ladder.conftest import (
    AgencyEndpoint,
    Staff,
    audits,
    escalations,
    new_route,
    run_worker,
    step_of,
    sweep,
    worker_settings,
)


def _pending(db: Engine, step_id: str) -> list[Timer]:
    with Session(db) as s:
        return list(s.exec(select(Timer).where(Timer.step_id == step_id,
                                               Timer.status == TimerStatus.pending)
                           .order_by(col(Timer.due_at))))


def _notes(db: Engine, route_id: str) -> list[Notification]:
    with Session(db) as s:
        return list(s.exec(select(Notification).where(Notification.route_id == route_id)
                           .order_by(col(Notification.id))))


def test_undelivered_request_climbs_to_level_2_and_delivery_resolves_with_lateness(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])  # Mon 03.03.2025: send by Tue 04.03
    step = step_of(db, route_id)
    assert step.status is StepStatus.sending and str(step.send_by_date) == "2025-03-04"
    assert [(t.kind, str(t.due_date)) for t in _pending(db, step.id)] == [
        (TimerKind.send_overdue, "2025-03-04"), (TimerKind.send_escalation, "2025-03-06")]

    clock.freeze(kaliningrad(2025, 3, 4, 23, 59))  # still on time
    assert sweep(db, clock, cfg).total_fired == 0
    clock.freeze(kaliningrad(2025, 3, 5, 0, 0, 30))  # the send-by day has ended
    assert sweep(db, clock, cfg).fired == {"send_overdue": 1}
    clock.freeze(kaliningrad(2025, 3, 7, 0, 0, 30))  # 05 and 06 March have passed too
    assert sweep(db, clock, cfg).fired == {"send_escalation": 1}
    rows = escalations(db, route_id)
    assert [(int(e.level), e.deadline_kind, str(e.due_date)) for e in rows] == [
        (1, DeadlineKind.send_by, "2025-03-04"), (2, DeadlineKind.send_by, "2025-03-04")]
    to = {n.recipient: n.subject for n in _notes(db, route_id)}
    assert "не направлен в срок 04.03.2025" in to["coord39@example.org"]
    assert to["sup39@example.org"].startswith("Эскалация: межведомственный запрос не направлен")

    clock.freeze(kaliningrad(2025, 3, 7, 10, 0))  # the agency's system is reached at last
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    assert len(endpoint.received) == 1
    assert endpoint.received[0].headers["Idempotency-Key"] == step.current_request_id
    after = step_of(db, route_id)
    assert after.status is StepStatus.awaiting
    rows = escalations(db, route_id)
    assert {e.status for e in rows} == {EscalationStatus.resolved}
    assert {e.resolution for e in rows} == {"request delivered 3 working day(s) late"}
    evs = audits(db, action="resolved_by_delivery")
    assert len(evs) == 2 and all(e.after and e.after["late_working_days"] == 3 for e in evs)
    assert {t.kind for t in _pending(db, step.id)} == {
        TimerKind.answer_reminder, TimerKind.answer_overdue, TimerKind.answer_escalation}


def test_refused_request_goes_to_the_supervisor_at_once_and_a_clarified_one_goes_out(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])
    step = step_of(db, route_id)
    endpoint.statuses = {"msp39": [400], "msp39b": [400]}
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    after = step_of(db, route_id)
    assert after.status is StepStatus.needs_clarification
    assert after.outcome_note is not None and after.outcome_note.startswith(
        "agency refused the request: HTTP 400")
    with Session(db) as s:
        req = s.get(AgencyRequest, step.current_request_id)
        assert req is not None and req.state is RequestState.failed
    [esc] = escalations(db, route_id)
    assert (int(esc.level), esc.deadline_kind, esc.status) == (
        2, DeadlineKind.send_by, EscalationStatus.open)
    assert esc.cause is not None and esc.cause.startswith("agency refused the request")
    assert _pending(db, step.id) == []  # the send timers stop: it is at the top already
    to = {n.recipient: n.subject for n in _notes(db, route_id)}
    assert set(to) == {"sup39@example.org", "coord39@example.org"}
    assert all(t.startswith("Участник отказал в приёме") for t in to.values())
    with Session(db) as s:  # the supervisor's list shows it, with its cause
        sup = s.get(StaffUser, "sup39")
        assert sup is not None
        [view] = list_escalations(s, staff=sup, now=clock.now())
    assert view.level == 2 and view.deadline_kind == "send_by"
    assert view.cause is not None and "refused" in view.cause
    assert [e.action for e in audits(db, entity="step", route_id=route_id)][-1] == \
        "request_refused"

    # the coordinator clarifies: a new request, a new send-by and its timers
    clock.freeze(kaliningrad(2025, 3, 5, 11, 0))
    with Session(db, expire_on_commit=False) as s:
        req2 = resend(s, cfg, step_id=step.id, clarification="указан верный СНИЛС",
                      now=clock.now(), actor="staff:coord39")
        s.commit()
    again = step_of(db, route_id)
    assert again.status is StepStatus.sending and str(again.send_by_date) == "2025-03-06"
    assert [(t.kind, str(t.due_date)) for t in _pending(db, step.id)] == [
        (TimerKind.send_overdue, "2025-03-06"), (TimerKind.send_escalation, "2025-03-10")]
    [esc] = escalations(db, route_id)
    assert esc.status is EscalationStatus.resolved
    assert esc.resolution == "request resent with clarification"
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    assert step_of(db, route_id).status is StepStatus.awaiting
    assert endpoint.received[-1].headers["Idempotency-Key"] == req2.id != req.id
    assert endpoint.received[-1].body["clarification"] == "указан верный СНИЛС"


def test_resend_after_a_rejection_sets_a_new_send_by_and_its_timer(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], endpoint: AgencyEndpoint, tmp_path: Path,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    step = step_of(db, route_id)
    assert step.status is StepStatus.awaiting
    with Session(db, expire_on_commit=False) as s:  # the agency rejects it
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id
        ans, _ = record_answer(s, agency=agency, webhook_id="rej", now=clock.now(),
                               answer=AnswerIn(step.current_request_id, AnswerOutcome.rejected,
                                               {}, "нет даты рождения"))
        s.commit()
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
    clock.freeze(kaliningrad(2025, 3, 12, 15, 0))  # Wednesday, a week later
    with Session(db) as s:
        resend(s, cfg, step_id=step.id, clarification="дата рождения указана",
               now=clock.now(), actor="staff:coord39")
        s.commit()
    after = step_of(db, route_id)
    assert after.status is StepStatus.sending
    assert str(after.send_by_date) == "2025-03-13"  # not the old 04.03
    overdue = [t for t in _pending(db, step.id) if t.kind is TimerKind.send_overdue]
    assert [str(t.due_date) for t in overdue] == ["2025-03-13"]
    assert overdue[0].due_at == after.send_by
    # the agency's system is down: the new send-by passes and the ladder notices it
    endpoint.statuses = {"msp39": [503] * 50, "msp39b": [503] * 50}
    run_worker(db, clock, cfg, worker_settings(tmp_path), passes=3)
    clock.freeze(kaliningrad(2025, 3, 14, 0, 0, 30))
    assert sweep(db, clock, cfg).fired == {"send_overdue": 1}
    assert [(int(e.level), e.deadline_kind, str(e.due_date)) for e in escalations(db, route_id)
            if e.status is EscalationStatus.open] == [(1, DeadlineKind.send_by, "2025-03-13")]


def test_supervisor_extends_the_send_by_of_a_step_still_sending(
    client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
    seeded: list[Person], staff: dict[str, Staff], endpoint: AgencyEndpoint,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])  # send by 04.03; never delivered
    step = step_of(db, route_id)
    clock.freeze(kaliningrad(2025, 3, 4, 12, 0))
    r = client.post(f"/api/supervisor/steps/{step.id}/extend", headers=staff["sup39"].headers,
                    json={"days": 2, "reason": "ведомство переносит сервер"})
    assert r.status_code == 200, r.text
    assert r.json()["detail"]["due_date"] == "2025-03-06"
    after = step_of(db, route_id)
    assert after.status is StepStatus.sending and str(after.send_by_date) == "2025-03-06"
    assert [(t.kind, str(t.due_date)) for t in _pending(db, step.id)] == [
        (TimerKind.send_overdue, "2025-03-06"), (TimerKind.send_escalation, "2025-03-10")]
    [ev] = audits(db, action="deadline_extended")
    assert ev.before is not None and ev.after is not None
    assert (ev.before["send_by"], ev.after["send_by"]) == ("2025-03-04", "2025-03-06")
    clock.freeze(kaliningrad(2025, 3, 5, 0, 0, 30))  # the old send-by: nothing happens
    assert sweep(db, clock, cfg).total_fired == 0
    clock.freeze(kaliningrad(2025, 3, 7, 0, 0, 30))
    assert sweep(db, clock, cfg).fired == {"send_overdue": 1}
    [esc] = escalations(db, route_id)
    assert (int(esc.level), str(esc.due_date)) == (1, "2025-03-06")
