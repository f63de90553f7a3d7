"""Consent (152-ФЗ art. 9): missing, expired, withdrawn at an instant; versions; representatives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from models.application import validate_application
from models.consent import (
    NEEDED_CATEGORIES,
    WITHDRAWAL_POLICY,
    ConsentHistoryError,
    ConsentProblem,
    ConsentPurpose,
    ConsentRecord,
    DataCategory,
    check_history,
    consent_for_application,
    consent_status,
    needed_for,
    withdraw,
)
from models.input_validation import check
from tests.person.forms import DELETE, REPRESENTATIVE, application, put

GIVEN = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)


def raw(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "consent_id": "cn_1", "version": 1, "subject_snils": "112-233-445 95",
        "subject_name": {"last_name": "Синтетова", "first_name": "Анна"},
        "given_by": {"kind": "person"},
        "purposes": ["accompaniment"],
        "data_categories": ["identity", "snils", "contacts", "disability", "ipra"],
        "operator": {"name": "Министерство социальной политики Калининградской области",
                     "inn": "3906000000", "address": "г. Калининград"},
        "channel": "paper", "signature": "handwritten",
        "given_at": GIVEN.isoformat(), "expires_at": (GIVEN + timedelta(days=365)).isoformat(),
    }
    for path, value in changes.items():
        doc = put(doc, path.replace("__", "."), value)
    return doc


def record(**changes: Any) -> ConsentRecord:
    return ConsentRecord.model_validate(raw(**changes))


def test_valid_while_given_and_in_term() -> None:
    history = [record()]
    status = consent_status(history, purpose=ConsentPurpose.accompaniment, at=GIVEN)
    assert status.valid and status.problem is None and status.record is history[0]
    assert status.message_ru == "Согласие действует"


def test_missing_before_it_is_given_or_without_records() -> None:
    at = GIVEN - timedelta(seconds=1)
    for history in ([], [record()]):
        status = consent_status(history, purpose=ConsentPurpose.accompaniment, at=at)
        assert not status.valid and status.problem == ConsentProblem.missing
        assert "не дано" in status.message_ru


def test_expired_at_the_end_of_its_term() -> None:
    end = GIVEN + timedelta(days=365)
    history = [record()]
    assert consent_status(history, purpose=ConsentPurpose.accompaniment,
                          at=end - timedelta(microseconds=1)).valid
    status = consent_status(history, purpose=ConsentPurpose.accompaniment, at=end)
    assert status.problem == ConsentProblem.expired
    forever = [record(expires_at=None)]
    assert consent_status(forever, purpose=ConsentPurpose.accompaniment,
                          at=end + timedelta(days=3650)).valid


def test_withdrawn_from_the_instant_of_withdrawal() -> None:
    first = record()
    at = GIVEN + timedelta(days=40)
    second = withdraw(first, at)
    assert (second.version, second.withdrawn_at, second.purposes) == (2, at, first.purposes)
    history = [first, second]
    before = consent_status(history, purpose=ConsentPurpose.accompaniment,
                            at=at - timedelta(seconds=1))
    assert before.valid and before.record is first
    after = consent_status(history, purpose=ConsentPurpose.accompaniment, at=at)
    assert after.problem == ConsentProblem.withdrawn and after.record == second
    assert "отозвано" in after.message_ru
    with pytest.raises(ConsentHistoryError):
        withdraw(second, at + timedelta(days=1))
    with pytest.raises(ValidationError):
        withdraw(first, GIVEN - timedelta(days=1))
    assert check_history([second, first]) == [first, second]


def test_purpose_and_categories_must_be_covered() -> None:
    history = [record()]
    status = consent_status(history, purpose=ConsentPurpose.social_employment, at=GIVEN)
    assert status.problem == ConsentProblem.purpose_not_covered
    narrow = [record(data_categories=["identity", "snils", "contacts"])]
    status = consent_status(narrow, purpose=ConsentPurpose.accompaniment, at=GIVEN)
    assert status.problem == ConsentProblem.categories_not_covered
    early = [record(purposes=["early_help"], data_categories=["identity", "snils", "contacts"])]
    assert consent_status(early, purpose=ConsentPurpose.early_help, at=GIVEN).valid
    status = consent_status(early, purpose=ConsentPurpose.early_help, at=GIVEN,
                            categories=NEEDED_CATEGORIES[ConsentPurpose.early_help]
                            | {DataCategory.disability})
    assert status.problem == ConsentProblem.categories_not_covered


def test_a_new_version_widens_the_purposes_from_its_instant() -> None:
    first = record()
    later = GIVEN + timedelta(days=10)
    second = record(version=2, purposes=["accompaniment", "social_employment"],
                    given_at=later.isoformat())
    history = check_history([first, second])
    assert not consent_status(history, purpose=ConsentPurpose.social_employment,
                              at=later - timedelta(seconds=1)).valid
    assert consent_status(history, purpose=ConsentPurpose.social_employment, at=later).valid


@pytest.mark.parametrize("bad", [
    [record(), record(version=3)],
    [record(), record(version=1)],
    [record(), record(version=2, consent_id="cn_2")],
    [record(), record(version=2, subject_snils="068-619-801 04")],
    [record(given_at=(GIVEN + timedelta(days=1)).isoformat()), record(version=2)],
])
def test_history_must_be_one_consent_in_order(bad: list[ConsentRecord]) -> None:
    with pytest.raises(ConsentHistoryError):
        check_history(bad)


def test_a_new_version_after_a_withdrawal_is_refused() -> None:
    first = record()
    gone = withdraw(first, GIVEN + timedelta(days=1))
    again = record(version=3, given_at=(GIVEN + timedelta(days=2)).isoformat())
    with pytest.raises(ConsentHistoryError):
        check_history([first, gone, again])


def test_a_representative_names_themself_and_their_authority() -> None:
    giver = {"kind": "legal_representative", "full_name": REPRESENTATIVE["full_name"],
             "authority_document": REPRESENTATIVE["authority_document"]}
    assert check(ConsentRecord, raw(given_by=giver)).ok
    errors = check(ConsentRecord, raw(given_by=put(giver, "authority_document", DELETE))).errors
    assert [(e.field, e.rule) for e in errors] == [("given_by.authority_document",
                                                    "required_for_kind")]
    errors = check(ConsentRecord, raw(given_by={"kind": "person",
                                                "full_name": REPRESENTATIVE["full_name"]})).errors
    assert [(e.field, e.rule) for e in errors] == [("given_by.full_name", "not_applicable")]


def test_record_fields_are_checked() -> None:
    errors = check(ConsentRecord, raw(purposes=[], data_categories=["dna"], operator__inn="12",
                                      expires_at=GIVEN.isoformat(), given_at="2026-01-12")).errors
    fields = {(e.field, e.rule) for e in errors}
    assert ("purposes", "too_short") in fields
    assert ("data_categories[0]", "enum") in fields
    assert ("operator.inn", "inn_format") in fields
    assert ("given_at", "timezone_aware") in fields
    errors = check(ConsentRecord, raw(expires_at=GIVEN.isoformat())).errors
    assert [(e.field, e.rule) for e in errors] == [("expires_at", "after_given")]


def test_withdrawal_policy_covers_what_is_stored() -> None:
    assert {"consent_records", "audit_log", "application", "contacts",
            "ipra_copy"} <= set(WITHDRAWAL_POLICY)
    assert WITHDRAWAL_POLICY["consent_records"].handling == "keep"
    assert WITHDRAWAL_POLICY["contacts"].handling == "stop_and_destroy"
    assert all("152-ФЗ" in r.basis or "application" in r.basis or "identifiers" in r.basis
               for r in WITHDRAWAL_POLICY.values())


def test_consent_for_an_application() -> None:
    app = validate_application(application()).value
    assert app is not None  # registered 2026-01-12T10:00+02:00 = 08:00 UTC = GIVEN
    assert needed_for(app) == (ConsentPurpose.accompaniment, NEEDED_CATEGORIES[
        ConsentPurpose.accompaniment])
    assert consent_for_application([record()], app).valid
    someone_else = record(subject_snils="068-619-801 04")
    assert consent_for_application([someone_else], app).problem == ConsentProblem.missing
    later = record(given_at=(GIVEN + timedelta(minutes=1)).isoformat())
    assert consent_for_application([later], app).problem == ConsentProblem.missing
    by_representative = validate_application(application(applicant=REPRESENTATIVE)).value
    assert by_representative is not None
    status = consent_for_application([record()], by_representative)
    assert status.problem == ConsentProblem.categories_not_covered
    wide = record(data_categories=[c.value for c in DataCategory])
    assert consent_for_application([wide], by_representative).valid
