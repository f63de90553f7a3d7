"""Who provides a step: the person's choice, else the region's rule — never a hash.

001 Регламент п.15 пп.2: the person's application names the provider they chose; 004 п.10
пп.б: the route carries out the ИПРА with its executors. The choice is one of the agencies of
that role in the person's region (refused otherwise, naming the field and the rule); without
a valid choice, the region's rule (``models.providers``): ``nearest`` — an agency of the
person's district — or ``least_loaded`` — the fewest open requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from engine.errors import EngineError, NotFoundError
from engine.infra import audit
from models.agencies import Agency, AgencyRole
from models.person_file import PersonDetail
from models.persons import Person
from models.providers import Candidate, ProviderChoice, ProviderRule, pick, rule_for
from models.routes import Step, StepStatus

OPEN_STEP = (StepStatus.sending, StepStatus.awaiting, StepStatus.needs_clarification)


def record_choice(session: Session, *, person_id: str, role: str, agency_id: str,
                  now: datetime, actor: str) -> ProviderChoice:
    """Record (or change) the person's choice of the provider of ``role`` (001 Регламент
    п.15 пп.2): an active agency of that role in the person's region, else EngineError naming
    the field and the rule. Later steps of that role go to it; open ones keep their agency."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFoundError(f"person_id: no person {person_id!r}")
    try:
        role = AgencyRole(role).value
    except ValueError:
        raise EngineError(f"role: {role!r} is not a participant role "
                          f"({', '.join(r.value for r in AgencyRole)})") from None
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFoundError(f"agency_id: no agency {agency_id!r}")
    if agency.role != role:
        raise EngineError(f"agency_id: {agency_id} is a {agency.role} participant, not "
                          f"{role}: the person chooses among the agencies of that role")
    if agency.region != person.region:
        raise EngineError(f"agency_id: {agency_id} serves region {agency.region}, the person "
                          f"lives in region {person.region}: the choice is among the agencies "
                          f"of the person's region")
    if not agency.active:
        raise EngineError(f"agency_id: {agency_id} is not active")
    row = session.exec(select(ProviderChoice).where(ProviderChoice.person_id == person_id,
                                                    ProviderChoice.role == role)).first()
    before = {"agency_id": row.agency_id} if row else None
    if row is None:
        row = ProviderChoice(person_id=person_id, role=role, agency_id=agency_id,
                             chosen_at=now, recorded_by=actor[:80])
    row.agency_id, row.chosen_at, row.recorded_by = agency_id, now, actor[:80]
    session.add(row)
    session.flush()
    audit.record(session, at=now, actor=actor, entity="person", entity_id=person_id,
                 action="provider_chosen", before=before,
                 after={"role": role, "agency_id": agency_id})
    return row


def person_district(session: Session, person_id: str) -> str | None:
    """The district of the person's actual address, else of the registration one."""
    with session.no_autoflush:
        detail = session.get(PersonDetail, person_id)
    if detail is None:
        return None
    for addr in (detail.actual_address, detail.registration_address):
        if addr and addr.get("district"):
            return str(addr["district"])
    return None


#: the active agencies of a role in a region (built once: every step's start reads it)
_ACTIVE_OF_ROLE = (select(Agency)
                   .where(col(Agency.role) == bindparam("role"),
                          col(Agency.region) == bindparam("region"),
                          col(Agency.active).is_(True))
                   .order_by(col(Agency.id)))


def pick_provider(session: Session, *, role: str, region: str, person_id: str | None,
                  rules: Mapping[str, str], exclude: str | None = None) -> Agency:
    """The agency for a step of ``role`` in ``region``: the person's choice if it is still an
    active agency of that role and region (and not ``exclude``), else the region's rule."""
    with session.no_autoflush:
        rows = [a for a in session.exec(_ACTIVE_OF_ROLE, params={"role": role, "region": region})
                if a.id != exclude]
        if not rows:
            raise EngineError(f"agency: no active participant with role {role!r} in region "
                              f"{region}")
        if len(rows) == 1:  # one agency of the role: a choice can only be that one
            return rows[0]
        if person_id is not None:
            chosen = session.exec(select(ProviderChoice.agency_id).where(
                ProviderChoice.person_id == person_id, ProviderChoice.role == role)).first()
            match = next((a for a in rows if a.id == chosen), None)
            if match is not None:
                return match
        rule = rule_for(rules, region)
        load = dict(session.exec(
            select(Step.agency_id, func.count())
            .where(col(Step.agency_id).in_([a.id for a in rows]),
                   col(Step.status).in_(OPEN_STEP))
            .group_by(col(Step.agency_id))).all())
    district = (person_district(session, person_id)
                if rule is ProviderRule.nearest and person_id else None)
    chosen_id = pick([Candidate(a.id, a.district, int(load.get(a.id, 0))) for a in rows],
                     rule, person_district=district)
    return next(a for a in rows if a.id == chosen_id)
