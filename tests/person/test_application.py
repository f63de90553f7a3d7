"""The 363н application: every field of the form rejected with its own message, all at once."""

from __future__ import annotations

import re
from datetime import date
from functools import reduce
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.application import RequestKind, validate_application
from models.contacts import PHONE_INPUT_PATTERN
from tests.person.forms import DELETE, REPRESENTATIVE, application, put

CYRILLIC = re.compile(r"[А-Яа-яЁё]")

# (what to change, the value, the field reported, the rule)
CASES: list[tuple[str, Any, str, str]] = [
    # submission (004 п.12; 001 Порядок п.10)
    ("submission.channel", "fax", "submission.channel", "enum"),
    ("submission.signature", "simple_electronic", "submission.signature", "paper_signature"),
    ("submission.registered_at", "2026-01-12T10:00:00", "submission.registered_at",
     "timezone_aware"),
    ("submission.registered_at", DELETE, "submission.registered_at", "missing"),
    ("submission.registered_by", DELETE, "submission.registered_by", "required_for_kind"),
    ("submission.portal_request_id", "123", "submission.portal_request_id", "not_applicable"),
    ("submission.certificate_serial", "0A1B", "submission.certificate_serial", "not_applicable"),
    # request (the form's п.1; 001 Регламент п.14, п.15)
    ("request.kind", "holiday", "request.kind", "enum"),
    ("request.addressee", "  ", "request.addressee", "string_too_short"),
    ("request.action", DELETE, "request.action", "required_for_kind"),
    ("request.action", "pause", "request.action", "enum"),
    ("request.participant", DELETE, "request.participant", "required_for_kind"),
    ("request.participant", "mse", "request.participant", "provide_by_organisation"),
    ("request.preferences", "рядом с домом", "request.preferences", "not_applicable"),
    ("request.activity_kinds", ["керамика"], "request.activity_kinds", "not_applicable"),
    ("request.provider", {"name": "АНО «Пример»"}, "request.provider", "not_applicable"),
    ("request.early_help_grounds", ["disabled_child"], "request.early_help_grounds",
     "not_applicable"),
    ("request.unknown", 1, "request.unknown", "extra_forbidden"),
    # applicant (004 п.12, the form's п.3; 001 Регламент п.14)
    ("applicant.kind", "neighbour", "applicant.kind", "enum"),
    ("applicant.full_name", {"last_name": "Иванов", "first_name": "Иван"}, "applicant.full_name",
     "not_applicable"),
    ("applicant.email", "a@example.ru", "applicant.email", "not_applicable"),
    ("applicant", {"kind": "other_citizen", "full_name": {"last_name": "Сосед",
                                                          "first_name": "Пётр"},
                   "phones": [{"kind": "mobile", "number": "+79110000000"}]},
     "applicant.kind", "on_behalf_social_employment_only"),
    ("applicant", put(REPRESENTATIVE, "authority_document", DELETE),
     "applicant.authority_document", "required_for_kind"),
    ("applicant", put(REPRESENTATIVE, "identity_document", DELETE),
     "applicant.identity_document", "required_for_kind"),
    ("applicant", put(REPRESENTATIVE, "address", DELETE), "applicant.address",
     "required_for_kind"),
    ("applicant", put(REPRESENTATIVE, "full_name", DELETE), "applicant.full_name",
     "required_for_kind"),
    ("applicant", put(REPRESENTATIVE, "authority_document.kind", "power_of_attorney"),
     "applicant.authority_document.kind", "authority_document_kind"),
    ("applicant", put(put(REPRESENTATIVE, "kind", "authorised_representative"),
                      "authority_document.kind", "guardianship_act"),
     "applicant.authority_document.kind", "authority_document_kind"),
    ("applicant", put(REPRESENTATIVE, "authority_document.number", ""),
     "applicant.authority_document.number", "string_too_short"),
    ("applicant", put(REPRESENTATIVE, "authority_document.issued_by", ""),
     "applicant.authority_document.issued_by", "string_too_short"),
    ("applicant", put(REPRESENTATIVE, "authority_document.issued_on", "2027-01-01"),
     "applicant.authority_document.issued_on", "issued_before_application"),
    ("applicant", put(REPRESENTATIVE, "authority_document.valid_until", "2025-12-31"),
     "applicant.authority_document.valid_until", "authority_expired"),
    ("applicant", put(REPRESENTATIVE, "authority_document.valid_until", "2015-02-01"),
     "applicant.authority_document.valid_until", "valid_until_after_issue"),
    ("applicant", put(REPRESENTATIVE, "snils", "112-233-445 00"), "applicant.snils",
     "snils_check_number"),
    ("applicant", put(REPRESENTATIVE, "birth_date", "1960-13-01"), "applicant.birth_date",
     "date_from_datetime_parsing"),
    ("applicant", put(REPRESENTATIVE, "organisation", "ООО"), "applicant.organisation",
     "not_applicable"),
    # person (the form's п.2; 004 п.7)
    ("person.full_name.last_name", DELETE, "person.full_name.last_name", "missing"),
    ("person.full_name.first_name", "Анна2", "person.full_name.first_name", "name_letters"),
    ("person.full_name.patronymic", "x" * 101, "person.full_name.patronymic",
     "string_too_long"),
    ("person.birth_date", "17.05.1990", "person.birth_date", "date_from_datetime_parsing"),
    ("person.sex", "f", "person.sex", "enum"),
    ("person.snils", "112-233-445 96", "person.snils", "snils_check_number"),
    ("person.snils", "112-233-445", "person.snils", "snils_format"),
    ("person.identity_document.kind", "diploma", "person.identity_document.kind", "enum"),
    ("person.identity_document.series", "27 10", "person.identity_document.series",
     "passport_series"),
    ("person.identity_document.number", "12345", "person.identity_document.number",
     "document_number"),
    ("person.identity_document.issued_on", "1989-01-01", "person.identity_document.issued_on",
     "issued_after_birth"),
    ("person.identity_document.issued_by", "", "person.identity_document.issued_by",
     "string_too_short"),
    ("person.identity_document.issuer_code", "390001", "person.identity_document.issuer_code",
     "issuer_code"),
    ("person.registration_address.postal_code", "23600", "person.registration_address.postal_code",
     "postal_code"),
    ("person.registration_address.region_code", "96",
     "person.registration_address.region_code", "region_code"),
    ("person.registration_address.region_code", "00",
     "person.registration_address.region_code", "region_code"),
    ("person.registration_address.region", "", "person.registration_address.region",
     "string_too_short"),
    ("person.registration_address.locality", DELETE, "person.registration_address.locality",
     "missing"),
    ("person.registration_address.house", "", "person.registration_address.house",
     "string_too_short"),
    ("person.actual_address", {"postal_code": "236000", "region": "Калининградская область",
                               "locality": "Светлогорск", "house": "5"},
     "person.actual_address.region_code", "missing"),
    ("person.phones.0.number", "12-34", "person.phones[0].number", "phone_format"),
    ("person.phones.0.kind", "work", "person.phones[0].kind", "enum"),
    ("person.email", "anna@", "person.email", "email_format"),
    ("person.preferred_channel", "pigeon", "person.preferred_channel", "enum"),
    ("person.preferred_channel", DELETE, "person.preferred_channel", "missing"),
    # disability (the form's п.2)
    ("disability", DELETE, "disability", "disability_required"),
    ("disability.group", "IV", "disability.group", "enum"),
    ("disability.cause", "", "disability.cause", "string_too_short"),
    ("disability.established_on", "2020-02-30", "disability.established_on",
     "date_from_datetime_parsing"),
    ("disability.established_on", "2026-02-01", "disability.established_on",
     "established_in_range"),
    ("disability.established_on", "2005-01-01", "disability.group", "group_from_18"),
    ("disability", {"group": "child", "cause": "инвалидность с детства",
                    "established_on": "2020-03-01", "until": "2027-01-01"},
     "disability.group", "child_category_under_18"),
    ("disability.until", "2027-03-01", "disability.indefinite", "term_either"),
    ("disability.indefinite", False, "disability.until", "term_required"),
    # consent box (152-ФЗ art. 9)
    ("consent_confirmed", False, "consent_confirmed", "consent_required"),
    ("consent_confirmed", DELETE, "consent_confirmed", "missing"),
    ("nickname", "Аня", "nickname", "extra_forbidden"),
]


def test_the_valid_application_is_accepted_and_normalised() -> None:
    checked = validate_application(application())
    assert checked.ok and checked.value is not None
    app = checked.value
    assert app.person.phones[0].number == "+79111234567"
    assert app.application_date.isoformat() == "2026-01-12"
    assert app.request.kind == RequestKind.accompaniment


@pytest.mark.parametrize(("path", "value", "field", "rule"), CASES,
                         ids=[f"{c[2]}:{c[3]}" for c in CASES])
def test_each_field_is_rejected_with_its_own_message(path: str, value: Any, field: str,
                                                     rule: str) -> None:
    checked = validate_application(put(application(), path, value))
    assert checked.value is None and not checked.ok
    assert [(e.field, e.rule) for e in checked.errors] == [(field, rule)]
    assert CYRILLIC.search(checked.errors[0].message_ru)


def test_every_error_at_once() -> None:
    """Independent defects in every section come back together, each at its own field."""
    changes: list[tuple[str, Any, str, str]] = [
        ("submission.registered_by", DELETE, "submission.registered_by", "required_for_kind"),
        ("request.addressee", "", "request.addressee", "string_too_short"),
        ("applicant.email", "a@example.ru", "applicant.email", "not_applicable"),
        ("person.full_name.first_name", "Анна2", "person.full_name.first_name", "name_letters"),
        ("person.sex", "f", "person.sex", "enum"),
        ("person.snils", "112-233-445 96", "person.snils", "snils_check_number"),
        ("person.identity_document.number", "12345", "person.identity_document.number",
         "document_number"),
        ("person.registration_address.region_code", "96",
         "person.registration_address.region_code", "region_code"),
        ("person.phones.0.number", "12-34", "person.phones[0].number", "phone_format"),
        ("person.email", "anna@", "person.email", "email_format"),
        ("disability.cause", "", "disability.cause", "string_too_short"),
        ("disability.until", "2027-03-01", "disability.indefinite", "term_either"),
        ("consent_confirmed", False, "consent_confirmed", "consent_required"),
        ("nickname", "Аня", "nickname", "extra_forbidden"),
    ]
    doc = reduce(lambda d, c: put(d, c[0], c[1]), changes, application())
    checked = validate_application(doc)
    assert checked.value is None
    assert sorted((e.field, e.rule) for e in checked.errors) == sorted(
        (c[2], c[3]) for c in changes)
    assert len({e.message_ru for e in checked.errors}) >= len(changes) - 1


def test_a_portal_application_is_signed_electronically() -> None:
    portal = {"channel": "portal", "signature": "enhanced_unqualified",
              "registered_at": "2026-01-12T10:00:00+02:00", "portal_request_id": "3912345678",
              "certificate_serial": "01AB"}
    assert validate_application(application(submission=portal)).ok
    unsigned = put(portal, "signature", "handwritten")
    errors = validate_application(application(submission=unsigned)).errors
    assert [(e.field, e.rule) for e in errors] == [("submission.signature", "portal_signature")]
    no_number = put(portal, "portal_request_id", DELETE)
    errors = validate_application(application(submission=no_number)).errors
    assert [(e.field, e.rule) for e in errors] == [("submission.portal_request_id",
                                                    "required_for_kind")]
    simple = put(portal, "signature", "simple_electronic")
    errors = validate_application(application(submission=simple)).errors
    assert [(e.field, e.rule) for e in errors] == [("submission.certificate_serial",
                                                    "not_applicable")]


def test_social_employment_on_the_persons_behalf() -> None:
    """001 Регламент п.14: preferences; another citizen, a body or an association may appeal."""
    request = {"kind": "social_employment", "addressee": "ГАУ КО «Центр занятости»",
               "preferences": "работа с деревом, рядом с домом", "activity_kinds": ["столярная"],
               "provider": {"name": "АНО «Мастерская»", "registry_number": "39-0001"}}
    body = {"kind": "public_association", "organisation": "Общество инвалидов",
            "email": "info@example.ru"}
    assert validate_application(application(request=request, applicant=body)).ok
    silent = put(body, "email", DELETE)
    errors = validate_application(application(request=request, applicant=silent)).errors
    assert [(e.field, e.rule) for e in errors] == [("applicant.phones", "contact_required")]
    no_name = put(body, "organisation", DELETE)
    errors = validate_application(application(request=request, applicant=no_name)).errors
    assert [(e.field, e.rule) for e in errors] == [("applicant.organisation",
                                                    "required_for_kind")]
    no_preferences = put(request, "preferences", DELETE)
    errors = validate_application(application(request=no_preferences)).errors
    assert [(e.field, e.rule) for e in errors] == [("request.preferences", "required_for_kind")]


def child_application(birth: str, **changes: Any) -> dict[str, Any]:
    doc = application(applicant=REPRESENTATIVE)
    doc = put(doc, "person.birth_date", birth)
    doc = put(doc, "person.identity_document", {
        "kind": "birth_certificate", "series": "II-РЕ", "number": "123456",
        "issued_on": birth, "issued_by": "ЗАГС г. Калининграда"})
    doc = put(doc, "disability", {"group": "child", "cause": "инвалидность с детства",
                                  "established_on": birth, "until": "2030-01-01"})
    for path, value in changes.items():
        doc = put(doc, path.replace("__", "."), value)
    return doc


def test_born_after_the_application() -> None:
    doc = put(application(), "person.birth_date", "2026-01-13")
    doc = put(doc, "person.identity_document.issued_on", "2026-01-13")
    errors = validate_application(doc).errors
    # the disability's dates are checked against a valid person only
    assert [(e.field, e.rule) for e in errors] == [("person.birth_date",
                                                    "born_before_application")]


def test_children_and_their_representatives() -> None:
    assert validate_application(child_application("2020-01-01")).ok
    own = child_application("2012-01-13", applicant={"kind": "person"})
    errors = validate_application(own).errors
    assert [(e.field, e.rule) for e in errors] == [("applicant.kind", "self_application_age")]
    fourteen = child_application("2012-01-12", applicant={"kind": "person"})
    assert validate_application(fourteen).ok  # 14 on the application date
    late = child_application("2020-01-01", disability__until="2038-01-02")
    errors = validate_application(late).errors
    assert [(e.field, e.rule) for e in errors] == [("disability.until", "child_until_18")]
    forever = child_application("2020-01-01", disability__until=DELETE,
                                disability__indefinite=True)
    errors = validate_application(forever).errors
    assert [(e.field, e.rule) for e in errors] == [("disability.indefinite",
                                                    "child_not_indefinite")]
    bad_series = child_application("2020-01-01", person__identity_document__series="2-РЕ")
    errors = validate_application(bad_series).errors
    assert [(e.field, e.rule) for e in errors] == [("person.identity_document.series",
                                                    "birth_certificate_series")]


def test_early_help_needs_grounds_not_a_disability() -> None:
    request = {"kind": "early_help", "addressee": "Служба ранней помощи",
               "early_help_grounds": ["risk_of_limitation"]}
    doc = child_application("2024-06-01", request=request, disability=DELETE)
    assert validate_application(doc).ok
    errors = validate_application(put(doc, "request.early_help_grounds", [])).errors
    assert [(e.field, e.rule) for e in errors] == [("request.early_help_grounds",
                                                    "required_for_kind")]


def test_channel_needs_its_contact() -> None:
    doc = put(application(), "person.email", DELETE)
    errors = validate_application(put(doc, "person.preferred_channel", "email")).errors
    assert [(e.field, e.rule) for e in errors] == [("person.preferred_channel",
                                                    "channel_needs_email")]
    doc = put(application(), "person.phones", [])
    errors = validate_application(put(doc, "person.preferred_channel", "phone")).errors
    assert [(e.field, e.rule) for e in errors] == [("person.preferred_channel",
                                                    "channel_needs_phone")]
    doc = put(application(), "person.phones", [{"kind": "home", "number": "84012000000"}])
    errors = validate_application(doc).errors
    assert [(e.field, e.rule) for e in errors] == [("person.preferred_channel",
                                                    "channel_needs_mobile")]
    assert validate_application(put(doc, "person.preferred_channel", "post")).ok


@given(st.from_regex(r"\A(\+7|8)? ?\(?9[0-9]{2}\)? ?[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{2}\Z"))
def test_phones_normalise_to_plus_seven(raw: str) -> None:
    doc = put(application(), "person.phones.0.number", raw)
    checked = validate_application(doc)
    assert checked.value is not None, checked.errors
    number = checked.value.person.phones[0].number
    assert re.fullmatch(r"\+7[0-9]{10}", number)
    assert number[2:] == re.sub(r"[^0-9]", "", raw)[-10:]
    assert re.fullmatch(PHONE_INPUT_PATTERN, raw)  # the published schema says the same


def test_digits_of_other_scripts_are_not_a_phone_number() -> None:
    """The published pattern says [0-9]; so does the server (a number one can dial)."""
    doc = put(application(), "person.phones.0.number", "+7 ٩٠١ ٢٣٤-٥٦-٧٨")
    assert [(e.field, e.rule) for e in validate_application(doc).errors] == [
        ("person.phones[0].number", "phone_format")]


def test_not_json_shaped_input_is_one_error() -> None:
    errors = validate_application(["not", "a", "form"]).errors
    assert [(e.field, e.rule) for e in errors] == [("$", "model_type")]


def test_disability_term() -> None:
    app = validate_application(application()).value
    assert app is not None and app.disability is not None
    assert app.disability.in_force_on(date(2020, 3, 1))
    assert not app.disability.in_force_on(date(2020, 2, 29))
    dated = validate_application(put(put(application(), "disability.indefinite", False),
                                     "disability.until", "2027-03-01")).value
    assert dated is not None and dated.disability is not None
    assert dated.disability.in_force_on(date(2027, 2, 28))
    assert not dated.disability.in_force_on(date(2027, 3, 1))
