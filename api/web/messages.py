"""A refusal as the pages show it: in Russian, naming the field and the rule.

The engine's refusals (``engine.errors.EngineError``) keep their English ``"<field>: <rule>"``
message for the API and the logs, and carry ``field``, ``rule`` and ``params``; a page shows
:func:`refusal_ru` of them — the field's Russian name, then the rule in Russian. A rule
without a Russian text here falls back to a generic Russian sentence naming the field,
never to the English message. The handbook: user-facing text in Russian, code and API
messages in English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import calendars
from api.web.core import AGENCY_ROLE_RU, ESC_STATUS_RU, ROLE_RU, ROUTE_STATUS_RU, STEP_STATUS_RU
from engine.errors import EngineError, field_of
from models.labels import step_kind_ru

#: The fields the pages' forms hold (and the things a refusal may name), in Russian.
FIELD_RU = {
    "id": "Код", "name": "Полное наименование", "short_name": "Краткое наименование",
    "role": "Роль", "region": "Регион", "email": "Эл. почта", "channel": "Куда направлять запросы",
    "endpoint_url": "Адрес системы ведомства", "secret_previous": "Прежний секрет",
    "district": "Район (муниципальное образование)",
    "secret": "Секрет подписи", "display_name": "Имя", "agency_id": "Ведомство",
    "reason": "Причина", "days": "На сколько рабочих дней", "step": "Шаг", "step_id": "Шаг",
    "route": "Маршрут", "escalation": "Эскалация", "escalation_id": "Эскалация",
    "outcome": "Результат", "information": "Сведения", "comment": "Комментарий",
    "nonce": "Форма", "ipra": "ИПРА", "application_date": "Дата заявления",
    "received_at": "Когда вручён", "task_id": "Запрос", "snils": "СНИЛС",
    "person.birth_date": "Дата рождения",
    "chosen": "Направления", "assessment": "Заключение оценки нуждаемости",
}

#: Each rule's Russian text; ``{name}`` is a parameter of the refusal (``EngineError.params``).
RULE_RU = {
    "blank": "нужно заполнить (видимыми символами)",
    "required": "нужно заполнить",
    "choose": "нужно выбрать значение",
    "choice": "выберите одно из предложенных значений",
    "max_length": "не более {max} знаков",
    "length": "от {min} до {max} знаков",
    "range": "целое число от {min} до {max}",
    "positive_int": "целое положительное число рабочих дней",
    "unknown": "не найдено",
    "exists": "такая запись уже есть",
    "email": "нужен адрес электронной почты",
    "url": "нужен адрес http:// или https:// с именем сервера",
    "url_credentials": "адрес не должен содержать логин и пароль (каждый запрос подписывается)",
    "https_required": "в рабочем режиме нужен адрес https:// (запросы содержат персональные "
                      "данные)",
    "required_for_http": "нужно указать, если запросы идут в систему ведомства",
    "agency_id_pattern": "от 2 до 40 знаков: латинские строчные буквы, цифры, «_» и «-», "
                         "первая — буква или цифра",
    "staff_id_pattern": "от 2 до 40 знаков: латинские строчные буквы, цифры, «_», «.» и «-», "
                        "первая — буква или цифра",
    "unknown_region": "такого региона нет среди календарей системы",
    "agency_for_agency_role": "выбирается для сотрудника ведомства, и только для него",
    "already_revoked": "доступ уже отозван",
    "self_revoke": "нельзя отозвать собственный доступ (попросите другого администратора)",
    "rotation_in_progress": "смена секрета уже идёт: сначала отзовите прежний секрет",
    "no_rotation": "отзывать нечего: смена секрета не идёт",
    "role": "действие доступно только ролям: {needs}",
    "other_region": "маршрут относится к региону {region}, а вы действуете только в регионе "
                    "{own}",
    "not_open": "принять в работу можно только открытую эскалацию (сейчас: {status})",
    "not_waiting": "продлить можно только срок шага, который ждёт отправки или ответа "
                   "(шаг: {status})",
    "no_deadline": "у шага нет действующего срока",
    "deadline_past": "с продлением на {days} раб. дн. срок {deadline} уже прошёл: продлите "
                     "на большее число рабочих дней",
    "not_in_progress": "передать можно только шаг в работе (шаг: {status})",
    "same_agency": "шаг уже назначен этому ведомству",
    "agency_role": "ведомство {agency} — {role}, а шагу нужно: {needs}",
    "agency_region": "ведомство {agency} из региона {region}, а маршрут — из региона {needs}",
    "agency_inactive": "ведомство {agency} не действует",
    "step_finished": "шаг уже завершён ({status}), закрыть его нельзя",
    "route_not_active": "маршрут {status}, изменить его нельзя",
    "step_mandatory": "обязателен по шаблону маршрута: закрыть его можно только вместе с "
                      "маршрутом (отметьте «отменить весь маршрут»)",
    "required_if_rejected": "при отказе укажите, что нужно уточнить",
    "form_expired": "форма устарела: откройте её ещё раз",
    "snils_other_birth_date": "СНИЛС уже записан за человеком с другой датой рождения: "
                              "сверьте документы",
    "snils_other_person": "уже записан за человеком с другими ФИО или датой рождения: "
                          "сверьте данные",
    "snils_other_region": "принадлежит человеку другого региона: заявление "
                          "регистрируется там (или администратором)",
    # the route's life (004 п.11–13) and a paper request's receipt (298-п Порядок п.11)
    "route_not_open": "маршрут {status}: прекратить можно только действующий или "
                      "приостановленный маршрут",
    "future_date": "дата ещё не наступила",
    "before_registration": "раньше дня регистрации заявления ({day})",
    "no_ipra": "у человека нет ИПРА: отказ и возобновление возможны только в срок ИПРА",
    "outside_ipra_term": "вне срока ИПРА № {number} ({start} – {end}): отказ и "
                         "возобновление возможны только в срок ИПРА (004 п.11)",
    "not_participant": "это ведомство не участвует в маршруте",
    "nothing_to_pause": "в маршруте нет шагов, которые можно приостановить или возобновить",
    "time_zone": "укажите время с часовым поясом",
    "before_preparation": "раньше подготовки запроса",
    "webhook_receipt": "ведомство получает запросы через свою систему: получение "
                       "отмечается при доставке, не вручную",
    # the branch decision of a supported-living route (000 п.10, п.13–15)
    "not_a_branch": "выберите из направлений маршрута: {kinds}",
    "listed_twice": "направление указано дважды",
    "alternatives": "{kinds} — взаимоисключающие направления: выберите не более одного "
                    "(000 п.14, п.15)",
    "decided_already": "решение о направлениях уже записано: оно записывается один раз",
    "assessment_pending": "решение записывается после шага {kinds}, а он ещё не завершён "
                          "(000 п.10)",
    "branch_opened": "шаг {kinds} уже начат ({status}): решение записывается до начала "
                     "шагов направлений",
    "no_branches": "у вида маршрута нет направлений для выбора (000 п.13–15: "
                   "сопровождаемое проживание, версия 2 и новее)",
}
GENERIC = "Действие не выполнено: проверьте введённые данные."

_AGENCY_ROLES = {r.value: ru for r, ru in AGENCY_ROLE_RU.items()}
#: A parameter's values in Russian, by the parameter's name: statuses, and agency roles
#: (one role) or staff roles (a list of them).
_WORDS: dict[str, Mapping[str, str]] = {
    "status": {**STEP_STATUS_RU, **ROUTE_STATUS_RU, **ESC_STATUS_RU},
    "role": _AGENCY_ROLES, "needs": _AGENCY_ROLES,
}
_STAFF_ROLES = {r.value: ru for r, ru in ROLE_RU.items()}


@dataclass(frozen=True)
class Refusal:
    """A refusal in identifiers: the field it names, the rule's code and its values."""

    field: str | None
    rule: str | None
    params: Mapping[str, object]


def refusal_of(exc: Exception) -> Refusal:
    """The identifiers of a refusal: an engine refusal's own; a calendar's (the region's
    form field) by its class; anything else: the field its message names, no rule."""
    if isinstance(exc, EngineError):
        return Refusal(exc.field, exc.rule, exc.params)
    field = field_of(str(exc))
    if isinstance(exc, calendars.UnknownRegionError):
        return Refusal(field or "region", "unknown_region", {})
    return Refusal(field, None, {})


def _word(name: str, value: object) -> str:
    """A parameter's value as the page shows it: Russian for statuses and roles, step kinds
    (``kinds``: one or a list) by their Russian names in quotes."""
    if name == "kinds":
        kinds = value if isinstance(value, list | tuple) else [value]
        return ", ".join(f"«{step_kind_ru(str(k))}»" for k in kinds)
    if isinstance(value, list | tuple):
        return ", ".join(_STAFF_ROLES.get(str(v), str(v)) for v in value)
    return _WORDS.get(name, {}).get(str(value), str(value))


def refusal_ru(exc: Exception, *, fields: Mapping[str, str] | None = None) -> str:
    """The refusal in Russian: «<field>: <rule>.», the field by its Russian name (``fields``
    first: a form's own labels), the rule in Russian; a rule unknown here gives a generic
    sentence naming the field; nothing of the English message is shown."""
    ref = refusal_of(exc)
    names = {**FIELD_RU, **(fields or {})}
    label = names.get(ref.field or "")
    text = RULE_RU.get(ref.rule or "")
    if text is None or label is None:
        return f"Действие не выполнено: проверьте поле «{label}»." if label else GENERIC
    try:
        rule = text.format(**{k: _word(k, v) for k, v in ref.params.items()})
    except (KeyError, IndexError):
        return f"Действие не выполнено: проверьте поле «{label}»."
    return f"{label}: {rule}."
