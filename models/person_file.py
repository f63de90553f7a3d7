"""The person's file as tables (issue 10): details beyond ``person``, disability records,
applications with their eligibility decision, consent versions, the ИПРА history.

Personal data stays in these person-scoped tables (and ``person``); routes, requests, jobs,
Prefect and logs carry identifiers only. The validated input models and the rules are in
``models/application.py``, ``models/consent.py``, ``models/ipra.py``,
``models/eligibility.py``; these tables store what they validated, as JSON, with the columns
the product queries by.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or remove a consent version (152-ФЗ art. 9 ч.3)."""


# The form's details of a person (the 363н form's п.2, 004 п.7): the latest given; each
# application keeps its own copy in ``application.form``.
class PersonDetail(SQLModel, table=True):
    __tablename__ = "person_detail"

    person_id: str = Field(primary_key=True, foreign_key="person.id", max_length=40)
    sex: str = Field(max_length=10)
    identity_document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    registration_address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    actual_address: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    region_code: str = Field(max_length=2, index=True,
                             description="the actual address's region, else the registration's")
    phones: list[dict[str, Any]] = Field(default_factory=list,
                                         sa_column=Column(JSON, nullable=False))
    email: str | None = Field(default=None, max_length=254)
    preferred_channel: str = Field(max_length=20, description="004 п.7")
    processing_stopped_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime,
        description="consent withdrawn (152-ФЗ art. 9 ч.2): contacts are not processed")
    destroy_by: date | None = Field(
        default=None, description="contacts to be destroyed by this day (152-ФЗ art. 21 ч.5)")
    destroyed_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime,
        description="contacts and the ИПРА copy destroyed (engine.data_purge)")
    updated_at: datetime = Field(sa_type=UTCDateTime, description="business clock")


# A disability as stated in an application (group, cause, date established, term).
class DisabilityRecord(SQLModel, table=True):
    __tablename__ = "disability_record"

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", index=True, max_length=40)
    application_id: str = Field(foreign_key="application.id", index=True, max_length=40)
    group: str = Field(max_length=10)
    cause: str = Field(max_length=500)
    established_on: date
    until: date | None = Field(default=None, description="the form's «до», exclusive")
    indefinite: bool = False
    recorded_at: datetime = Field(sa_type=UTCDateTime, description="business clock")


# One registered application (004, the appendix form; 001 Регламент п.14, п.15) with its
# eligibility decision; the route it formed, if any.
class ApplicationRecord(SQLModel, table=True):
    __tablename__ = "application"

    id: str = Field(primary_key=True, max_length=40)
    person_id: str = Field(foreign_key="person.id", index=True, max_length=40)
    region: str = Field(max_length=8, index=True)
    kind: str = Field(max_length=30, index=True)
    action: str | None = Field(default=None, max_length=10)
    participant: str | None = Field(default=None, max_length=40)
    applicant_kind: str = Field(max_length=40)
    channel: str = Field(max_length=10)
    signature: str = Field(max_length=30)
    registered_at: datetime = Field(sa_type=UTCDateTime,
                                    description="the send deadline counts from it (001 "
                                                "Порядок п.10)")
    application_date: date = Field(description="registered_at's date in its own offset")
    form: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    eligible: bool = Field(index=True)
    decision: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    ipra_id: int | None = Field(default=None, foreign_key="ipra.id",
                                description="the ИПРА the decision read")
    consent_id: str = Field(max_length=40)
    consent_version: int
    route_id: str | None = Field(default=None, foreign_key="route.id", max_length=40)
    registered_by: str = Field(max_length=80, description="actor")
    blocked_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime,
        description="consent withdrawn: kept, not processed (152-ФЗ art. 3 п.7, art. 21 ч.5)")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# One version of a consent (152-ФЗ art. 9): append-only, a withdrawal is the next version.
class ConsentVersion(SQLModel, table=True):
    __tablename__ = "consent_record"
    __table_args__ = (UniqueConstraint("consent_id", "version",
                                       name="uq_consent_record_version"),)

    id: int | None = Field(default=None, primary_key=True)
    consent_id: str = Field(max_length=40, index=True)
    version: int
    person_id: str = Field(foreign_key="person.id", index=True, max_length=40)
    record: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False),
                                   description="the ConsentRecord as validated")
    given_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recorded_by: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@event.listens_for(ConsentVersion, "before_update")
def _refuse_update(mapper: Mapper[Any], connection: Connection, target: ConsentVersion) -> None:
    raise AppendOnlyError("consent_record is append-only: a change is the next version")


@event.listens_for(ConsentVersion, "before_delete")
def _refuse_delete(mapper: Mapper[Any], connection: Connection, target: ConsentVersion) -> None:
    raise AppendOnlyError("consent_record is append-only: delete refused")


# One ИПРА of a person (imported from a ФГИС ФРИ extract); a newer one supersedes it and
# both stay (issue 10).
class IpraRecord(SQLModel, table=True):
    __tablename__ = "ipra"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=30, unique=True)
    person_id: str = Field(foreign_key="person.id", index=True, max_length=40)
    issued_on: date
    valid_from: date
    last_day: date | None = Field(default=None, description="None: indefinite")
    extract_id: str = Field(max_length=64)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False),
                                     description="the Ipra as validated")
    superseded_by_id: int | None = Field(default=None, foreign_key="ipra.id")
    imported_by: str = Field(max_length=80)
    imported_at: datetime = Field(sa_type=UTCDateTime, description="business clock")
