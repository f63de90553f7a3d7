"""The supervisor's page (issue 12; 298-п Порядок п.13: the Ministry's control): the queue
by level, then by age in working days; acknowledge with its mandatory reason; a reassign
and a close that succeed from the page, as the API's use cases do them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from engine.runtime.sweeper import sweep_due_timers
from models.agencies import Agency, AgencyRole
from models.audit import AuditEvent
from models.routes import Route, RouteStatus, Step, StepStatus
from models.timers import Escalation, EscalationStatus
from sim.seed import make_persons, make_secret
from tests.conftest import kaliningrad
from tests.web.conftest import World, _route, csrf_of, sign_in_client

LEVELS = {"напоминание": 0, "просрочка": 1, "эскалация": 2}
ROW = re.compile(r'<a href="/escalations/(\d+)">эскалация \d+</a></td><td>([^<]+)</td>\s*'
                 r'<td>(?:<span class="late">)?(\d+)')


def _top_escalation(world: World) -> Escalation:
    with Session(world.db) as s:
        esc = s.exec(select(Escalation).where(Escalation.route_id == world.escalated_route)
                     .order_by(col(Escalation.level).desc())).first()
        assert esc is not None
        return esc


def _post(c: TestClient, page_url: str, action: str, form: dict[str, str]) -> int:
    token = csrf_of(c.get(page_url).text)
    return c.post(f"{page_url}/{action}", data={"csrf_token": token, **form}).status_code


def test_the_queue_is_by_level_then_by_age_in_working_days(world: World) -> None:
    with Session(world.db, expire_on_commit=False) as s:  # a second, younger ladder
        person = make_persons(s, 1, seed=43)[0]
        s.commit()
        _route(s, world.cfg, world.clock, person)
    world.clock.freeze(kaliningrad(2025, 3, 28, 10, 0))
    sweep_due_timers(world.db, world.clock, world.cfg, sweeper_id="t")
    c = sign_in_client(world.app, "sup39")
    rows = [(int(i), LEVELS[lv], int(age)) for i, lv, age in ROW.findall(c.get("/escalations")
                                                                        .text)]
    with Session(world.db) as s:
        live = s.exec(select(Escalation).where(
            Escalation.region == "39",
            col(Escalation.status).in_([EscalationStatus.open,
                                        EscalationStatus.acknowledged]))).all()
    assert sorted(r[0] for r in rows) == sorted(e.id for e in live)
    assert [(lv, age) for _, lv, age in rows] == sorted(
        ((lv, age) for _, lv, age in rows), key=lambda x: (-x[0], -x[1]))
    # the order within a level is tested: some level holds two ages
    by_level: dict[int, set[int]] = {}
    for _, lv, age in rows:
        by_level.setdefault(lv, set()).add(age)
    assert any(len(ages) > 1 for ages in by_level.values()), rows
    assert rows[0][1] == 2


def test_acknowledge_needs_its_reason_on_the_page(world: World) -> None:
    esc = _top_escalation(world)
    page_url = f"/escalations/{esc.id}"
    c = sign_in_client(world.app, "sup39")
    assert 'id="ack-reason" name="reason" rows="2" required' in c.get(page_url).text
    token = csrf_of(c.get(page_url).text)
    r = c.post(f"{page_url}/acknowledge", data={"csrf_token": token, "reason": "  "})
    assert r.status_code == 422
    assert "Причина: нужно заполнить (видимыми символами)." in r.text
    with Session(world.db) as s:
        fresh = s.get(Escalation, esc.id)
        assert fresh is not None and fresh.status is EscalationStatus.open
    assert _post(c, page_url, "acknowledge", {"reason": "Звоню в министерство"}) == 303
    with Session(world.db) as s:
        fresh = s.get(Escalation, esc.id)
        assert fresh is not None and fresh.status is EscalationStatus.acknowledged
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "acknowledged")).one()
        assert (ev.actor, ev.reason) == ("staff:sup39", "Звоню в министерство")


def test_reassign_then_close_with_the_route_succeed_from_the_page(world: World) -> None:
    esc = _top_escalation(world)
    with Session(world.db) as s:
        s.add(Agency(id="msp39b", name="Второе министерство социальной политики (тест)",
                     short_name="Минсоц-2", role=AgencyRole.social_policy, region="39",
                     secret_current=make_secret("msp39b")))
        s.commit()
        step = s.get(Step, esc.step_id)
        assert step is not None and step.agency_id != "msp39b"
        before_agency = step.agency_id
    page_url = f"/escalations/{esc.id}"
    c = sign_in_client(world.app, "sup39")
    assert 'value="msp39b"' in c.get(page_url).text  # offered in the form
    assert _post(c, page_url, "reassign",
                 {"agency_id": "msp39b", "reason": "Министерство не отвечает"}) == 303
    assert "Шаг передан другому ведомству." in c.get(f"{page_url}?done=reassign").text
    with Session(world.db) as s:
        step = s.get(Step, esc.step_id)
        assert step is not None and step.agency_id == "msp39b"
        ev = s.exec(select(AuditEvent).where(AuditEvent.action == "reassigned")).one()
        assert (ev.actor, ev.reason) == ("staff:sup39", "Министерство не отвечает")
        assert ev.before is not None and before_agency in str(ev.before)

    assert _post(c, page_url, "close", {"reason": "Заявитель переехал",
                                        "cancel_route": "1"}) == 303
    assert "Шаг закрыт." in c.get(f"{page_url}?done=close").text
    with Session(world.db) as s:
        step = s.get(Step, esc.step_id)
        route = s.get(Route, world.escalated_route)
        assert step is not None and route is not None
        assert step.status is StepStatus.cancelled
        assert step.outcome_note == "Заявитель переехал"
        assert route.status is RouteStatus.cancelled
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "closed",
                                               AuditEvent.actor == "staff:sup39")).first()
