"""Registering an application of the 363н form with consent (issue 10): valid; every kind of
invalid input refused with every field and nothing stored; consent missing, expired,
withdrawn; ineligible registered with its decision and the person told; one person per SNILS.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.notifications import Channel, Notification
from models.person_file import (
    ApplicationRecord,
    ConsentVersion,
    DisabilityRecord,
    PersonDetail,
)
from models.persons import Person
from models.routes import Route, Step
from tests.api.conftest import table_snapshot
from tests.ladder.conftest import Staff
from tests.person.forms import DELETE
from tests.person_file.conftest import (
    audits,
    consent,
    count,
    extract,
    form,
    person_by_snils,
)

URL = "/api/person-file/applications"


def post(api: TestClient, who: Staff, application: dict[str, Any],
         consent_doc: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"application": application}
    if consent_doc is not None:
        body["consent"] = consent_doc
    return api.post(URL, json=body, headers=who.headers)


def import_example(api: TestClient, who: Staff, doc: dict[str, Any] | None = None) -> Any:
    r = api.post("/api/ipra", json=doc or extract(), headers=who.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_a_valid_application_registers_the_person_and_forms_the_route(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    ipra = import_example(api, coord)
    r = post(api, coord, form(), consent())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["eligible"] is True and body["kind"] == "accompaniment"
    assert body["region"] == "39" and body["ipra_id"] == ipra["id"]
    assert body["consent"] == "cn_1/v1" and body["route_id"]
    # no personal data in the answer of a registration
    assert "112-233-445" not in r.text and "Синтетова" not in r.text
    with Session(db) as s:
        route = s.get(Route, body["route_id"])
        assert route is not None and route.template == "accompaniment"
        # the send deadline counts from the application's registration (001 Порядок п.10)
        assert route.registered_at.isoformat() == "2026-01-12T08:00:00+00:00"
        first = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
        assert first.send_by_date == date(2026, 1, 13)
        app = s.get(ApplicationRecord, body["id"])
        assert app is not None and app.route_id == route.id
        assert app.decision["eligible"] is True and app.decision["rules"]
        assert app.form["person"]["snils"] == "112-233-445 95"
        detail = s.get(PersonDetail, app.person_id)
        assert detail is not None and detail.preferred_channel == "messenger"
        assert detail.region_code == "39"
        assert s.exec(select(DisabilityRecord)).one().group == "II"
        assert [c.version for c in s.exec(select(ConsentVersion))] == [1]
    [ev] = audits(db, entity="application", action="registered")
    assert ev.after is not None and ev.after["route_id"] == body["route_id"]
    assert "112-233-445" not in str(ev.after)


INVALID: list[tuple[str, dict[str, Any], set[tuple[str, str]]]] = [
    ("bad snils", form(person__snils="112-233-445 96"),
     {("person.snils", "snils_check_number")}),
    ("missing name", form(person__full_name=DELETE), {("person.full_name", "missing")}),
    ("no consent box", form(consent_confirmed=False), {("consent_confirmed", "consent_required")}),
    ("phone and paper signature",
     form(person__phones__0__number="12", submission__signature="simple_electronic"),
     {("person.phones[0].number", "phone_format"), ("submission.signature", "paper_signature")}),
    ("in the future", form(submission__registered_at="2026-01-12T13:00:00+02:00"),
     {("submission.registered_at", "not_in_future")}),
    ("region without a calendar",
     form(person__registration_address__region_code="50"),
     {("person.registration_address.region_code", "region_not_served")}),
]


@pytest.mark.parametrize(("case", "doc", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_an_invalid_application_is_refused_with_every_field_and_nothing_stored(
        api: TestClient, db: Engine, staff: dict[str, Staff], case: str, doc: dict[str, Any],
        expected: set[tuple[str, str]]) -> None:
    before = table_snapshot(db)
    r = post(api, staff["coord39"], doc, consent())
    assert r.status_code == 422, r.text
    body = r.json()
    assert {(e["field"], e["rule"]) for e in body["errors"]} == expected
    assert all(e["message"] and any("а" <= ch <= "я" for ch in e["message"].lower())
               for e in body["errors"])
    assert "112-233-445" not in r.text and "Синтетова" not in r.text
    assert table_snapshot(db) == before


def test_a_bad_consent_record_is_reported_with_the_form_at_once(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    before = table_snapshot(db)
    r = post(api, staff["coord39"], form(person__snils="112-233-445 96"),
             consent(operator__inn="12"))
    assert r.status_code == 422
    assert {(e["field"], e["rule"]) for e in r.json()["errors"]} == {
        ("person.snils", "snils_check_number"), ("consent.operator.inn", "inn_format")}
    assert table_snapshot(db) == before


def test_a_body_that_is_not_a_form_is_refused(api: TestClient, db: Engine,
                                              staff: dict[str, Staff]) -> None:
    before = table_snapshot(db)
    r = api.post(URL, json={"application": {"x": 1}}, headers=staff["coord39"].headers)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"submission", "request", "applicant", "person", "x"} <= fields
    assert table_snapshot(db) == before


@pytest.mark.parametrize(("case", "consent_doc", "rule"), [
    ("missing", None, "missing"),
    ("expired", consent(given_at="2025-01-10T10:00:00+02:00",
                        expires_at="2026-01-10T10:00:00+02:00"), "expired"),
    ("other purpose", consent(purposes=("early_help",)), "purpose_not_covered"),
    ("given after registration", consent(given_at="2026-01-12T11:00:00+02:00"), "missing"),
])
def test_without_a_valid_consent_nothing_is_registered(
        api: TestClient, db: Engine, staff: dict[str, Staff], case: str,
        consent_doc: dict[str, Any] | None, rule: str) -> None:
    before = table_snapshot(db)
    r = post(api, staff["coord39"], form(), consent_doc)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"] == f"consent: {rule}"
    [err] = body["errors"]
    assert err["field"] == "consent" and err["rule"] == rule and "огласи" in err["message"]
    assert table_snapshot(db) == before


def test_after_a_withdrawal_a_new_application_is_refused(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    import_example(api, coord)
    first = post(api, coord, form(), consent())
    assert first.status_code == 201
    person_id = first.json()["person_id"]
    w = api.post(f"/api/persons/{person_id}/consent/withdraw", headers=coord.headers)
    assert w.status_code == 200, w.text
    apps = count(db, ApplicationRecord)
    r = post(api, coord, form(submission__registered_at="2026-01-12T11:30:00+02:00"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["rule"] == "withdrawn"
    assert count(db, ApplicationRecord) == apps


def test_an_ineligible_application_is_registered_with_its_decision_and_the_person_told(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    # no ИПРА on file: accompaniment needs one in force with degree 2-3 (004 п.1)
    r = post(api, staff["coord39"], form(), consent())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["eligible"] is False and body["route_id"] is None
    assert body["explanation_ru"]
    assert count(db, Route) == 0
    with Session(db) as s:
        app = s.get(ApplicationRecord, body["id"])
        assert app is not None and app.decision["eligible"] is False
        failed = [x for x in app.decision["rules"] if not x["passed"]]
        assert failed and all(x["clause"] for x in failed)
        [note] = s.exec(select(Notification)).all()
    # the person chose messengers (004 п.7): their mobile, the decision's explanation
    assert note.channel is Channel.messenger and note.recipient == "+79111234567"
    assert note.body == app.decision["explanation_ru"]
    d = api.get(f"{URL}/{body['id']}/eligibility", headers=staff["sup39"].headers)
    assert d.status_code == 200 and d.json()["eligible"] is False
    assert d.json()["rules"] == app.decision["rules"]


def test_post_or_in_person_goes_to_the_regions_coordinators(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    r = post(api, staff["coord39"], form(person__preferred_channel="post"), consent())
    assert r.status_code == 201 and r.json()["eligible"] is False
    with Session(db) as s:
        notes = s.exec(select(Notification)).all()
    assert [n.recipient for n in notes] == ["coord39@example.org"]
    assert "почтой" in notes[0].subject


def test_the_same_snils_twice_is_one_person_with_two_applications(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    persons = count(db, Person)
    import_example(api, coord)
    a = post(api, coord, form(), consent())
    b = post(api, coord, form("supported_living", person__snils="11223344595",
                              submission__registered_at="2026-01-12T11:00:00+02:00"))
    assert a.status_code == b.status_code == 201, b.text
    assert a.json()["person_id"] == b.json()["person_id"]
    assert count(db, Person) == persons + 1  # the seeded ones and this one
    assert count(db, ApplicationRecord) == 2 and count(db, Route) == 2
    assert count(db, ConsentVersion) == 1  # the consent on file served the second one
    person = person_by_snils(db)
    assert person is not None
    r = api.get(f"/api/persons/{person.id}", headers=coord.headers)
    assert r.status_code == 200
    assert r.json()["application_ids"] == [a.json()["id"], b.json()["id"]]
    assert len(r.json()["route_ids"]) == 2


def test_another_birth_date_under_the_same_snils_is_a_conflict(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    assert post(api, coord, form(), consent()).status_code == 201
    before = table_snapshot(db)
    r = post(api, coord, form(person__birth_date="1990-05-18"))
    assert r.status_code == 409
    assert "1990" not in r.text
    assert table_snapshot(db) == before


def test_another_regions_coordinator_cannot_register_it(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    before = table_snapshot(db)
    r = post(api, staff["coord16"], form(), consent())
    assert r.status_code == 403
    assert table_snapshot(db) == before


def test_the_simple_endpoint_still_works(api: TestClient, staff: dict[str, Staff]) -> None:
    r = api.post("/api/applications", headers=staff["coord39"].headers,
                 json={"full_name": "Синтетиков Иван", "snils": "112-233-445 95",
                       "birth_date": "1990-05-01", "template": "supported_living"})
    assert r.status_code == 201, r.text
