"""Disability as the 363н application form records it (004, the appendix, п.2).

"Инвалидность: первая, вторая, третья группа, категория «ребенок-инвалид»; причина
инвалидности; дата установления; установлена на срок до: число, месяц, год либо «бессрочно»".
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field, ValidationInfo, field_validator

from models.input_validation import InputModel, Text, rule_error


class DisabilityGroup(StrEnum):
    """Disability group I, II, III, or the category "disabled child" (under 18)."""

    first = "I"
    second = "II"
    third = "III"
    child = "child"


class Disability(InputModel):
    """Group, cause, date established and term: until a date, or indefinite."""

    group: DisabilityGroup
    cause: Text
    established_on: date
    until: date | None = Field(default=None, description="«до» — the day the term ends, not "
                                                         "included: «до 01.03.2027» is in force "
                                                         "through 28.02.2027")
    indefinite: bool = Field(default=False, validate_default=True)

    @field_validator("until")
    @classmethod
    def _after_established(cls, v: date | None, info: ValidationInfo) -> date | None:
        established = info.data.get("established_on")
        if v is not None and established is not None and v <= established:
            raise rule_error("until_after_established",
                             "Срок инвалидности должен оканчиваться позже даты установления")
        return v

    @field_validator("indefinite")
    @classmethod
    def _term(cls, v: bool, info: ValidationInfo) -> bool:
        if "until" not in info.data:  # the date itself is invalid: reported there
            return v
        until = info.data["until"]
        if v and until is not None:
            raise rule_error("term_either", "Укажите либо дату окончания срока, либо «бессрочно»",
                             field="indefinite")
        if not v and until is None:
            raise rule_error("term_required",
                             "Укажите срок: дату окончания или отметку «бессрочно»",
                             field="until")
        if v and info.data.get("group") == DisabilityGroup.child:
            raise rule_error("child_not_indefinite",
                             "Категория «ребенок-инвалид» устанавливается до 18 лет, "
                             "не бессрочно", field="indefinite")
        return v

    def in_force_on(self, on: date) -> bool:
        """Whether the group (category) is in force on the date ``on``."""
        return self.established_on <= on and (self.indefinite or
                                              (self.until is not None and on < self.until))
