"""Reading a person's file — the person, their details, applications, routes and ИПРА — and
the audit record every read of a person's data leaves: who, when (business clock), what
(issue 10; 152-ФЗ art. 18.1, art. 19 — accountability of processing). Identifiers only.

The readers here return rows; the caller records the read (``record_read``) in the same
transaction and decides what the reader may see."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from engine.infra import audit
from models.person_file import ApplicationRecord, IpraRecord, PersonDetail
from models.persons import Person
from models.routes import Route


def record_read(session: Session, *, actor: str, now: datetime, person_id: str, what: str,
                entity: str = "person", entity_id: str | None = None,
                route_id: str | None = None) -> None:
    """One read of ``what`` (e.g. ``application``, ``ipra``, ``person``) of a person."""
    audit.record(session, at=now, actor=actor, entity=entity,
                 entity_id=entity_id or person_id, route_id=route_id, action="read",
                 after={"person_id": person_id, "what": what})


def record_route_reads(session: Session, *, actor: str, now: datetime,
                       routes: Iterable[tuple[str, str]], what: str) -> None:
    """Reads of routes, each ``(route_id, person_id)``: one record per route, one statement."""
    audit.record_many(session, at=now, actor=actor, entries=[audit.Entry(
        entity="route", entity_id=route_id, route_id=route_id, action="read",
        after={"person_id": person_id, "what": what}) for route_id, person_id in routes])


def get_person(session: Session, person_id: str) -> Person | None:
    """The person, or None."""
    return session.get(Person, person_id)


def person_detail(session: Session, person_id: str) -> PersonDetail | None:
    """The person's details (contacts, documents), or None."""
    return session.get(PersonDetail, person_id)


def application_ids_of(session: Session, person_id: str) -> list[str]:
    """Ids of the person's applications, oldest first."""
    return list(session.exec(select(ApplicationRecord.id)
                             .where(ApplicationRecord.person_id == person_id)
                             .order_by(col(ApplicationRecord.registered_at),
                                       col(ApplicationRecord.created_at),
                                       col(ApplicationRecord.id))))


def route_ids_of(session: Session, person_id: str) -> list[str]:
    """Ids of the person's routes, oldest first."""
    return list(session.exec(select(Route.id).where(Route.person_id == person_id)
                             .order_by(col(Route.registered_at), col(Route.created_at),
                                       col(Route.id))))


def get_application(session: Session, application_id: str) -> ApplicationRecord | None:
    """The application, or None."""
    return session.get(ApplicationRecord, application_id)


def applications_of_region(session: Session, region: str, *, kind: str | None,
                           eligible: bool | None, limit: int) -> list[ApplicationRecord]:
    """Applications of ``region`` (of ``kind``, ``eligible`` if given), newest first."""
    q = select(ApplicationRecord).where(ApplicationRecord.region == region)
    if kind is not None:
        q = q.where(ApplicationRecord.kind == kind)
    if eligible is not None:
        q = q.where(ApplicationRecord.eligible == eligible)
    return list(session.exec(q.order_by(col(ApplicationRecord.registered_at).desc(),
                                        col(ApplicationRecord.id)).limit(limit)))


def get_ipra(session: Session, ipra_id: int) -> IpraRecord | None:
    """The ИПРА, or None."""
    return session.get(IpraRecord, ipra_id)
