"""The demo's people: one account per role (coordinator, supervisor, agency user,
administrator) with a fresh password each run, printed by ``rehab demo --serve`` so a
newcomer can sign in to the pages and do each role's work. Synthetic data only."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from engine.escalations.ladder import OPEN_STATES
from engine.staff.accounts import create_staff, set_password
from models.agencies import Agency, AgencyAnswer, AgencyRequest, RequestState
from models.routes import Step, StepStatus
from models.staff import StaffRole, StaffUser
from models.timers import Escalation, EscalationLevel


@dataclass(frozen=True)
class DemoAccount:
    id: str
    role: StaffRole
    password: str
    what: str  # what to do with it (Russian)


def _busiest_agency(s: Session, *, waiting_only: bool = False) -> str | None:
    """The agency with the most requests still waiting for its answer (else, unless
    ``waiting_only``, the first agency asked anything)."""
    answered = select(AgencyAnswer.request_id)
    row = s.exec(
        select(AgencyRequest.agency_id, func.count())
        .join(Step, col(Step.id) == AgencyRequest.step_id)
        .where(AgencyRequest.state == RequestState.delivered,
               col(Step.current_request_id) == AgencyRequest.id,
               Step.status == StepStatus.awaiting,
               col(AgencyRequest.id).not_in(answered))
        .group_by(col(AgencyRequest.agency_id))
        .order_by(func.count().desc(), col(AgencyRequest.agency_id))).first()
    if row is not None:
        return str(row[0])
    if waiting_only:
        return None
    first = s.exec(select(AgencyRequest.agency_id).limit(1)).first()
    return str(first) if first else None


class NoDemoAgency(LookupError):
    """The demo has no agency for its agency user (no agency seeded in the region)."""


def _agency_for_demo(s: Session, region: str) -> str:
    """The busiest agency; before anyone was asked anything, the region's first active
    agency (its inbox is empty until a request comes). Never none: the demo prints one
    account per role, so a missing agency is an error, not a skipped account."""
    busiest = _busiest_agency(s)
    if busiest is not None:
        return busiest
    first = s.exec(select(Agency.id).where(Agency.region == region, col(Agency.active))
                   .order_by(col(Agency.id)).limit(1)).first()
    if first is None:
        raise NoDemoAgency(f"region: no active agency in region {region!r} for the demo's "
                           "agency user (seed the agencies first)")
    return str(first)


def people_have_work(engine: Engine) -> bool:
    """Whether the people signing in to the demo find work: an open level-2 escalation for
    the supervisor and a request waiting for its agency's answer (for the agency user)."""
    with Session(engine) as s:
        escalated = s.exec(select(Escalation.id).where(
            Escalation.level == EscalationLevel.escalated,
            col(Escalation.status).in_(OPEN_STATES)).limit(1)).first()
        return escalated is not None and _busiest_agency(s, waiting_only=True) is not None


def create_demo_accounts(engine: Engine, *, region: str = "39") -> list[DemoAccount]:
    """Add (or, on a re-run, re-password) the four demo accounts; returns them (always
    four: ``NoDemoAgency`` if the region has no agency for the agency user)."""
    plan = [("demo-coordinator", StaffRole.coordinator, "маршруты региона, регистрация"),
            ("demo-supervisor", StaffRole.supervisor, "очередь эскалаций и действия"),
            ("demo-agency", StaffRole.agency, "входящие запросы ведомства"),
            ("demo-admin", StaffRole.admin,
             "ведомства, сотрудники, календари, шаблоны; все регионы")]
    out = []
    with Session(engine, expire_on_commit=False) as s:
        agency = _agency_for_demo(s, region)
        for sid, role, what in plan:
            password = f"demo-{secrets.token_urlsafe(9)}"
            if s.get(StaffUser, sid) is None:
                create_staff(s, id=sid, display_name=f"Демо: {what.split(',')[0]}", role=role,
                             region=region, actor="demo",
                             agency_id=agency if role is StaffRole.agency else None,
                             password=password)
            else:
                set_password(s, id=sid, password=password, actor="demo")
            note = f"{what} ({agency})" if role is StaffRole.agency else what
            out.append(DemoAccount(id=sid, role=role, password=password, what=note))
        s.commit()
    return out
