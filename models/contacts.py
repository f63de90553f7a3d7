"""Where and how to reach a person: addresses (with the region code), phones, e-mail, channel.

The channel of contact follows 363н п.7 (004): in person, by phone (text messages in
messengers included), by registered post, by e-mail, through the Единый портал.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from models.input_validation import (
    NON_BLANK_PATTERN,
    SPACE_CLASS,
    InputModel,
    Text,
    rule_error,
    schema_pattern,
)

REGION_CODES = frozenset(f"{n:02d}" for n in [*range(1, 96), 99])
"""Codes of the subjects of the Russian Federation as in ФИАС / ГАР: 01–95, 99 (Байконур)."""

REGION_CODE_PATTERN = r"^(?:0[1-9]|[1-8][0-9]|9[0-5]|99)$"
"""``REGION_CODES`` as the schema publishes them."""

POSTAL_CODE_PATTERN = r"^[0-9]{6}$"

_SEP = f"[{SPACE_CLASS}()+\\-]*"
PHONE_INPUT_PATTERN = f"^{_SEP}(?:[78]{_SEP})?(?:[0-9]{_SEP}){{10}}$"
"""What ``PhoneNumber`` accepts: 10 digits, or 11 beginning with 7 or 8, with spaces,
brackets, plus signs and hyphens anywhere (they are dropped)."""


def _region_code(value: str) -> str:
    if value not in REGION_CODES:
        raise rule_error("region_code", "Код субъекта РФ — две цифры от 01 до 95 или 99 "
                                        "(например, 39 — Калининградская область)")
    return value


def _postal_code(value: str) -> str:
    if not re.fullmatch(POSTAL_CODE_PATTERN[1:-1], value):
        raise rule_error("postal_code", "Почтовый индекс — 6 цифр")
    return value


RegionCode = Annotated[str, AfterValidator(_region_code), schema_pattern(REGION_CODE_PATTERN)]
PostalCode = Annotated[str, AfterValidator(_postal_code), schema_pattern(POSTAL_CODE_PATTERN)]


class Address(InputModel):
    """An address as the form asks it: index, subject (with its code), district, locality,
    street, house, building, flat."""

    postal_code: PostalCode
    region_code: RegionCode
    region: Text
    district: str | None = Field(default=None, max_length=200)
    locality: Text
    street: str | None = Field(default=None, max_length=200)
    house: str = Field(min_length=1, max_length=20,
                       json_schema_extra={"pattern": NON_BLANK_PATTERN})
    building: str | None = Field(default=None, max_length=20)
    apartment: str | None = Field(default=None, max_length=20)


def _normalize_phone(value: object) -> object:
    if not isinstance(value, str):
        return value
    digits = re.sub(r"[\s()+-]", "", value)
    if re.fullmatch(r"[78][0-9]{10}", digits):
        return "+7" + digits[1:]
    if re.fullmatch(r"[0-9]{10}", digits):
        return "+7" + digits
    return value


def _phone(value: str) -> str:
    if not re.fullmatch(r"\+7[0-9]{10}", value):
        raise rule_error("phone_format",
                         "Номер телефона — 10 цифр после +7, например +7 401 234-56-78")
    return value


PhoneNumber = Annotated[str, BeforeValidator(_normalize_phone), AfterValidator(_phone),
                       schema_pattern(PHONE_INPUT_PATTERN)]
"""A Russian phone number normalised to ``+7XXXXXXXXXX``."""


class PhoneKind(StrEnum):
    """The form's "домашний" and "мобильный"."""

    home = "home"
    mobile = "mobile"


class Phone(InputModel):
    kind: PhoneKind
    number: PhoneNumber


EMAIL_PATTERN = (f"^[^@{SPACE_CLASS}]{{1,64}}@[^@{SPACE_CLASS}]+\\.[^@{SPACE_CLASS}.]{{2,}}$")
"""An e-mail address: the same rule for the server and in the schema (white space spelled
out: ``models.input_validation.SPACE_CLASS``)."""
_EMAIL_RE = re.compile(EMAIL_PATTERN)


def _email(value: str) -> str:
    if not _EMAIL_RE.fullmatch(value):
        raise rule_error("email_format", "Адрес электронной почты — в форме name@example.ru")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


Email = Annotated[str, Field(max_length=254), AfterValidator(_email),
                  schema_pattern(EMAIL_PATTERN)]


class ContactChannel(StrEnum):
    """How the person wants to be reached (363н п.7: the person chooses the way)."""

    in_person = "in_person"  # лично, устно или письменно
    phone = "phone"  # телефонная связь
    messenger = "messenger"  # текстовое сообщение в мессенджерах (SMS)
    post = "post"  # заказное почтовое отправление
    email = "email"  # электронная почта
    portal = "portal"  # Единый портал госуслуг
