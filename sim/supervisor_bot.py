"""The demo's supervisor: acts on level-2 escalations the way a person would, through the
same use cases as the supervisor's API (298-п Порядок п.13, Регламент п.17).

- an optional step whose agency is silent is closed and the route goes on;
- a mandatory step goes to another provider of the same service when there is one not
  tried yet for this step (the first by agency id);
- otherwise its deadline is extended by 3 working days (once; then the route is cancelled).

Its decisions depend only on the data (never on random identifiers or the order rows were
written), so a demo run with the same seed takes the same actions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.errors import EngineError
from engine.routes.transitions import EngineConfig
from engine.staff.accounts import create_staff
from engine.supervisor import actions as supervisor
from models.agencies import Agency, AgencyRequest
from models.audit import AuditEvent
from models.routes import Route, Step
from models.staff import StaffUser
from models.timers import EscalationLevel

BOT_ID = "demo-supervisor"
EXTEND_DAYS = 3


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
                                            level=int(EscalationLevel.escalated),
                                            status="open")
    for v in sorted(views, key=lambda v: (v.deadline, v.step_kind, v.id)):
        with Session(engine, expire_on_commit=False) as s:
            staff = s.get(StaffUser, BOT_ID)
            step = s.get(Step, v.step_id)
            route = s.get(Route, v.route_id)
            assert staff is not None and step is not None and route is not None
            try:
                supervisor.acknowledge(s, staff=staff, escalation_id=v.id, now=now,
                                       reason="Эскалация принята: решаю, как быть с шагом")
                other = None if step.optional else untried_agency(s, step, route)
                if step.optional:
                    supervisor.close_step(s, cfg, staff=staff, step_id=step.id, now=now,
                                          reason="Ведомство не отвечает; шаг необязательный")
                elif other is not None:
                    supervisor.reassign_step(s, cfg, staff=staff, step_id=step.id,
                                             agency_id=other, now=now,
                                             reason="Ведомство не отвечает: передано другому")
                elif _extended_before(s, step.id):
                    supervisor.close_step(s, cfg, staff=staff, step_id=step.id, now=now,
                                          cancel_route=True,
                                          reason="Ответ не получен и после продления")
                else:
                    supervisor.extend_deadline(s, cfg, staff=staff, step_id=step.id,
                                               days=EXTEND_DAYS, now=now,
                                               reason="Продление по запросу ведомства")
                s.commit()
                actions += 1
            except EngineError:
                s.rollback()
    return actions


def untried_agency(s: Session, step: Step, route: Route) -> str | None:
    """The first active participant (by id) of the step's role in the route's region that
    has not had a request for this step yet (None: every one was tried)."""
    tried = set(s.exec(select(AgencyRequest.agency_id)
                       .where(AgencyRequest.step_id == step.id)))
    if step.agency_id:
        tried.add(step.agency_id)
    for agency_id in s.exec(select(Agency.id).where(
            Agency.role == step.role, Agency.region == route.region,
            col(Agency.active).is_(True)).order_by(col(Agency.id))):
        if agency_id not in tried:
            return str(agency_id)
    return None


def _extended_before(s: Session, step_id: str) -> bool:
    """Whether a supervisor already extended this step's deadline (by the audit log: a
    deadline version above 0 alone does not say so — a delivered request's answer
    deadline follows its send-by deadline)."""
    return s.exec(select(AuditEvent.id).where(
        AuditEvent.entity == "step", AuditEvent.entity_id == step_id,
        AuditEvent.action == "deadline_extended")).first() is not None
