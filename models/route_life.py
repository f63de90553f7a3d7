"""A route's life beyond its steps: the person refusing and resuming a participant's
accompaniment, and the end of accompaniment (Mintrud order 363н, 004 in ../shared/seeds).

- 004 п.11: the person may refuse the accompaniment of the rehabilitation organisation, the
  МСЭ bureau and the СФР's territorial body, and resume it, at any time during the whole
  term of their ИПРА. A refusal is a ``ParticipantRefusal`` (one participant, or all); the
  steps it pauses keep what they had left in ``StepSuspension`` rows pointing to it.
- 004 п.12: refusing and resuming are the person's application (paper or the Единый портал);
  its date is recorded.
- 004 п.13: accompaniment ends (а) when the ИПРА's term ends — a ``RouteTimer`` at the end of
  the ИПРА's last day, fired by the sweeper; (б) on the person's application to stop;
  (в) when the МСЭ changes its decision and no degree-2/3 limitation of the categories of
  004 п.1 is left.
- The other kinds end on a new МСЭ decision by their own grounds
  (``models.eligibility.IPRA_GROUNDS``: social employment, 001 Регламент п.3; supported
  living, 000 п.10), and with the ИПРА's term only where those grounds are the ИПРА's
  (``IPRA_TERM_KINDS``). Early help (003) rests on no ИПРА.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.ipra import Ipra, LimitationCategory
from models.types import UTCDateTime


class EndReason(StrEnum):
    """Why accompaniment ended (004 п.13); the audit's ``terminated`` record carries it."""

    ipra_expired = "ipra_expired"  # п.13 а: the ИПРА's term is over
    person_request = "person_request"  # п.13 б: the person's application to stop
    grounds_removed = "grounds_removed"  # п.13 в: no degree-2/3 limitation left


END_REASON_RU: dict[EndReason, str] = {
    EndReason.ipra_expired: "окончание срока действия ИПРА (363н п.13 а)",
    EndReason.person_request: "заявление инвалида о прекращении сопровождения (363н п.13 б)",
    EndReason.grounds_removed: "изменение решения МСЭ: нет ограничений 2 или 3 степени "
                               "(363н п.13 в)",
}

IPRA_TERM_KINDS: dict[str, str] = {
    "accompaniment": "363н п.13 а",
    "social_employment": "298-п Регламент п.3",
}
"""The route kinds that end with the ИПРА's term (an ``ipra_expiry`` timer), each with its
clause: accompaniment ends when the ИПРА's term ends (004 п.13 а); social employment is for
a person who has, in the ИПРА, the conclusion of a degree-3 limitation of the capacity to
work (001 Регламент п.3) — without an ИПРA in force the grounds are gone. Supported living
(000 п.10: unable to live independently) and early help (003: a child of early age of the
target group) do not rest on the ИПРА's term: no timer."""


def ended_by_ipra_text(kind: str, reason: EndReason, why: str) -> str:
    """The Russian reason a route of ``kind`` (not accompaniment) ends with: the kind's
    grounds gone (``why``, with its clause) by the ИПРА's term or by a new МСЭ decision."""
    head = ("окончание срока действия ИПРА" if reason is EndReason.ipra_expired
            else "изменение решения МСЭ")
    return f"{head}: основания маршрута утрачены — {why}"


GROUND_CATEGORIES: tuple[LimitationCategory, ...] = (
    LimitationCategory.self_care, LimitationCategory.movement, LimitationCategory.orientation,
    LimitationCategory.communication, LimitationCategory.behaviour_control,
)
"""004 п.1: the categories whose degree 2 or 3 gives the right to accompaniment."""

GROUND_DEGREE = 2


def grounds_hold(ipra: Ipra) -> bool:
    """004 п.1, п.13 в: the ИПРА still lists a limitation of degree 2 or 3 in one of the
    five categories (self-care, movement, orientation, communication, behaviour control)."""
    return any(ipra.degree(c) >= GROUND_DEGREE for c in GROUND_CATEGORIES)


# The person's refusal of one participant's accompaniment, or of all (004 п.11, п.12).
class ParticipantRefusal(SQLModel, table=True):
    __tablename__ = "participant_refusal"

    id: int | None = Field(default=None, primary_key=True)
    route_id: str = Field(foreign_key="route.id", index=True, max_length=40)
    agency_id: str | None = Field(default=None, foreign_key="agency.id", max_length=40,
                                  description="the participant refused; None: all of them")
    application_date: date = Field(description="the date of the person's application")
    refused_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    refused_by: str = Field(max_length=80)
    resumed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resumed_by: str | None = Field(default=None, max_length=80)
    resume_application_date: date | None = None


class RouteTimerKind(StrEnum):
    ipra_expiry = "ipra_expiry"  # 004 п.13 а: the end of the ИПРА's last day


class RouteTimerStatus(StrEnum):
    pending = "pending"
    fired = "fired"
    cancelled = "cancelled"


# A timer of a whole route (not of a step): fired once by the sweeper.
class RouteTimer(SQLModel, table=True):
    __tablename__ = "route_timer"
    __table_args__ = (Index("ix_route_timer_due_pending", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    route_id: str = Field(foreign_key="route.id", index=True, max_length=40)
    kind: RouteTimerKind
    due_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    due_date: date = Field(description="the last day it covers (local, the route's region)")
    ipra_id: int | None = Field(default=None, foreign_key="ipra.id",
                                description="the ИПРА whose term it watches")
    status: RouteTimerStatus = RouteTimerStatus.pending
    created_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
    fired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_reason: str | None = Field(default=None, max_length=300)
