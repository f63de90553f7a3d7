"""Consent to personal-data processing (152-ФЗ art. 9) as versioned records, and its rules.

A consent record says whose data (the person, by SNILS and name), who consents (the person or
their representative with the document of authority — art. 9 ч.4 п.2, ч.6), for which
purposes, which categories of data, to which operator, for which term, through which channel
and when (art. 9 ч.4). Health data — the disability and the ИПРА — are a special category:
written consent (art. 10 ч.2 п.1); an electronic document signed with an electronic
signature is equal to a written one (art. 9 ч.4).

Records are append-only: a change (another purpose, a new term) or a withdrawal is a new
version of the same ``consent_id``; the history is the proof the operator must be able to
give (art. 9 ч.3). ``consent_status`` answers whether processing for a purpose is allowed at
an instant; ``withdraw`` makes the withdrawal version (art. 9 ч.2: possible at any time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, ValidationInfo, field_validator

from models.application import ApplicantKind, Application, SignatureKind, SubmissionChannel
from models.identity import AuthorityDocument, FullName
from models.input_validation import NON_BLANK_PATTERN, InputModel, Text, rule_error
from models.snils import Snils


class ConsentPurpose(StrEnum):
    """What the data are processed for: forming and driving a route of this kind (004 п.10б;
    001 Порядок п.9, Регламент п.11) and informing the person of it (004 п.5, п.7)."""

    accompaniment = "accompaniment"
    supported_living = "supported_living"
    social_employment = "social_employment"
    early_help = "early_help"


class DataCategory(StrEnum):
    """Categories of personal data the consent lists (152-ФЗ art. 9 ч.4 п.5)."""

    identity = "identity"  # full name, birth date, sex, identity document
    snils = "snils"
    contacts = "contacts"  # addresses, phones, e-mail, preferred channel
    disability = "disability"  # group, cause, term — health data (art. 10)
    ipra = "ipra"  # limitations and measures — health data (art. 10)
    representative = "representative"  # the representative's details and authority


SPECIAL_CATEGORIES = frozenset({DataCategory.disability, DataCategory.ipra})
"""152-ФЗ art. 10 ч.1: data on health — processed on written consent (ч.2 п.1)."""

_ROUTE_DATA = frozenset({DataCategory.identity, DataCategory.snils, DataCategory.contacts,
                         DataCategory.disability, DataCategory.ipra})

NEEDED_CATEGORIES: Mapping[ConsentPurpose, frozenset[DataCategory]] = {
    ConsentPurpose.accompaniment: _ROUTE_DATA,
    ConsentPurpose.supported_living: _ROUTE_DATA,
    ConsentPurpose.social_employment: _ROUTE_DATA,
    ConsentPurpose.early_help: frozenset({DataCategory.identity, DataCategory.snils,
                                          DataCategory.contacts}),
}
"""What each purpose needs (152-ФЗ art. 5 ч.5: no more than the purpose needs). Early help
may go without a disability; when the child has one, the consent must list it too."""


class ConsentGiverKind(StrEnum):
    """Who consents: the person, or their representative (152-ФЗ art. 9 ч.4 п.2, ч.6)."""

    person = "person"
    legal_representative = "legal_representative"
    authorised_representative = "authorised_representative"


def _inn(value: str) -> str:
    if not re.fullmatch(r"[0-9]{10}", value):
        raise rule_error("inn_format", "ИНН организации — 10 цифр")
    return value


class Operator(InputModel):
    """The operator processing the data (152-ФЗ art. 9 ч.4 п.3): name, INN, address."""

    name: Text
    inn: Annotated[str, AfterValidator(_inn)] = Field(
        description="10 digits: a legal entity", json_schema_extra={"pattern": r"^[0-9]{10}$"})
    address: Text


class ConsentGiver(InputModel):
    """Who gave the consent; a representative names themself and their authority."""

    kind: ConsentGiverKind
    full_name: FullName | None = Field(default=None, validate_default=True)
    authority_document: AuthorityDocument | None = Field(default=None, validate_default=True)

    @field_validator("full_name", "authority_document")
    @classmethod
    def _representative_details(cls, v: object, info: ValidationInfo) -> object:
        """152-ФЗ art. 9 ч.4 п.2: a representative's name and the document of authority."""
        kind = info.data.get("kind")
        if kind is None:
            return v
        representative = kind != ConsentGiverKind.person
        if representative and v is None:
            raise rule_error("required_for_kind", "Для представителя обязательное поле")
        if not representative and v is not None:
            raise rule_error("not_applicable",
                             "Это поле заполняется, только если согласие даёт представитель")
        return v


class ConsentRecord(InputModel):
    """One version of a consent; a change or a withdrawal is the next version."""

    consent_id: str = Field(min_length=1, max_length=40,
                            json_schema_extra={"pattern": NON_BLANK_PATTERN})
    version: int = Field(ge=1, le=2**31 - 1)  # an integer column on PostgreSQL
    subject_snils: Snils = Field(description="Whose data: the person, found by SNILS")
    subject_name: FullName
    given_by: ConsentGiver
    purposes: frozenset[ConsentPurpose] = Field(min_length=1)
    data_categories: frozenset[DataCategory] = Field(min_length=1)
    operator: Operator
    channel: SubmissionChannel
    signature: SignatureKind
    given_at: AwareDatetime
    expires_at: AwareDatetime | None = Field(
        default=None, description="The end of the term (art. 9 ч.4 п.8); None: until the "
                                  "purposes are achieved or the consent is withdrawn")
    withdrawn_at: AwareDatetime | None = None

    @field_validator("expires_at", "withdrawn_at")
    @classmethod
    def _after_given(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        given: datetime | None = info.data.get("given_at")
        if v is not None and given is not None and v <= given:
            raise rule_error("after_given", "Момент должен быть позже момента дачи согласия")
        return v

    @property
    def recorded_at(self) -> datetime:
        """When this version took effect: the withdrawal, else the giving."""
        return self.withdrawn_at or self.given_at


class ConsentProblem(StrEnum):
    """Why processing is not allowed at an instant."""

    missing = "missing"
    withdrawn = "withdrawn"
    expired = "expired"
    purpose_not_covered = "purpose_not_covered"
    categories_not_covered = "categories_not_covered"


_PROBLEM_RU: Mapping[ConsentProblem, str] = {
    ConsentProblem.missing: "Согласие на обработку персональных данных не дано",
    ConsentProblem.withdrawn: "Согласие на обработку персональных данных отозвано",
    ConsentProblem.expired: "Срок действия согласия на обработку персональных данных истёк",
    ConsentProblem.purpose_not_covered: "Согласие не распространяется на эту цель обработки",
    ConsentProblem.categories_not_covered:
        "Согласие не распространяется на все нужные для этой цели данные",
}


@dataclass(frozen=True)
class ConsentStatus:
    """The answer of ``consent_status``: allowed or not, why, and the version it read."""

    valid: bool
    problem: ConsentProblem | None
    record: ConsentRecord | None

    @property
    def message_ru(self) -> str:
        return "Согласие действует" if self.problem is None else _PROBLEM_RU[self.problem]


class ConsentHistoryError(ValueError):
    """Versions that do not form one history (another id or person, a gap, a repeat)."""


def current_version(history: Iterable[ConsentRecord], at: datetime) -> ConsentRecord | None:
    """The version in effect at the instant ``at``: the highest one recorded by then."""
    effective = [r for r in history if r.recorded_at <= at]
    return max(effective, key=lambda r: r.version, default=None)


def consent_status(history: Iterable[ConsentRecord], *, purpose: ConsentPurpose, at: datetime,
                   categories: frozenset[DataCategory] | None = None) -> ConsentStatus:
    """Whether the person's data may be processed for ``purpose`` at the instant ``at``.

    152-ФЗ art. 9 ч.1 (consent specific to the purpose), ч.2 (withdrawn: no longer), ч.4 п.8
    (the term), art. 5 ч.5 (the data the purpose needs — ``NEEDED_CATEGORIES`` by default —
    must be covered).
    """
    record = current_version(history, at)
    needed = NEEDED_CATEGORIES[purpose] if categories is None else categories
    if record is None:
        problem: ConsentProblem | None = ConsentProblem.missing
    elif record.withdrawn_at is not None:
        problem = ConsentProblem.withdrawn
    elif record.expires_at is not None and record.expires_at <= at:
        problem = ConsentProblem.expired
    elif purpose not in record.purposes:
        problem = ConsentProblem.purpose_not_covered
    elif not needed <= record.data_categories:
        problem = ConsentProblem.categories_not_covered
    else:
        problem = None
    return ConsentStatus(valid=problem is None, problem=problem, record=record)


def needed_for(application: Application) -> tuple[ConsentPurpose, frozenset[DataCategory]]:
    """The purpose an application's data are processed for and the categories it holds: the
    purpose's own, plus the disability when given and the representative when one applies."""
    purpose = ConsentPurpose(application.request.kind.value)
    needed = set(NEEDED_CATEGORIES[purpose])
    if application.disability is not None:
        needed.add(DataCategory.disability)
    if application.applicant.kind != ApplicantKind.person:
        needed.add(DataCategory.representative)
    return purpose, frozenset(needed)


def consent_for_application(history: Iterable[ConsentRecord],
                            application: Application) -> ConsentStatus:
    """Whether the person's consent allows registering ``application`` at its instant.

    The consent must be the person's own (by SNILS) — given by them or their representative
    (152-ФЗ art. 9 ч.1, ч.6), never by another citizen or body appealing on their behalf
    (001 Регламент п.14 lets those appeal, not consent) — and cover the purpose and the data.
    """
    purpose, needed = needed_for(application)
    own = [r for r in history if r.subject_snils == application.person.snils]
    return consent_status(own, purpose=purpose, at=application.submission.registered_at,
                          categories=needed)


def withdraw(record: ConsentRecord, at: datetime) -> ConsentRecord:
    """The withdrawal as the next version (152-ФЗ art. 9 ч.2: at any time)."""
    if record.withdrawn_at is not None:
        raise ConsentHistoryError(f"consent {record.consent_id} v{record.version} is already "
                                  "withdrawn")
    return record.model_validate(record.model_dump() | {"version": record.version + 1,
                                                         "withdrawn_at": at})


def check_history(history: Iterable[ConsentRecord]) -> list[ConsentRecord]:
    """The versions in order; ConsentHistoryError unless they are versions 1..n of one consent
    of one person, each recorded no earlier than the one before, none after a withdrawal."""
    items = sorted(history, key=lambda r: r.version)
    if not items:
        return items
    if len({(r.consent_id, r.subject_snils) for r in items}) > 1:
        raise ConsentHistoryError("versions of different consents or persons")
    if [r.version for r in items] != list(range(1, len(items) + 1)):
        raise ConsentHistoryError("versions must be 1..n without gaps or repeats")
    for before, after in zip(items, items[1:], strict=False):
        if after.recorded_at < before.recorded_at:
            raise ConsentHistoryError(f"version {after.version} recorded before "
                                      f"version {before.version}")
        if before.withdrawn_at is not None:
            raise ConsentHistoryError(f"version {after.version} follows a withdrawal: a new "
                                      "consent is a new consent_id")
    return items


class Handling(StrEnum):
    """What happens to a kind of data when the consent is withdrawn."""

    stop_and_destroy = "stop_and_destroy"  # within 30 days (152-ФЗ art. 21 ч.5)
    keep_blocked = "keep_blocked"  # kept as the law requires, not processed otherwise
    keep = "keep"  # holds no personal data, or is the operator's own proof / accountability


@dataclass(frozen=True)
class WithdrawalRule:
    """The handling of one kind of stored data on withdrawal, and the law for it."""

    handling: Handling
    basis: str


WITHDRAWAL_POLICY: Mapping[str, WithdrawalRule] = {
    "consent_records": WithdrawalRule(
        Handling.keep, "152-ФЗ art. 9 ч.3: the operator proves the consent it relied on"),
    "audit_log": WithdrawalRule(
        Handling.keep, "152-ФЗ art. 18.1, art. 19: accountability of processing; the log holds "
                       "identifiers, not the data"),
    "application": WithdrawalRule(
        Handling.keep_blocked, "152-ФЗ art. 21 ч.5 (unless federal law provides otherwise) "
                               "with the archival law (125-ФЗ): a registered application is a "
                               "record kept for its retention period; blocked (art. 3 п.7)"),
    "eligibility_decision": WithdrawalRule(
        Handling.keep_blocked, "as the application: the decision is part of the record"),
    "route_state": WithdrawalRule(
        Handling.keep, "identifiers, statuses and instants only; routes are suspended"),
    "contacts": WithdrawalRule(
        Handling.stop_and_destroy, "152-ФЗ art. 21 ч.5: no other basis to keep them"),
    "ipra_copy": WithdrawalRule(
        Handling.stop_and_destroy, "152-ФЗ art. 10 ч.4, art. 21 ч.5: health data; the "
                                   "register (ФГИС ФРИ, 181-ФЗ art. 5.1) keeps the original"),
    "agency_request_contents": WithdrawalRule(
        Handling.stop_and_destroy, "152-ФЗ art. 21 ч.5; the request's identifiers and statuses "
                                   "stay in route_state"),
}
"""What the product does with each kind of stored data on withdrawal (docs/person-file.md)."""
