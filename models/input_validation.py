"""How input models are declared and how their errors reach people.

Every input of the person's file (the application, the consent, the ИПРА extract) is a pydantic
model derived from ``InputModel``: unknown fields are refused, text is stripped, the value is
frozen. ``check`` validates raw input and returns either the model or **every** invalid field
at once as ``FieldError(field, rule, message_ru)``: the dotted path of the field (list items as
``[i]``), the rule it breaks (pydantic's error type, or our own code from a
``PydanticCustomError``) and a Russian message for the person who filled it in.

A rule that reads two fields raises ``rule_error(..., field="a.b")``: the error is then reported
at the path ``a.b`` taken from the model whose validator raised it (the validator's own field is
replaced), so a cross-field rule still names the one field to correct.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

M = TypeVar("M", bound=BaseModel)

SPACE_CLASS = "".join(f"\\u{p:04x}" for p in range(0x10000)
                      if not 0xD800 <= p <= 0xDFFF and chr(p).isspace())
"""The characters ``str.strip()`` and Python's ``\\s`` treat as white space, written as
explicit ``\\uXXXX`` escapes: JSON Schema's (ECMA-262) ``\\s`` is another set (it has
U+FEFF, lacks U+001C–U+001F and U+0085), so a published pattern spells them out."""

NON_BLANK_PATTERN = f"[^{SPACE_CLASS}]"
"""JSON Schema: at least one character that stripping keeps (text is stripped, then must not
be empty)."""


def schema_pattern(pattern: str) -> Any:
    """Publish ``pattern`` in the field's JSON Schema only: the field's own validator enforces
    the same rule with its Russian message (``rule_error``), so the schema tells clients the
    rule and the person still reads which rule they broke."""
    return Field(json_schema_extra={"pattern": pattern})

FIELD_OVERRIDE = "field"
"""Context key of a ``PydanticCustomError`` that names the field the error belongs to."""

FIELD_BELOW = "below"
"""Context key naming a field inside the validated value (an item's own field)."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                 schema_pattern(NON_BLANK_PATTERN)]
"""A required piece of free text (a name of an organisation, an issuer, a cause)."""


class InputModel(BaseModel):
    """Base of the input models: unknown fields refused, text stripped, values frozen."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class FieldError(BaseModel):
    """One invalid field: where it is, which rule it breaks, what to tell the person."""

    model_config = ConfigDict(frozen=True)

    field: str
    rule: str
    message_ru: str


@dataclass(frozen=True)
class Checked(Generic[M]):
    """The outcome of ``check``: the model when valid, else every error (and no model)."""

    value: M | None
    errors: tuple[FieldError, ...]

    @property
    def ok(self) -> bool:
        return self.value is not None and not self.errors


def rule_error(rule: str, message_ru: str, *, field: str | None = None,
               below: str | None = None) -> PydanticCustomError:
    """A rule's error; ``field`` (a dotted path within the validator's model) reports it at
    another field than the one validated, ``below`` at a field inside the validated value
    (e.g. a list item's ``due``)."""
    ctx = {FIELD_OVERRIDE: field} if field else {FIELD_BELOW: below} if below else None
    return PydanticCustomError(rule, message_ru, ctx)


# Russian messages for pydantic's own error types; ``{name}`` is filled from the error's ctx.
_MESSAGES_RU: Mapping[str, str] = {
    "missing": "Обязательное поле не заполнено",
    "extra_forbidden": "Такого поля нет в форме",
    "string_type": "Ожидается текст",
    "string_too_short": "Поле не заполнено",
    "string_too_long": "Слишком длинное значение: не больше {max_length} символов",
    "string_pattern_mismatch": "Значение не соответствует формату",
    "int_type": "Ожидается целое число",
    "int_parsing": "Ожидается целое число",
    "int_from_float": "Ожидается целое число",
    "bool_type": "Ожидается «да» или «нет»",
    "bool_parsing": "Ожидается «да» или «нет»",
    "greater_than_equal": "Значение должно быть не меньше {ge}",
    "less_than_equal": "Значение должно быть не больше {le}",
    "greater_than": "Значение должно быть больше {gt}",
    "less_than": "Значение должно быть меньше {lt}",
    "date_type": "Ожидается дата в формате ГГГГ-ММ-ДД",
    "date_parsing": "Ожидается дата в формате ГГГГ-ММ-ДД",
    "date_from_datetime_parsing": "Ожидается дата в формате ГГГГ-ММ-ДД",
    "date_from_datetime_inexact": "Ожидается дата без времени",
    "datetime_type": "Ожидается дата и время (ISO 8601, с часовым поясом)",
    "datetime_parsing": "Ожидается дата и время (ISO 8601, с часовым поясом)",
    "datetime_from_date_parsing": "Ожидается дата и время (ISO 8601, с часовым поясом)",
    "timezone_aware": "Укажите часовой пояс (например, +02:00)",
    "enum": "Недопустимое значение; допустимые: {expected}",
    "literal_error": "Недопустимое значение; допустимое: {expected}",
    "list_type": "Ожидается список",
    "set_type": "Ожидается список",
    "frozen_set_type": "Ожидается список",
    "too_short": "Список должен содержать не меньше {min_length} элементов",
    "too_long": "Список должен содержать не больше {max_length} элементов",
    "model_type": "Ожидается объект с полями",
    "model_attributes_type": "Ожидается объект с полями",
    "dict_type": "Ожидается объект с полями",
    "json_invalid": "Файл не является корректным JSON ({error})",
    "json_type": "Ожидается JSON",
    "set_item_not_hashable": "Недопустимый элемент списка",
}
_FALLBACK_RU = "Недопустимое значение"


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _loc(dotted: str) -> tuple[int | str, ...]:
    return tuple(int(p) if p.isdigit() else p for p in dotted.split("."))


def _message_ru(error: ErrorDetails) -> str:
    template = _MESSAGES_RU.get(error["type"])
    if template is None:
        # Our own rules (PydanticCustomError) carry their Russian message already.
        return error["msg"] if error["type"] not in {"value_error", "assertion_error"} \
            else _FALLBACK_RU
    ctx = {k: str(v).replace(" or ", " или ") for k, v in (error.get("ctx") or {}).items()}
    try:
        return template.format(**ctx)
    except KeyError:
        return _FALLBACK_RU


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """Each pydantic error as a ``FieldError``, in the order pydantic found them."""
    found: list[FieldError] = []
    for error in exc.errors(include_url=False):
        ctx: dict[str, Any] = error.get("ctx") or {}
        override = ctx.get(FIELD_OVERRIDE)
        loc = tuple(error["loc"])
        below = ctx.get(FIELD_BELOW)
        if isinstance(override, str):
            loc = loc[:-1] + _loc(override)
        elif isinstance(below, str):
            loc = loc + _loc(below)
        found.append(FieldError(field=_path(loc) or "$", rule=error["type"],
                                message_ru=_message_ru(error)))
    return tuple(found)


def check(model: type[M], raw: object) -> Checked[M]:
    """Validate ``raw`` (parsed JSON: dicts, lists, strings) against ``model``; all errors."""
    try:
        return Checked(model.model_validate(raw), ())
    except ValidationError as exc:
        return Checked(None, field_errors(exc))


def check_json(model: type[M], text: str | bytes) -> Checked[M]:
    """Validate JSON text against ``model``; a file that is not JSON is one error at ``$``."""
    try:
        return Checked(model.model_validate_json(text), ())
    except ValidationError as exc:
        return Checked(None, field_errors(exc))
