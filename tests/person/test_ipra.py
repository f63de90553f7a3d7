"""The ИПРА extract: each kind of defect named, nothing accepted from a bad file; supersedes."""

from __future__ import annotations

import json
from datetime import date
from functools import reduce
from pathlib import Path
from typing import Any

import pytest

from models.ipra import (
    Ipra,
    IpraOrderError,
    LimitationCategory,
    latest_ipra,
    parse_ipra_extract,
    supersedes,
)
from tests.person.forms import DELETE, put

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ipra-extract.json"


def extract() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def child_extract() -> dict[str, Any]:
    doc = put(extract(), "ipra.kind", "child")
    doc = put(doc, "ipra.subject.birth_date", "2015-03-10")
    doc = put(doc, "ipra.term", "until_18")
    return put(doc, "ipra.valid_until", DELETE)


def errors_of(doc: object) -> list[tuple[str, str]]:
    text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
    checked = parse_ipra_extract(text)
    assert checked.value is None and not checked.ok
    assert all(e.message_ru for e in checked.errors)
    return [(e.field, e.rule) for e in checked.errors]


def test_the_documented_example_is_valid() -> None:
    checked = parse_ipra_extract(EXAMPLE.read_bytes())
    assert checked.value is not None, checked.errors
    ipra = checked.value.ipra
    assert ipra.degree(LimitationCategory.work) == 3
    assert ipra.degree(LimitationCategory.learning) == 0
    assert ipra.last_day == date(2027, 12, 1)
    assert ipra.in_force_on(date(2025, 11, 20)) and ipra.in_force_on(date(2027, 12, 1))
    assert not ipra.in_force_on(date(2025, 11, 19)) and not ipra.in_force_on(date(2027, 12, 2))


# (what to change, the value, the field reported, the rule)
DEFECTS: list[tuple[str, Any, str, str]] = [
    ("format", "fri-ipra-extract/2", "format", "literal_error"),
    ("extract.source", "ЕГИССО", "extract.source", "literal_error"),
    ("extract.generated_at", "2025-12-01T09:30:00", "extract.generated_at", "timezone_aware"),
    ("extract.extract_id", "", "extract.extract_id", "string_too_short"),
    ("ipra", DELETE, "ipra", "missing"),
    ("ipra.number", "1234/2025", "ipra.number", "ipra_number"),
    ("ipra.issued_on", "20.11.2025", "ipra.issued_on", "date_from_datetime_parsing"),
    ("ipra.bureau.region_code", "00", "ipra.bureau.region_code", "region_code"),
    ("ipra.bureau.name", DELETE, "ipra.bureau.name", "missing"),
    ("ipra.kind", "elder", "ipra.kind", "enum"),
    ("ipra.kind", "child", "ipra.kind", "kind_fits_age"),
    ("ipra.subject.snils", "112-233-445 96", "ipra.subject.snils", "snils_check_number"),
    ("ipra.subject.full_name.last_name", "", "ipra.subject.full_name.last_name",
     "string_too_short"),
    ("ipra.subject.birth_date", "2026-01-01", "ipra.subject.birth_date", "born_before_issue"),
    ("ipra.subject.sex", "x", "ipra.subject.sex", "enum"),
    ("ipra.valid_from", "2025-11-19", "ipra.valid_from", "valid_from_after_issue"),
    ("ipra.term", "forever", "ipra.term", "enum"),
    ("ipra.valid_until", DELETE, "ipra.valid_until", "required_for_kind"),
    ("ipra.valid_until", "2025-11-01", "ipra.valid_until", "until_after_from"),
    ("ipra.term", "indefinite", "ipra.valid_until", "not_applicable"),
    ("ipra.term", "until_18", "ipra.valid_until", "not_applicable"),
    ("ipra.limitations.0.degree", 0, "ipra.limitations[0].degree", "greater_than_equal"),
    ("ipra.limitations.0.degree", 4, "ipra.limitations[0].degree", "less_than_equal"),
    ("ipra.limitations.0.degree", "две", "ipra.limitations[0].degree", "int_parsing"),
    ("ipra.limitations.1.category", "walking", "ipra.limitations[1].category", "enum"),
    ("ipra.limitations.2.category", "self_care", "ipra.limitations[2].category",
     "category_once"),
    ("ipra.measures.0.direction", "spiritual", "ipra.measures[0].direction", "enum"),
    ("ipra.measures.0.title", " ", "ipra.measures[0].title", "string_too_short"),
    ("ipra.measures.0.executor", {}, "ipra.measures[0].executor.role", "executor_one_of"),
    ("ipra.measures.0.executor", {"role": "health", "agency": "Поликлиника"},
     "ipra.measures[0].executor.role", "executor_one_of"),
    ("ipra.measures.0.executor.role", "church", "ipra.measures[0].executor.role", "enum"),
    ("ipra.measures.0.due", "2025-11-01", "ipra.measures[0].due", "due_within_term"),
    ("ipra.measures.0.due", "2028-01-01", "ipra.measures[0].due", "due_within_term"),
    ("ipra.measures.0.funding", "federal", "ipra.measures[0].funding", "not_applicable"),
    ("ipra.measures.5.funding", DELETE, "ipra.measures[5].funding", "funding_required"),
    ("ipra.work_recommendation", "anything", "ipra.work_recommendation", "enum"),
    ("ipra.photo", "base64", "ipra.photo", "extra_forbidden"),
]


@pytest.mark.parametrize(("path", "value", "field", "rule"), DEFECTS,
                         ids=[f"{d[2]}:{d[3]}" for d in DEFECTS])
def test_each_defect_is_named(path: str, value: Any, field: str, rule: str) -> None:
    assert errors_of(put(extract(), path, value)) == [(field, rule)]


def test_child_terms() -> None:
    ok = parse_ipra_extract(json.dumps(child_extract()))
    assert ok.value is not None, ok.errors
    assert ok.value.ipra.last_day == date(2033, 3, 9)  # the eve of the 18th birthday
    assert errors_of(put(child_extract(), "ipra.term", "indefinite")) == [
        ("ipra.term", "child_not_indefinite")]
    dated = put(child_extract(), "ipra.term", "until_date")
    assert errors_of(put(dated, "ipra.valid_until", "2033-03-10")) == [
        ("ipra.valid_until", "child_until_18")]
    assert parse_ipra_extract(json.dumps(put(dated, "ipra.valid_until", "2033-03-09"))).ok
    adult_18 = put(extract(), "ipra.term", "until_18")
    assert errors_of(put(adult_18, "ipra.valid_until", DELETE)) == [
        ("ipra.term", "until_18_child_only")]
    assert errors_of(put(child_extract(), "ipra.kind", "adult")) == [
        ("ipra.kind", "kind_fits_age"), ("ipra.term", "until_18_child_only")]


def test_not_json_and_not_an_object() -> None:
    assert errors_of("{not json") == [("$", "json_invalid")]
    assert errors_of("[]") == [("$", "model_type")]
    assert errors_of("{}") == [("format", "missing"), ("extract", "missing"), ("ipra", "missing")]


def test_every_defect_of_a_file_at_once() -> None:
    defects = [d for d in DEFECTS if d[0] in {
        "extract.source", "ipra.number", "ipra.subject.snils", "ipra.limitations.0.degree",
        "ipra.measures.0.executor.role", "ipra.photo"}]
    defects.append(("ipra.measures.1.due", "2028-01-01", "ipra.measures[1].due",
                    "due_within_term"))
    by_path = {d[0]: d for d in defects}
    doc = reduce(lambda acc, d: put(acc, d[0], d[1]), by_path.values(), extract())
    assert sorted(errors_of(doc)) == sorted((d[2], d[3]) for d in by_path.values())


def ipra(number: str, issued: str, snils: str = "112-233-445 95") -> Ipra:
    doc = put(put(extract(), "ipra.number", number), "ipra.issued_on", issued)
    doc = put(put(doc, "ipra.valid_from", issued), "ipra.subject.snils", snils)
    checked = parse_ipra_extract(json.dumps(doc))
    assert checked.value is not None, checked.errors
    return checked.value.ipra


def test_a_newer_ipra_supersedes_the_older() -> None:
    old, new = ipra("100.5.39/2024", "2024-11-20"), ipra("1234.5.39/2025", "2025-11-20")
    assert supersedes(new, old) and not supersedes(old, new)
    assert not supersedes(new, new)
    other = ipra("999.5.39/2025", "2025-12-01", snils="068-619-801 04")
    assert not supersedes(other, old)
    assert latest_ipra([new, old]) is new and latest_ipra([old, new]) is new
    assert latest_ipra([]) is None
    with pytest.raises(IpraOrderError):
        latest_ipra([old, other])
    with pytest.raises(IpraOrderError):
        latest_ipra([new, ipra("1235.5.39/2025", "2025-11-20")])
    assert latest_ipra([new, new]) is new
