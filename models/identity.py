"""Who a person is on paper: full name, identity document, document of authority.

Fields as the 363н application form asks them (004, the appendix: "фамилия, имя, отчество
(при наличии)", "документ, удостоверяющий личность: наименование, серия и номер, дата и место
выдачи, наименование органа", "документ, удостоверяющий полномочия законного или
уполномоченного представителя").
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from models.input_validation import NON_BLANK_PATTERN, InputModel, Text, rule_error, schema_pattern

NAME_PATTERN = r"^[A-Za-zА-Яа-яЁё](?:[A-Za-zА-Яа-яЁё' .-]*[A-Za-zА-Яа-яЁё.])?$"
_NAME_RE = re.compile(NAME_PATTERN)


def _name_part(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise rule_error("name_letters", "Только буквы, пробел, дефис и апостроф")
    return value


NamePart = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_name_part),
                    schema_pattern(NAME_PATTERN)]


class FullName(InputModel):
    """Фамилия, имя, отчество (при наличии) — the patronymic is optional."""

    last_name: NamePart
    first_name: NamePart
    patronymic: NamePart | None = None

    def display(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.patronymic) if p)


class IdentityDocumentKind(StrEnum):
    """Documents that prove identity on the form."""

    passport_rf = "passport_rf"  # паспорт гражданина РФ
    birth_certificate = "birth_certificate"  # свидетельство о рождении (under 14)
    foreign_passport = "foreign_passport"
    residence_permit = "residence_permit"  # вид на жительство
    other = "other"


_PASSPORT_SERIES = re.compile(r"^[0-9]{4}$")
_PASSPORT_NUMBER = re.compile(r"^[0-9]{6}$")
_BIRTH_SERIES = re.compile(r"^[IVXLC]{1,4}-[А-ЯЁ]{2}$")
ISSUER_CODE_PATTERN = r"^[0-9]{3}-[0-9]{3}$"
_ISSUER_CODE = re.compile(ISSUER_CODE_PATTERN)


class IdentityDocument(InputModel):
    """Identity document: kind, series and number, date and issuer (and its code, passports)."""

    kind: IdentityDocumentKind
    series: str | None = Field(default=None, max_length=20, validate_default=True)
    number: str = Field(min_length=1, max_length=30,
                        json_schema_extra={"pattern": NON_BLANK_PATTERN})
    issued_on: date
    issued_by: Text
    issuer_code: str | None = Field(default=None, max_length=7,
                                    json_schema_extra={"pattern": ISSUER_CODE_PATTERN})

    @field_validator("series")
    @classmethod
    def _series(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == IdentityDocumentKind.passport_rf and (v is None or not
                                                         _PASSPORT_SERIES.fullmatch(v)):
            raise rule_error("passport_series", "Серия паспорта РФ — 4 цифры")
        if kind == IdentityDocumentKind.birth_certificate and (v is None or not
                                                               _BIRTH_SERIES.fullmatch(v)):
            raise rule_error("birth_certificate_series",
                             "Серия свидетельства о рождении — римские цифры, дефис и две буквы, "
                             "например II-РЕ")
        return v

    @field_validator("number")
    @classmethod
    def _number(cls, v: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind in (IdentityDocumentKind.passport_rf, IdentityDocumentKind.birth_certificate) \
                and not _PASSPORT_NUMBER.fullmatch(v):
            raise rule_error("document_number", "Номер документа — 6 цифр")
        return v

    @field_validator("issuer_code")
    @classmethod
    def _issuer_code(cls, v: str | None) -> str | None:
        if v is not None and not _ISSUER_CODE.fullmatch(v):
            raise rule_error("issuer_code", "Код подразделения — в форме 000-000")
        return v


class AuthorityDocumentKind(StrEnum):
    """Documents that give a representative their authority."""

    power_of_attorney = "power_of_attorney"  # доверенность (Civil Code art. 185)
    birth_certificate = "birth_certificate"  # a parent (Family Code art. 64)
    guardianship_act = "guardianship_act"  # акт органа опеки (Civil Code art. 31–35)
    adoption_decision = "adoption_decision"  # решение суда об усыновлении
    other = "other"


LEGAL_REPRESENTATIVE_DOCUMENTS = frozenset({
    AuthorityDocumentKind.birth_certificate, AuthorityDocumentKind.guardianship_act,
    AuthorityDocumentKind.adoption_decision, AuthorityDocumentKind.other,
})
"""A legal representative (parent, adoptive parent, guardian) acts by law, not by proxy."""


class AuthorityDocument(InputModel):
    """The document of authority of a representative: kind, number, date, issued by, term."""

    kind: AuthorityDocumentKind
    number: str = Field(min_length=1, max_length=50,
                        json_schema_extra={"pattern": NON_BLANK_PATTERN})
    issued_on: date
    issued_by: Text
    valid_until: date | None = None

    @field_validator("valid_until")
    @classmethod
    def _after_issue(cls, v: date | None, info: ValidationInfo) -> date | None:
        issued = info.data.get("issued_on")
        if v is not None and issued is not None and v <= issued:
            raise rule_error("valid_until_after_issue",
                             "Срок действия должен оканчиваться позже даты выдачи")
        return v
