"""What the audit log records besides the route's main transitions: every timer scheduled,
an answer that changed nothing, a delivery that came after its request was superseded,
notifications sent or failed, and a closed step with its escalations ``closed``."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.notifications.outbox import Recipient, deliver_notification, queue_notification
from engine.routes.transitions import (
    AnswerIn,
    EngineConfig,
    apply_answer,
    mark_delivered,
    record_answer,
)
from engine.supervisor.actions import reassign_step
from models.agencies import Agency, AgencyRequest, AnswerEffect, AnswerOutcome
from models.notifications import Channel
from models.persons import Person
from models.routes import StepStatus
from models.staff import StaffUser
from models.timers import EscalationStatus, Timer
from tasks.notifications import (
    ChannelAdapter,
    DeliveryError,
    OutgoingMessage,
    RecordingAdapter,
)
from tests.conftest import kaliningrad
from tests.ladder.conftest import (
    AgencyEndpoint,
    Staff,
    audits,
    escalations,
    new_route,
    step_of,
    sweep,
)


def test_every_timer_is_audited_when_scheduled(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])
    with Session(db) as s:
        timers = {str(t.id): t for t in s.exec(select(Timer).where(Timer.route_id == route_id))}
    scheduled = audits(db, action="scheduled", entity="timer", route_id=route_id)
    assert sorted(e.entity_id for e in scheduled) == sorted(timers)
    for e in scheduled:
        t = timers[e.entity_id]
        assert e.after is not None and e.after["kind"] == t.kind.value
        assert e.after["due_date"] == t.due_date.isoformat()
        assert e.after["calendar_version"] == t.calendar_version


def _answer(db: Engine, clock: DbClock, cfg: EngineConfig, agency_id: str, request_id: str,
            webhook_id: str) -> AnswerEffect:
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, agency_id)
        assert agency is not None
        ans, _ = record_answer(s, agency=agency, webhook_id=webhook_id, now=clock.now(),
                               answer=AnswerIn(request_id, AnswerOutcome.provided, {}, None))
        s.commit()
        assert ans.id is not None
        effect = apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()
        return effect


def test_an_ignored_answer_leaves_its_effect_in_the_audit(
    db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff], endpoint: AgencyEndpoint,
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])
    step = step_of(db, route_id)
    old_agency, old_request = step.agency_id, step.current_request_id
    assert old_agency and old_request
    other = "msp39b" if old_agency == "msp39" else "msp39"
    with Session(db) as s:
        sup = s.get(StaffUser, "sup39")
        assert sup is not None
        new = reassign_step(s, cfg, staff=sup, step_id=step.id, agency_id=other,
                            reason="не отвечает", now=clock.now())
        s.commit()
        new_id = new.id
    # the old agency answers its withdrawn request: nothing moves, the effect is recorded
    assert _answer(db, clock, cfg, old_agency, old_request, "old") is \
        AnswerEffect.request_cancelled
    # the old request is delivered late (the worker records it after the reassignment)
    with Session(db) as s:
        req = s.get(AgencyRequest, old_request)
        assert req is not None
        mark_delivered(s, cfg, req, now=clock.now())
        s.commit()
    [sup_ev] = audits(db, action="delivered_superseded")
    assert sup_ev.entity_id == old_request and sup_ev.after is not None
    assert sup_ev.after["state"] == "cancelled" and sup_ev.after["current_request_id"] == new_id
    assert step_of(db, route_id).status is StepStatus.sending  # the new request's
    # the new agency answers twice (two webhook ids): the second one changes nothing
    assert _answer(db, clock, cfg, other, new_id, "n1") is AnswerEffect.moved_route
    assert _answer(db, clock, cfg, other, new_id, "n2") is AnswerEffect.already_answered
    ignored = audits(db, action="ignored", entity="answer")
    assert [e.after["effect"] for e in ignored if e.after] == [
        "request_cancelled", "already_answered"]
    assert all(e.route_id == route_id for e in ignored)


class _Down:
    def send(self, message: OutgoingMessage) -> None:
        raise DeliveryError("gateway down")


def test_notifications_sent_and_failed_are_audited(db: Engine, tmp_path: Path) -> None:
    now = kaliningrad(2026, 1, 16, 9, 0)
    with Session(db) as s:
        ok = queue_notification(s, dedupe_key="a", recipient=Recipient(
            "staff:x", Channel.portal, "staff:x"), subject="s", body="b", now=now,
            route_id="rt_x")
        bad = queue_notification(s, dedupe_key="b", recipient=Recipient(
            "staff:y", Channel.sms, "+70000000000"), subject="s", body="b", now=now,
            route_id="rt_x")
        s.commit()
        assert ok is not None and bad is not None and ok.id and bad.id
        ok_id, bad_id = ok.id, bad.id
    settings = Settings(var_dir=tmp_path, notify_max_attempts=2)
    adapters: dict[Channel, ChannelAdapter] = {
        Channel.portal: RecordingAdapter(tmp_path, Channel.portal), Channel.sms: _Down()}
    assert deliver_notification(db, ok_id, adapters=adapters, settings=settings, now=now)
    assert not deliver_notification(db, bad_id, adapters=adapters, settings=settings, now=now)
    assert deliver_notification(db, bad_id, adapters=adapters, settings=settings, now=now)
    rows = audits(db, entity="notification")
    assert [(e.entity_id, e.action) for e in rows] == [
        (str(ok_id), "queued"), (str(bad_id), "queued"), (str(ok_id), "recorded"),
        (str(bad_id), "attempt_failed"), (str(bad_id), "failed")]
    assert rows[-1].after == {"status": "failed", "channel": "sms", "attempts": 2,
                              "error": "gateway down"}
    assert all(e.at == now for e in rows)


def test_closing_a_step_records_it_and_closes_its_escalations(
    client: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
    staff: dict[str, Staff],
) -> None:
    route_id = new_route(db, clock, cfg, seeded[0])
    clock.freeze(kaliningrad(2025, 3, 13, 10, 0))
    sweep(db, clock, cfg)
    assert len(escalations(db, route_id)) == 3
    step = step_of(db, route_id)
    r = client.post(f"/api/supervisor/steps/{step.id}/close", headers=staff["sup39"].headers,
                    json={"reason": "заявление отозвано", "cancel_route": True})
    assert r.status_code == 200, r.text
    [closed] = [e for e in audits(db, action="closed", entity="step") if e.entity_id == step.id]
    assert closed.actor == "staff:sup39" and closed.reason == "заявление отозвано"
    assert closed.before == {"status": "awaiting"} and closed.after == {"status": "cancelled"}
    rows = escalations(db, route_id)
    assert {e.status for e in rows} == {EscalationStatus.closed}
    assert {e.resolution for e in rows} == {"step closed by supervisor"}
    evs = audits(db, action="closed_with_step")
    assert len(evs) == 3 and all(e.after and e.after["status"] == "closed" for e in evs)
    assert all(e.reason == "closed: заявление отозвано" for e in evs)
