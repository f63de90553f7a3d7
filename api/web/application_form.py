"""The paper application (363н / 004 appendix form) as an HTML form: its fields, flat, each
named by its dotted path in the person's-file model (``models/application.py``,
``models/consent.py``), so every error the validation names (``FieldError.field``) lands
beside its field. Pure: no database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pendulum

from models.ages import Sex
from models.application import (
    AccompanimentAction,
    AccompanimentParticipant,
    RequestKind,
    SignatureKind,
)
from models.consent import DataCategory
from models.contacts import ContactChannel, PhoneKind
from models.disability import DisabilityGroup

Options = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FormField:
    """One input: its dotted path, Russian label, input type, options, autocomplete."""

    path: str
    label: str
    type: str = "text"  # text, date, email, tel, select, checkbox, textarea
    options: Options = ()
    autocomplete: str = "off"
    required: bool = False

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass(frozen=True)
class Section:
    legend: str
    fields: tuple[FormField, ...] = field(default_factory=tuple)


def _opts(pairs: dict[str, str]) -> Options:
    return tuple(pairs.items())


KIND_RU = _opts({RequestKind.accompaniment: "Сопровождение",
                 RequestKind.supported_living: "Сопровождаемое проживание",
                 RequestKind.social_employment: "Социальная занятость",
                 RequestKind.early_help: "Ранняя помощь"})
SECTIONS: tuple[Section, ...] = (
    Section("Заявление", (
        FormField("request.kind", "Вид заявления", "select", KIND_RU, required=True),
        FormField("request.addressee", "Кому адресовано (организация)", required=True),
        FormField("request.action", "Сопровождение: что просит заявитель", "select",
                  _opts({AccompanimentAction.provide: "предоставить",
                         AccompanimentAction.stop: "прекратить",
                         AccompanimentAction.resume: "возобновить"})),
        FormField("request.participant", "Сопровождение: участник", "select",
                  _opts({AccompanimentParticipant.mse: "бюро МСЭ",
                         AccompanimentParticipant.sfr: "Социальный фонд",
                         AccompanimentParticipant.rehabilitation_organisation:
                             "реабилитационная организация"})),
        FormField("request.preferences", "Пожелания (социальная занятость)", "textarea"),
        FormField("submission.signature", "Подпись", "select",
                  _opts({SignatureKind.handwritten: "собственноручная"}), required=True),
    )),
    Section("Получатель", (
        FormField("person.full_name.last_name", "Фамилия", autocomplete="family-name",
                  required=True),
        FormField("person.full_name.first_name", "Имя", autocomplete="given-name",
                  required=True),
        FormField("person.full_name.patronymic", "Отчество (при наличии)",
                  autocomplete="additional-name"),
        FormField("person.birth_date", "Дата рождения", "date", autocomplete="bday",
                  required=True),
        FormField("person.sex", "Пол", "select",
                  _opts({Sex.female: "женский", Sex.male: "мужской"}), required=True),
        FormField("person.snils", "СНИЛС (XXX-XXX-XXX YY)", required=True),
    )),
    Section("Документ, удостоверяющий личность", (
        FormField("person.identity_document.kind", "Вид документа", "select",
                  (("passport_rf", "паспорт гражданина РФ"),), required=True),
        FormField("person.identity_document.series", "Серия"),
        FormField("person.identity_document.number", "Номер", required=True),
        FormField("person.identity_document.issued_on", "Дата выдачи", "date", required=True),
        FormField("person.identity_document.issued_by", "Кем выдан", required=True),
        FormField("person.identity_document.issuer_code", "Код подразделения"),
    )),
    Section("Место жительства", (
        FormField("person.registration_address.postal_code", "Индекс",
                  autocomplete="postal-code"),
        FormField("person.registration_address.region_code", "Код региона", required=True),
        FormField("person.registration_address.region", "Субъект РФ", required=True),
        FormField("person.registration_address.locality", "Населённый пункт", required=True,
                  autocomplete="address-level2"),
        FormField("person.registration_address.street", "Улица"),
        FormField("person.registration_address.house", "Дом", required=True),
        FormField("person.registration_address.apartment", "Квартира"),
    )),
    Section("Связь", (
        FormField("person.phones.0.kind", "Вид телефона", "select",
                  _opts({PhoneKind.mobile: "мобильный", PhoneKind.home: "домашний"})),
        FormField("person.phones.0.number", "Телефон", "tel", autocomplete="tel"),
        FormField("person.email", "Электронная почта", "email", autocomplete="email"),
        FormField("person.preferred_channel", "Как сообщать о ходе", "select",
                  _opts({ContactChannel.phone: "по телефону",
                         ContactChannel.messenger: "в мессенджере",
                         ContactChannel.email: "по электронной почте",
                         ContactChannel.post: "почтой",
                         ContactChannel.in_person: "лично",
                         ContactChannel.portal: "через портал"}), required=True),
    )),
    Section("Инвалидность (если установлена)", (
        FormField("disability.group", "Группа", "select",
                  _opts({DisabilityGroup.first: "I", DisabilityGroup.second: "II",
                         DisabilityGroup.third: "III",
                         DisabilityGroup.child: "ребёнок-инвалид"})),
        FormField("disability.cause", "Причина"),
        FormField("disability.established_on", "Дата установления", "date"),
        FormField("disability.indefinite", "Бессрочно", "checkbox"),
    )),
    Section("Согласие на обработку персональных данных (бумажное)", (
        FormField("consent_confirmed", "Заявитель подтвердил согласие в заявлении", "checkbox"),
        FormField("consent.given_at", "Дата согласия (пусто — согласие уже в картотеке)",
                  "date"),
        FormField("consent.expires_at", "Согласие действует до", "date"),
        FormField("consent.operator.name", "Оператор: наименование"),
        FormField("consent.operator.inn", "Оператор: ИНН"),
        FormField("consent.operator.address", "Оператор: адрес"),
    )),
)
FIELDS = {f.path: f for s in SECTIONS for f in s.fields}


def defaults(region: str, today: date) -> dict[str, str]:
    return {"submission.signature": "handwritten", "person.identity_document.kind":
            "passport_rf", "person.registration_address.region_code": region,
            "person.phones.0.kind": "mobile", "consent.given_at": today.isoformat(),
            "consent.expires_at": today.replace(year=today.year + 1).isoformat()
            if not (today.month == 2 and today.day == 29) else
            (today + timedelta(days=365)).isoformat()}


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = doc
    for key, nxt in zip(parts, parts[1:], strict=False):
        if isinstance(node, list):
            idx = int(key)
            while len(node) <= idx:
                node.append({})
            node = node[idx]
        else:
            node = node.setdefault(key, [] if nxt.isdigit() else {})
    last = parts[-1]
    if isinstance(node, list):
        node.append(value)
    else:
        node[last] = value


def _day_start(day: str, tz: str) -> str:
    """``YYYY-MM-DD`` as the start of that day in ``tz`` (ISO with offset); else as given
    (the validation names a bad date)."""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return day
    return pendulum.datetime(d.year, d.month, d.day, tz=tz).isoformat()


def build(values: dict[str, str], *, staff_id: str, now: datetime, tz: str
          ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The application document and the consent (None: one is on file) from the form."""
    doc: dict[str, Any] = {"submission": {"channel": "paper",
                                          "registered_at": now.isoformat(),
                                          "registered_by": staff_id[:40]},
                           "applicant": {"kind": "person"}}
    for path, f in FIELDS.items():
        if path.startswith("consent.") or path.startswith("person.phones.0.kind"):
            continue
        raw = values.get(path, "").strip()
        if f.type == "checkbox":
            if path.startswith("disability.") and not values.get("disability.group"):
                continue
            _put(doc, path, raw == "1")
        elif raw:
            _put(doc, path, raw)
    if values.get("person.phones.0.number", "").strip():
        doc["person"]["phones"][0]["kind"] = values.get("person.phones.0.kind") or "mobile"
    given = values.get("consent.given_at", "").strip()
    if not given:
        return doc, None
    person = doc.get("person", {})
    name = person.get("full_name", {})
    kind = values.get("request.kind", "")
    consent: dict[str, Any] = {
        "consent_id": f"cn_{secrets.token_hex(8)}", "version": 1,
        "subject_snils": person.get("snils", ""),
        "subject_name": name,
        "given_by": {"kind": "person"},
        "purposes": [kind] if kind else [],
        "data_categories": [c.value for c in DataCategory if c is not DataCategory.representative],
        "operator": {k: values.get(f"consent.operator.{k}", "").strip()
                     for k in ("name", "inn", "address")},
        "channel": "paper", "signature": "handwritten",
        "given_at": _day_start(given, tz),
        "expires_at": _day_start(values.get("consent.expires_at", "").strip(), tz) or None,
    }
    return doc, consent


def field_of(error_path: str) -> str:
    """The form field an error belongs to: the path itself, else its nearest parent that
    is a field, else the section's first field (e.g. ``person.full_name`` → last name)."""
    if error_path in FIELDS:
        return error_path
    for path in FIELDS:
        if path.startswith(error_path + "."):
            return path
    parts = error_path.split(".")
    while parts:
        parts.pop()
        if ".".join(parts) in FIELDS:
            return ".".join(parts)
    return "request.kind"
