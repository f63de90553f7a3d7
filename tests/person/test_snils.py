"""SNILS at its edges: check sums 99, 100, 101, 201; numbers at and below 001-001-998."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from models.persons import normalize_snils as normalize_via_persons
from models.snils import (
    Snils,
    SnilsError,
    check_applies,
    format_snils,
    normalize_snils,
    snils_check_number,
    snils_weighted_sum,
)


def body_with_sum(target: int) -> str:
    """A nine-digit body above 001-001-998 whose weighted sum is ``target``."""
    digits = [0] * 9
    digits[0] = 1  # weight 9: keeps the number above 001-001-998
    rest = target - 9
    for i in range(1, 9):  # weights 8..1, greedy
        weight = 9 - i
        digits[i] = min(9, rest // weight)
        rest -= digits[i] * weight
    assert rest == 0, target
    body = "".join(map(str, digits))
    assert snils_weighted_sum(body) == target and check_applies(body)
    return body


@pytest.mark.parametrize(("total", "check"), [(99, 99), (100, 0), (101, 0), (102, 1),
                                              (201, 0), (202, 0), (206, 4)])
def test_check_number_at_the_edges(total: int, check: int) -> None:
    body = body_with_sum(total)
    assert snils_check_number(body) == check
    snils = f"{body[0:3]}-{body[3:6]}-{body[6:9]} {check:02d}"
    assert normalize_snils(snils) == snils
    wrong = (check + 1) % 100
    with pytest.raises(SnilsError) as err:
        normalize_snils(f"{body} {wrong:02d}")
    assert err.value.rule == "snils_check_number"


def test_domain_examples() -> None:
    assert normalize_snils("112-233-445 95") == "112-233-445 95"
    assert normalize_snils("068-619-801 04") == "068-619-801 04"
    assert snils_weighted_sum("068619801") == 206


@pytest.mark.parametrize("body", ["001001998", "001001997", "000000001", "000000000"])
def test_no_check_at_and_below_001_001_998(body: str) -> None:
    assert not check_applies(body)
    for check in ("00", "42", "99"):
        assert normalize_snils(body + check) == f"{body[0:3]}-{body[3:6]}-{body[6:9]} {check}"


def test_check_applies_from_001_001_999() -> None:
    assert check_applies("001001999")
    good = format_snils("001001999")
    assert normalize_snils(good) == good
    bad_check = (int(good[-2:]) + 1) % 100
    with pytest.raises(SnilsError):
        normalize_snils(f"001001999{bad_check:02d}")


@pytest.mark.parametrize("raw", ["11223344595", "112 233 445 95", "112-233-445-95",
                                 " 112-233-445 95 "])
def test_normalisation(raw: str) -> None:
    assert normalize_snils(raw) == "112-233-445 95"


@pytest.mark.parametrize("raw", ["", "1122334459", "112233445951", "112-233-445 9a",
                                 "112.233.445 95"])
def test_format_refused(raw: str) -> None:
    with pytest.raises(SnilsError) as err:
        normalize_snils(raw)
    assert err.value.rule == "snils_format"
    assert "11 цифр" in err.value.message_ru


def test_persons_keeps_its_names() -> None:
    assert normalize_via_persons is normalize_snils


class _Form(BaseModel):
    snils: Snils


def test_pydantic_type_reports_rule_and_russian_message() -> None:
    assert _Form(snils="11223344595").snils == "112-233-445 95"
    with pytest.raises(ValidationError) as err:
        _Form(snils="112-233-445 96")
    (error,) = err.value.errors()
    assert error["type"] == "snils_check_number"
    assert "Контрольное число" in error["msg"]
    with pytest.raises(ValidationError) as err:
        _Form.model_validate({"snils": 11223344595})
    assert err.value.errors()[0]["type"] == "snils_format"


@given(st.integers(min_value=1_001_999, max_value=999_999_999))
def test_formatted_numbers_round_trip_and_one_digit_off_fails(n: int) -> None:
    body = f"{n:09d}"
    good = format_snils(body)
    assert normalize_snils(good) == good
    check = int(good[-2:])
    with pytest.raises(SnilsError):
        normalize_snils(f"{body}{(check + 1) % 100:02d}")
