"""Who provides: the person's choice of provider, else the region's rule (pure rules and
the choice's table).

001 Регламент п.15 пп.2: the application names the provider the person chose; 004 п.10 пп.б:
the rehabilitation organisation forms the route to carry out the ИПРА. A person chooses
among the agencies of that role in their region; without a choice, the region's rule picks
one — ``nearest`` (an agency of the person's district, 'муниципальное образование') or
``least_loaded`` (the fewest open requests) — never a hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class ProviderRule(StrEnum):
    """How a region picks a provider when the person has not chosen one."""

    nearest = "nearest"  # an agency of the person's district; else the least loaded
    least_loaded = "least_loaded"  # the fewest open requests (ties: the agency id)


DEFAULT_RULE = ProviderRule.least_loaded


# The person's choice of the agency that provides a role's service (001 Регламент п.15 пп.2).
class ProviderChoice(SQLModel, table=True):
    __tablename__ = "provider_choice"
    __table_args__ = (UniqueConstraint("person_id", "role", name="uq_provider_choice_role"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", index=True, max_length=40)
    role: str = Field(max_length=20)
    agency_id: str = Field(foreign_key="agency.id", max_length=40)
    chosen_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    recorded_by: str = Field(max_length=80)


@dataclass(frozen=True)
class Candidate:
    """An active agency of the role in the region, with its district and open requests."""

    agency_id: str
    district: str | None
    open_requests: int


def _norm(district: str | None) -> str:
    return " ".join((district or "").split()).casefold()


def pick(candidates: Sequence[Candidate], rule: ProviderRule, *,
         person_district: str | None) -> str:
    """The agency the rule gives (``candidates`` non-empty). ``least_loaded``: the fewest
    open requests, ties by id. ``nearest``: among the agencies of the person's district the
    least loaded; none there (or no district known): the least loaded of all."""
    if not candidates:
        raise ValueError("candidates: at least one agency")
    pool = list(candidates)
    if rule is ProviderRule.nearest and _norm(person_district):
        near = [c for c in pool if _norm(c.district) == _norm(person_district)]
        pool = near or pool
    return min(pool, key=lambda c: (c.open_requests, c.agency_id)).agency_id


def rule_for(rules: Mapping[str, str], region: str) -> ProviderRule:
    """The region's rule (a setting, ``REHAB_PROVIDER_RULES``); default least_loaded."""
    return ProviderRule(rules.get(region, DEFAULT_RULE))
