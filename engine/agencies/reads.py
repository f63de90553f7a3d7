"""Reading participant agencies for the administrator's pages (secrets never leave here:
``participants.describe`` gives fingerprints only)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.agencies import Agency


def all_agencies(session: Session) -> list[Agency]:
    """Every agency, by region and id."""
    return list(session.exec(select(Agency).order_by(col(Agency.region), col(Agency.id))))


def agency_by_id(session: Session, agency_id: str) -> Agency | None:
    """The agency, or None."""
    return session.get(Agency, agency_id)
