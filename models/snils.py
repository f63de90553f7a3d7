"""SNILS (страховой номер индивидуального лицевого счёта): format, check number, normalisation.

The rule (guide/domain.md, the Social Fund's algorithm): ``XXX-XXX-XXX YY``, 11 digits, ``YY``
the check number. The first nine digits are weighted 9, 8, …, 1 and summed; the check number
is the sum when it is below 100, ``00`` for 100 and 101, and ``sum mod 101`` above 101 with a
remainder of 100 written ``00`` — in one formula ``(sum % 101) % 100``. The check applies
only to numbers greater than 001-001-998; numbers at and below it carry any check number.

``Snils`` is the pydantic type input models use: it normalises the value and refuses a bad
one with a rule code and a Russian message (see ``models.input_validation``).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from models.input_validation import SPACE_CLASS, schema_pattern

SNILS_RE = re.compile(r"^(\d{3})-(\d{3})-(\d{3}) (\d{2})$")

LAST_UNCHECKED = 1_001_998
"""001-001-998: the check number is verified only for numbers greater than this one."""

_SEPARATORS = re.compile(r"[\s-]")

SNILS_FORM_PATTERN = f"^[{SPACE_CLASS}\\-]*(?:[0-9][{SPACE_CLASS}\\-]*){{11}}$"
"""What ``Snils`` accepts as to its form (published in the schema): 11 digits, white space
and hyphens anywhere. The check number is a rule JSON Schema cannot express."""


class SnilsError(ValueError):
    """A SNILS that breaks its format or check number; ``rule`` names the rule broken."""

    def __init__(self, rule: str, message: str, message_ru: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message_ru = message_ru


def snils_weighted_sum(first_nine: str) -> int:
    """The sum of the first nine digits weighted 9..1 (the digit times its place from the right)."""
    return sum(int(d) * (9 - i) for i, d in enumerate(first_nine))


def snils_check_number(first_nine: str) -> int:
    """SNILS check number: digits weighted 9..1, ``(sum % 101) % 100`` (domain.md).

    Sum 99 → 99; 100 and 101 → 00; 201 → 201 mod 101 = 100 → 00; 206 → 04.
    """
    return (snils_weighted_sum(first_nine) % 101) % 100


def check_applies(first_nine: str) -> bool:
    """Whether the check number is verified: only for numbers greater than 001-001-998."""
    return int(first_nine) > LAST_UNCHECKED


def format_snils(first_nine: str) -> str:
    """A nine-digit body with its computed check number, as ``XXX-XXX-XXX YY``."""
    check = snils_check_number(first_nine)
    return f"{first_nine[0:3]}-{first_nine[3:6]}-{first_nine[6:9]} {check:02d}"


def normalize_snils(value: str) -> str:
    """Return SNILS as ``XXX-XXX-XXX YY`` or raise SnilsError naming the rule broken.

    Spaces and hyphens anywhere are dropped first, so ``11223344595``, ``112-233-445 95`` and
    ``112 233 445-95`` are the same number.
    """
    digits = _SEPARATORS.sub("", value)
    if not re.fullmatch(r"[0-9]{11}", digits):
        raise SnilsError(
            "snils_format", "snils: must be 11 digits in the form XXX-XXX-XXX YY",
            "СНИЛС состоит из 11 цифр: XXX-XXX-XXX YY",
        )
    body, check = digits[:9], int(digits[9:])
    if check_applies(body) and snils_check_number(body) != check:
        raise SnilsError(
            "snils_check_number", "snils: check number does not match the first nine digits",
            "Контрольное число СНИЛС не совпадает с первыми девятью цифрами — "
            "проверьте номер по документу",
        )
    return f"{body[0:3]}-{body[3:6]}-{body[6:9]} {digits[9:]}"


def _require_str(value: object) -> object:
    if not isinstance(value, str):
        raise PydanticCustomError("snils_format", "СНИЛС указывается строкой: XXX-XXX-XXX YY")
    return value


def _normalize_for_pydantic(value: str) -> str:
    try:
        return normalize_snils(value)
    except SnilsError as exc:
        raise PydanticCustomError(exc.rule, exc.message_ru) from None


Snils = Annotated[str, BeforeValidator(_require_str), AfterValidator(_normalize_for_pydantic),
                  schema_pattern(SNILS_FORM_PATTERN)]
"""A SNILS field of an input model: normalised to ``XXX-XXX-XXX YY``, check number verified."""
