"""The demo's supervisor: acts on level-2 escalations the way a person would, through the
same use cases as the supervisor's API (298-п Порядок п.13, Регламент п.17).

- an optional step whose agency is silent is closed and the route goes on;
- a mandatory step goes to another provider of the same service when there is one;
- otherwise its deadline is extended by 3 working days (once; then the route is cancelled).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine import supervisor
from engine.routes import EngineConfig, EngineError, pick_agency
from engine.staff import create_staff
from models.routes import Route, Step
from models.staff import StaffUser
from models.timers import Escalation, EscalationLevel

BOT_ID = "demo-supervisor"


def ensure_bot(engine: Engine, region: str = "39") -> str:
    """Create the demo's supervisor and a coordinator for the region (idempotent)."""
    with Session(engine) as s:
        if s.get(StaffUser, BOT_ID) is None:
            create_staff(s, id=BOT_ID, display_name="Руководитель (демо)", role="supervisor",
                         region=region, email="supervisor@demo.invalid")
            create_staff(s, id="demo-coordinator", display_name="Координатор (демо)",
                         role="coordinator", region=region, email="coordinator@demo.invalid")
            s.commit()
    return BOT_ID


def act_on_escalations(engine: Engine, cfg: EngineConfig, *, now: datetime) -> int:
    """Act once on every open level-2 escalation; return the number of actions."""
    actions = 0
    with Session(engine, expire_on_commit=False) as s:
        staff = s.get(StaffUser, BOT_ID)
        assert staff is not None
        views = supervisor.list_escalations(s, staff=staff, now=now,
                                            level=int(EscalationLevel.escalated))
    for v in views:
        with Session(engine, expire_on_commit=False) as s:
            staff = s.get(StaffUser, BOT_ID)
            step = s.get(Step, v.step_id)
            route = s.get(Route, v.route_id)
            assert staff is not None and step is not None and route is not None
            try:
                supervisor.acknowledge(s, staff=staff, escalation_id=v.id, now=now)
                if step.optional:
                    supervisor.close_step(s, cfg, staff=staff, step_id=step.id, now=now,
                                          reason="Ведомство не отвечает; шаг необязательный")
                elif _other_agency(s, step, route) is not None:
                    other = _other_agency(s, step, route)
                    assert other is not None
                    supervisor.reassign_step(s, cfg, staff=staff, step_id=step.id,
                                             agency_id=other, now=now,
                                             reason="Ведомство не отвечает: передано другому")
                elif _extended_before(s, step.id):
                    supervisor.close_step(s, cfg, staff=staff, step_id=step.id, now=now,
                                          cancel_route=True,
                                          reason="Ответ не получен и после продления")
                else:
                    supervisor.extend_deadline(s, cfg, staff=staff, step_id=step.id, days=3,
                                               now=now, reason="Продление по запросу ведомства")
                s.commit()
                actions += 1
            except EngineError:
                s.rollback()
    return actions


def _other_agency(s: Session, step: Step, route: Route) -> str | None:
    try:
        return pick_agency(s, role=step.role, region=route.region, route_id=route.id,
                           exclude=step.agency_id).id
    except EngineError:
        return None


def _extended_before(s: Session, step_id: str) -> bool:
    return s.exec(select(Escalation.id).where(
        Escalation.step_id == step_id, col(Escalation.deadline_version) > 0)).first() is not None
