"""Russian labels of the product's identifiers, for people (pages and the Prefect card).

Identifiers stay English in code, the database and the API; what a person reads is Russian
(the handbook: user-facing text in Russian). One place for each kind of label:

- a step's kind (``need_assessment`` → «оценка нуждаемости»): every step kind of every
  template, built-in (``models.templates``) and data (``models/route_templates``); an ИПРА
  measure's step (``ipra_<direction>_<key>``, 004 п.10 пп.б) is named by its direction;
- an audit record's action, entity and actor (``registered``, ``step``, ``system:engine``);
- deadline kinds (298-п Порядок п.10, п.11; 363н п.10б), timer kinds (the escalation
  ladder, 298-п Порядок п.13), an escalation's cause, ИПРА directions;
- a region's name and its time zone as a place (``Europe/Kaliningrad`` → «калининградское
  время (МСК−1)»: 107-ФЗ «Об исчислении времени» ст.5).

Display only: nothing here is parsed back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import calendars
from models.ipra import MeasureDirection
from models.route_life import END_REASON_RU, EndReason
from models.timers import DeadlineKind, TimerKind

#: Short Russian names of the step kinds of every template (the test checks coverage).
STEP_KIND_RU: dict[str, str] = {
    # built-in templates (models/templates.py)
    "need_assessment": "оценка нуждаемости",
    "medical_check": "сведения о здоровье",
    "training_placement": "обучение самостоятельному проживанию",
    "health_monitoring": "мониторинг здоровья",
    "employment_conditions": "условия социальной занятости",
    "ipra_extract": "выписка из ИПРА",
    "rehabilitation_route": "реабилитационный маршрут",
    "tsr_provision": "обеспечение ТСР",
    # accompaniment (004)
    "mse_informing": "информирование в бюро МСЭ",
    "mse_tsr_selection": "подбор ТСР в бюро МСЭ",
    "sfr_tsr_consulting": "консультация СФР по ТСР",
    "route_support": "помощь в реализации маршрута",
    "situational_help": "помощь с договорами и документами",
    # early help (003)
    "child_identified": "выявление ребёнка",
    "need_recorded": "включение в реестр",
    "provider_referral": "направление к поставщику",
    "individual_programme": "индивидуальная программа",
    "services_recorded": "учёт оказанных услуг",
    # social employment (001)
    "need_determined": "определение потребности",
    "conditions_created": "создание условий",
    "services_provided": "предоставление услуг",
    "sport": "физкультура и спорт",
    "culture": "культурные мероприятия",
    "person_recorded": "учёт получателя услуг",
    "satisfaction_monitored": "мониторинг удовлетворённости",
    # supported living (000)
    "need_monitoring": "мониторинг нуждаемости",
    "training_apartment": "учебно-тренировочная квартира",
    "supported_housing": "сопровождаемое проживание",
    "education": "образование",
    "employment": "трудоустройство",
    "social_employment": "социальная занятость",
    "satisfaction_check": "оценка удовлетворённости",
}

#: ИПРА directions (545н), in the words of a step's name.
DIRECTION_SHORT_RU: dict[MeasureDirection, str] = {
    MeasureDirection.medical: "медицинская реабилитация",
    MeasureDirection.professional: "профессиональная реабилитация",
    MeasureDirection.social: "социальная реабилитация",
    MeasureDirection.psycho_pedagogical: "психолого-педагогическая реабилитация",
    MeasureDirection.physical_culture_sport: "адаптивная физкультура и спорт",
    MeasureDirection.technical_aids: "технические средства реабилитации",
}

_IPRA_KIND = re.compile(r"^ipra_(?P<direction>[a-z_]+?)_[0-9a-f]{1,8}(_\d+)?$")


def step_kind_ru(kind: str) -> str:
    """A step kind's Russian name; an ИПРА measure's step by its direction (004 п.10 пп.б);
    an unknown kind as it is (a test keeps every template's kinds known)."""
    if kind in STEP_KIND_RU:
        return STEP_KIND_RU[kind]
    m = _IPRA_KIND.match(kind)
    if m and m["direction"] in MeasureDirection.__members__:
        return "мероприятие ИПРА: " + DIRECTION_SHORT_RU[MeasureDirection(m["direction"])]
    base = re.sub(r"_\d+$", "", kind)
    return STEP_KIND_RU.get(base, kind)


#: Audit records' actions (every action the product writes: the test checks coverage).
AUDIT_ACTION_RU: dict[str, str] = {
    "access_refused": "доступ отклонён",
    "acknowledged": "принято в работу",
    "advanced": "переход к следующему шагу",
    "answer_absent": "сообщено об отсутствии сведений",
    "answer_provided": "получен ответ",
    "answer_rejected": "возвращён на уточнение",
    "attempt_failed": "попытка доставки не удалась",
    "branches_decided": "записано решение о направлениях",
    "awaiting_answer": "запрос доставлен, ожидается ответ",
    "cancel_notice_delivered": "уведомление об отмене доставлено",
    "cancel_notice_queued": "уведомление об отмене поставлено в очередь",
    "cancelled": "отменено",
    "cancelled_by_migration": "отменено при смене версии шаблона",
    "cancelled_by_replan": "отменено при пересмотре ИПРА",
    "closed": "закрыто",
    "closed_not_chosen": "закрыто: направление не выбрано",
    "closed_participant_refused": "закрыто: отказ от сопровождения участника",
    "closed_route_suspended": "закрыто: маршрут приостановлен",
    "closed_route_terminated": "закрыто: сопровождение прекращено",
    "closed_with_route": "закрыто вместе с маршрутом",
    "closed_with_step": "закрыто вместе с шагом",
    "complete_by_set": "установлен срок выполнения",
    "completed": "завершено",
    "consent_given": "дано согласие на обработку данных",
    "consent_withdrawn": "согласие отозвано",
    "created": "создано",
    "deadline_extended": "срок продлён",
    "deadline_recomputed": "срок пересчитан",
    "deadlines_recomputed": "сроки пересчитаны",
    "delivered": "доставлено",
    "delivery_failed": "доставка не удалась",
    "delivery_failed_ignored": "сбой доставки пропущен",
    "endpoint_changed": "изменён адрес приёма запросов",
    "failed": "не доставлено",
    "fired": "сработал",
    "ignored": "пропущено",
    "imported": "загружено",
    "imported_again": "загружено повторно",
    "migrated": "переведено на новую версию шаблона",
    "name_changed": "изменено ФИО",
    "opened": "открыта",
    "participant_refused": "отказ от сопровождения участника",
    "participant_resumed": "сопровождение участника возобновлено",
    "password_set": "задан пароль",
    "paused": "приостановлено",
    "pending": "ожидает отправки",
    "personal_data_destroyed": "персональные данные уничтожены",
    "placed_in_inbox": "запрос помещён во входящие ведомства",
    "prepared": "подготовлено",
    "provider_chosen": "выбран поставщик",
    "queued": "поставлено в очередь",
    "read": "просмотр",
    "recorded": "записано (без реальной доставки)",
    "ready": "готово к отправке",
    "reassigned": "передано другому ведомству",
    "received": "получено ведомством",
    "received_by_agency": "запрос получен ведомством",
    "recurrence_opened": "открыт очередной запрос",
    "recurrence_recomputed": "повтор пересчитан",
    "recurrence_scheduled": "запланирован повтор",
    "redelivered": "доставлено повторно",
    "registered": "зарегистрировано",
    "registration_conflict": "конфликт при регистрации",
    "registration_refused_other_region": "регистрация отклонена: другой регион",
    "replanned": "план пересмотрен по ИПРА",
    "request_refused": "система ведомства отказала в приёме запроса",
    "resent_on_resume": "запрос направлен повторно после возобновления",
    "resent_with_clarification": "направлен уточнённый запрос",
    "resolved_by_answer": "снята: получен ответ",
    "resolved_by_delivery": "снята: запрос доставлен",
    "resolved_by_extension": "снята: срок продлён",
    "resolved_by_recompute": "снята: срок пересчитан",
    "resolved_by_replan": "снята: план пересмотрен",
    "resolved_by_resend": "снята: запрос направлен повторно",
    "resolved_by_supervisor": "снята куратором",
    "resumed": "возобновлено",
    "scheduled": "запланирован",
    "secret_previous_retired": "прежний секрет выведен",
    "secret_rotated": "секрет заменён",
    "sending": "отправляется",
    "sent": "отправлено",
    "signed_in": "вход в систему",
    "signed_out": "выход из системы",
    "suspended": "приостановлено",
    "terminated": "сопровождение прекращено",
    "token_revoked": "токен отозван",
    "token_rotated": "токен заменён",
    "updated": "изменено",
    "version_recorded": "версия записана",
    "withdrawn": "отозвано",
}

#: What an audit record is about.
AUDIT_ENTITY_RU: dict[str, str] = {
    "agency": "ведомство", "answer": "ответ", "application": "заявление",
    "calendar": "календарь", "clock": "часы", "consent": "согласие",
    "escalation": "эскалация", "ipra": "ИПРА", "notification": "уведомление",
    "page": "страница", "person": "заявитель", "person_search": "поиск заявителя",
    "request": "запрос", "route": "маршрут", "route_timer": "таймер маршрута",
    "staff": "сотрудник", "step": "шаг", "template": "шаблон", "timer": "таймер",
}

#: Who did it: the parts of the system (``system:<part>``) and the kinds of actors.
SYSTEM_PART_RU: dict[str, str] = {
    "engine": "движок маршрутов", "ladder": "лестница эскалаций", "timers": "таймеры",
    "notify": "уведомления", "recompute": "пересчёт сроков",
    "applications": "приём заявлений", "ipra_plan": "план по ИПРА",
    "template_migration": "смена версии шаблона", "sweeper": "проверка таймеров",
    "agencies": "справочник ведомств", "staff": "учётные записи сотрудников",
}
_ACTOR_KIND_RU = {"system": "система", "staff": "сотрудник", "agency": "ведомство",
                  "cli": "оператор (командная строка)", "demo": "демонстрация"}


def action_ru(action: str) -> str:
    return AUDIT_ACTION_RU.get(action, action.replace("_", " "))


def entity_ru(entity: str) -> str:
    return AUDIT_ENTITY_RU.get(entity, entity)


def actor_ru(actor: str, agencies: Mapping[str, str] | None = None,
             staff: Mapping[str, str] | None = None) -> str:
    """``system:engine`` → «система: движок маршрутов»; ``staff:coord39`` → «сотрудник
    coord39» (or their name from ``staff``); ``agency:msp39`` → «ведомство Минсоцполитики»."""
    kind, _, who = actor.partition(":")
    if kind == "system":
        part, _, run = who.partition(":")
        name = SYSTEM_PART_RU.get(part, part)
        return f"система: {name}" + (f" ({run})" if run else "") if who else "система"
    if kind == "staff" and who:
        staff_name = (staff or {}).get(who)
        return f"сотрудник {staff_name}" if staff_name else f"сотрудник {who}"
    if kind == "agency" and who:
        return f"ведомство {(agencies or {}).get(who, who)}"
    if kind == "cli":
        return "оператор (командная строка)" + (f": {who}" if who else "")
    if kind in _ACTOR_KIND_RU:
        return _ACTOR_KIND_RU[kind] + (f": {who}" if who else "")
    return actor


DEADLINE_KIND_RU: dict[DeadlineKind, str] = {
    DeadlineKind.send_by: "срок направления запроса",  # 298-п Порядок п.10
    DeadlineKind.answer_by: "срок ответа",  # 298-п Порядок п.11, Регламент п.12
    DeadlineKind.complete_by: "срок выполнения",  # 545н (ИПРА); 363н п.10б
}

TIMER_KIND_RU: dict[TimerKind, str] = {
    TimerKind.send_overdue: "запрос не направлен в срок",
    TimerKind.send_escalation: "эскалация: запрос так и не направлен",
    TimerKind.answer_reminder: "напоминание о сроке ответа",
    TimerKind.answer_overdue: "ответ просрочен",
    TimerKind.answer_escalation: "эскалация: ответ так и не получен",
    TimerKind.complete_overdue: "шаг не выполнен в срок",
    TimerKind.complete_escalation: "эскалация: шаг так и не выполнен",
    TimerKind.recur_next: "очередной повторный запрос",
}

_TIMER_CAUSE = re.compile(r"^timer (?P<kind>[a-z_]+) due (?P<due>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)$")
#: ``engine.escalations.ladder.REFUSED`` (a literal: models do not import the engine)
_REFUSED = "agency refused the request"


def cause_ru(cause: str | None) -> str:
    """An escalation's cause (``timer answer_escalation due 2025-03-12``) in Russian."""
    if not cause:
        return "—"
    m = _TIMER_CAUSE.match(cause)
    if m and m["kind"] in TimerKind.__members__:
        return (f"{TIMER_KIND_RU[TimerKind(m['kind'])]} "
                f"(срок {m['d']}.{m['m']}.{m['due']})")
    if cause.startswith(_REFUSED):
        rest = cause[len(_REFUSED):].lstrip(": ")
        return "система ведомства отказала в приёме запроса" + (f": {rest}" if rest else "")
    return cause


#: Reasons the engine writes itself (a person's reason is kept as they wrote it).
REASON_RU: dict[str, str] = {
    "request delivered": "запрос доставлен",
    "request refused by the agency": "система ведомства отказала в приёме запроса",
    "resent with clarification": "направлен уточнённый запрос",
    "route resumed": "маршрут возобновлён",
    "the ИПРА in force changed": "изменилась действующая ИПРА",
    "004 п.13 а: accompaniment ends with the ИПРА's term":
        "004 п.13 а: сопровождение заканчивается со сроком ИПРА",
    "the public demo secret is not kept": "открытый демонстрационный секрет не сохраняется",
    "152-ФЗ art. 9 ч.1": "152-ФЗ ст. 9 ч.1",
    "152-ФЗ art. 9 ч.2": "152-ФЗ ст. 9 ч.2",
    "152-ФЗ art. 9 ч.2, art. 21 ч.5": "152-ФЗ ст. 9 ч.2, ст. 21 ч.5",
}
_REASON_PREFIX_RU = {"closed": "шаг закрыт", "reassigned": "передано другому ведомству",
                     "stale": "устарел"}


_DONE_RU = {"answer received": "ответ получен", "step completed": "шаг выполнен",
            "request delivered": "запрос доставлен"}
_RESOLUTION_RU: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(answer received|step completed|request delivered) (\d+) working day\(s\) "
                r"late$"), "{0} с опозданием {1} раб. дн."),
    (re.compile(r"^(answer received|step completed|request delivered) on time$"), "{0} в срок"),
    (re.compile(r"^deadline extended to (.+)$"), "срок продлён: {0}"),
    (re.compile(r"^deadline moved to (.+) \(version (\d+)\)$"),
     "срок перенесён: {0} (версия календаря {1})"),
    (re.compile(r"^step reassigned to (.+)$"), "шаг передан ведомству {0}"),
    (re.compile(r"^step closed by supervisor$"), "шаг закрыт куратором"),
    (re.compile(r"^request resent with clarification$"), "направлен уточнённый запрос"),
]


def _resolution_ru(text: str) -> str | None:
    """An escalation's resolution as the ladder writes it (``answer received 3 working
    day(s) late``) in Russian; None: not one of them."""
    for pattern, template in _RESOLUTION_RU:
        m = pattern.match(text)
        if m:
            return template.format(*(_DONE_RU.get(g, g) for g in m.groups()))
    return None


def reason_ru(reason: str | None) -> str:
    """An audit record's reason for a page: the engine's own wording in Russian (a timer's
    cause, ``answer 12 received``, ``closed: …``, an action's code before a colon); a
    person's text as it is."""
    if not reason:
        return ""
    if reason in REASON_RU:
        return REASON_RU[reason]
    resolution = _resolution_ru(reason)
    if resolution is not None:
        return resolution
    if reason in EndReason.__members__:
        return END_REASON_RU[EndReason(reason)]
    if reason.startswith("timer ") or reason.startswith(_REFUSED):
        return cause_ru(reason)
    m = re.fullmatch(r"answer (\d+) received", reason)
    if m:
        return f"получен ответ № {m[1]}"
    head, sep, rest = reason.partition(": ")
    if sep and (head in _REASON_PREFIX_RU or head in AUDIT_ACTION_RU):
        label = _REASON_PREFIX_RU.get(head) or AUDIT_ACTION_RU[head]
        return f"{label}: {reason_ru(rest)}"
    return reason


def region_name(code: str) -> str:
    """The region's name (its calendar file's ``name``), else «регион <code>»."""
    try:
        return calendars.get_calendar(code).name
    except calendars.CalendarError:
        return f"регион {code}"


#: Time zones of the regions' calendars, as a place and its offset from Moscow.
TIMEZONE_RU: dict[str, str] = {
    "Europe/Kaliningrad": "калининградское время (МСК−1)",
    "Europe/Moscow": "московское время",
    "Europe/Samara": "самарское время (МСК+1)",
    "Asia/Yekaterinburg": "екатеринбургское время (МСК+2)",
}


def timezone_ru(zone: str) -> str:
    return TIMEZONE_RU.get(zone, zone)


def region_timezone_ru(code: str) -> str:
    """The region's time zone in words (``39`` → «калининградское время (МСК−1)»)."""
    try:
        return timezone_ru(calendars.get_calendar(code).timezone)
    except calendars.CalendarError:
        return timezone_ru(calendars.get_calendar(calendars.DEFAULT_REGION).timezone)
