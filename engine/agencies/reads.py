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


def short_names(session: Session) -> dict[str, str]:
    """Every agency's short name by its id (the pages' tables name agencies by it)."""
    return {a.id: a.short_name for a in session.exec(select(Agency))}


def active_agencies_of_region(session: Session, region: str) -> list[Agency]:
    """The region's active agencies, by id (the choices of a reassignment)."""
    return list(session.exec(select(Agency).where(Agency.region == region,
                                                  col(Agency.active).is_(True))
                             .order_by(col(Agency.id))))
