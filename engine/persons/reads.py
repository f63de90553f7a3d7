"""Every read of a person's data is an audit record: who, when (business clock), what
(issue 10; 152-ФЗ art. 18.1, art. 19 — accountability of processing). Identifiers only."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session

from engine.infra import audit


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
