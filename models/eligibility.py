"""Eligibility for each kind of route, every decision explained (pure functions).

A ``Decision`` is a record: the route kind, yes or no, the date it is made on (the application
date), and for each rule applied the clause, the facts it read (which limitation, which degree,
which age on which date) and the result. It is shown to staff and stored with the application;
an ineligible decision carries a Russian explanation for the person — why, and what they can
do.

- accompaniment — 004 п.1: a limitation of degree 2 or 3 in self-care, movement, orientation,
  communication or behaviour control, in an ИПРА in force (004 п.11, п.13 а);
- social employment — 001 Регламент п.3: a degree-3 limitation of the ability to work, able to
  do simple work only with significant help of others; of working age, or a disabled child
  aged 14 or over;
- supported living — 000 п.10: 18 and over, unable to live independently without the help of
  others; read from the ИПРА (a degree 2–3 limitation of the categories 004 п.1 calls "needing
  constant or partial outside help") and confirmed by the route's need assessment (its first
  step, 001 Порядок п.9);
- early help — 003: a child of the target group ("дети целевой группы", п.9, п.10) of early age
  ("дети раннего возраста", п.4): under ``early_help_age_limit_years`` (default 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict

from models.ages import ADULT_AGE, Sex, WorkingAge, age_on
from models.application import AccompanimentAction, Application, EarlyHelpGround, RequestKind
from models.disability import DisabilityGroup
from models.ipra import CATEGORY_RU, Ipra, LimitationCategory, WorkRecommendation

NEEDS_HELP_CATEGORIES: tuple[LimitationCategory, ...] = (
    LimitationCategory.self_care, LimitationCategory.movement, LimitationCategory.orientation,
    LimitationCategory.communication, LimitationCategory.behaviour_control,
)
"""004 п.1: the categories whose degree 2 or 3 means needing constant or partial outside help."""

NEEDS_HELP_DEGREE = 2
SOCIAL_EMPLOYMENT_WORK_DEGREE = 3
SOCIAL_EMPLOYMENT_CHILD_AGE = 14
EARLY_HELP_AGE_LIMIT_YEARS = 3
"""003 п.4 speaks of "дети раннего возраста": early age is up to 3 years (see docs)."""


class Fact(BaseModel):
    """One fact a rule read: what, its value, where from, and on which date if it matters."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str | int | bool | None = None
    """Dates are ISO strings (``2026-01-12``): the record round-trips through JSON."""
    source: str
    on: date | None = None


class RuleResult(BaseModel):
    """One rule applied: its code, the clause, the facts read, passed or not, and why."""

    model_config = ConfigDict(frozen=True)

    rule: str
    clause: str
    facts: tuple[Fact, ...]
    passed: bool
    reason_ru: str


class Decision(BaseModel):
    """The decision on an application: eligible or not, with every rule applied."""

    model_config = ConfigDict(frozen=True)

    route_kind: RequestKind
    eligible: bool
    decided_on: date
    rules: tuple[RuleResult, ...]
    notes_ru: tuple[str, ...] = ()
    explanation_ru: str | None = None

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.rules if not r.passed)


@dataclass(frozen=True)
class Subject:
    """What the rules read about a person: from the application and their current ИПРА."""

    snils: str
    birth_date: date
    sex: Sex
    disability_group: DisabilityGroup | None = None
    ipra: Ipra | None = None
    early_help_grounds: frozenset[EarlyHelpGround] = frozenset()

    @classmethod
    def of(cls, application: Application, ipra: Ipra | None) -> Subject:
        person = application.person
        return cls(snils=person.snils, birth_date=person.birth_date, sex=person.sex,
                   disability_group=application.disability.group
                   if application.disability else None,
                   ipra=ipra, early_help_grounds=application.request.early_help_grounds)


@dataclass(frozen=True)
class EligibilitySettings:
    """The bounds a region may set; the defaults are read from the regulations (docs)."""

    early_help_age_limit_years: int = EARLY_HELP_AGE_LIMIT_YEARS
    working_age: WorkingAge = field(default_factory=WorkingAge)


# --- facts ----------------------------------------------------------------------------------

def _ipra_source(ipra: Ipra) -> str:
    return f"ИПРА № {ipra.number} от {ipra.issued_on:%d.%m.%Y}"


def _age_fact(subject: Subject, on: date) -> Fact:
    return Fact(name="age_years", value=age_on(subject.birth_date, on),
                source=f"дата рождения {subject.birth_date:%d.%m.%Y}", on=on)


def _degree_facts(ipra: Ipra, categories: tuple[LimitationCategory, ...]) -> tuple[Fact, ...]:
    return tuple(Fact(name=f"limitation.{c.value}.degree", value=ipra.degree(c),
                      source=_ipra_source(ipra)) for c in categories)


# --- rules ----------------------------------------------------------------------------------

def ipra_in_force(subject: Subject, on: date, clause: str) -> RuleResult:
    """The person's own ИПРА is in force on the application date (004 п.1: the limitations
    are those "определены в ИПРА"; п.11, п.13 а: accompaniment lasts the ИПРА's term)."""
    ipra = subject.ipra
    if ipra is None:
        return RuleResult(rule="ipra_in_force", clause=clause, passed=False,
                          facts=(Fact(name="ipra", value=None, source="история ИПРА", on=on),),
                          reason_ru="нет ИПРА, выданной бюро МСЭ")
    last = ipra.last_day
    facts = (Fact(name="ipra.number", value=ipra.number, source="ФГИС ФРИ"),
             Fact(name="ipra.same_person", value=ipra.subject.snils == subject.snils,
                  source="СНИЛС в ИПРА и в заявлении (сам номер в решение не пишется)"),
             Fact(name="ipra.valid_from", value=ipra.valid_from.isoformat(),
                  source=_ipra_source(ipra)),
             Fact(name="ipra.last_day", value=last.isoformat() if last else None,
                  source=_ipra_source(ipra)))
    if ipra.subject.snils != subject.snils:
        return RuleResult(rule="ipra_in_force", clause=clause, passed=False, facts=facts,
                          reason_ru="ИПРА выдана другому лицу (СНИЛС не совпадает)")
    passed = ipra.in_force_on(on)
    until = "бессрочно" if last is None else f"по {last:%d.%m.%Y}"
    reason = (f"ИПРА действует на {on:%d.%m.%Y} (с {ipra.valid_from:%d.%m.%Y} {until})"
              if passed else
              f"ИПРА не действует на {on:%d.%m.%Y} (срок: с {ipra.valid_from:%d.%m.%Y} {until})")
    return RuleResult(rule="ipra_in_force", clause=clause, passed=passed, facts=facts,
                      reason_ru=reason)


def needs_outside_help(ipra: Ipra | None, clause: str, rule: str) -> RuleResult:
    """004 п.1: a limitation of degree 2 or 3 in self-care, movement, orientation,
    communication or behaviour control means needing constant or partial outside help."""
    if ipra is None:
        return RuleResult(rule=rule, clause=clause, facts=(), passed=False,
                          reason_ru="степень ограничений неизвестна: нет ИПРА")
    facts = _degree_facts(ipra, NEEDS_HELP_CATEGORIES)
    found = [c for c in NEEDS_HELP_CATEGORIES if ipra.degree(c) >= NEEDS_HELP_DEGREE]
    if found:
        listed = "; ".join(f"{CATEGORY_RU[c]} — {ipra.degree(c)} степень" for c in found)
        reason = f"в ИПРА ограничения 2–3 степени: {listed}"
    else:
        reason = ("в ИПРА нет ограничений 2 или 3 степени способности к самообслуживанию, "
                  "передвижению, ориентации, общению, контролю за поведением")
    return RuleResult(rule=rule, clause=clause, facts=facts, passed=bool(found),
                      reason_ru=reason)


def work_limitation_degree_3(ipra: Ipra | None) -> RuleResult:
    """001 Регламент п.3: "заключение об установлении им 3-й степени ограничения способности
    к трудовой деятельности"."""
    clause = "298-п Регламент п.3"
    if ipra is None:
        return RuleResult(rule="work_degree_3", clause=clause, facts=(), passed=False,
                          reason_ru="степень ограничения способности к труду неизвестна: нет ИПРА")
    degree = ipra.degree(LimitationCategory.work)
    passed = degree == SOCIAL_EMPLOYMENT_WORK_DEGREE
    found = (f"ограничение способности к трудовой деятельности {degree} степени" if degree
             else "ограничения способности к трудовой деятельности в ИПРА нет")
    return RuleResult(
        rule="work_degree_3", clause=clause, passed=passed,
        facts=_degree_facts(ipra, (LimitationCategory.work,)),
        reason_ru=found if passed else f"{found}, а нужна 3 степень")


def simple_work_with_help(ipra: Ipra | None) -> RuleResult:
    """001 Регламент п.3: "способных осуществлять несложные (простые) виды деятельности
    исключительно со значительной помощью других лиц". An ИПРА that says work is
    contraindicated, or possible with conditions only, does not describe such a person; one
    that says nothing leaves it to the route's first step (001 Регламент п.16 пп.1)."""
    clause = "298-п Регламент п.3"
    rec = ipra.work_recommendation if ipra else None
    fact = Fact(name="ipra.work_recommendation", value=rec.value if rec else None,
                source=_ipra_source(ipra) if ipra else "нет ИПРА")
    if rec is None:
        return RuleResult(rule="simple_work_with_help", clause=clause, facts=(fact,), passed=True,
                          reason_ru="в ИПРА нет заключения о доступных видах труда: "
                                    "уточняется при определении потребности "
                                    "(298-п Регламент п.16 пп.1)")
    passed = rec == WorkRecommendation.simple_work_with_significant_help
    reason = {
        WorkRecommendation.simple_work_with_significant_help:
            "по ИПРА доступны несложные виды деятельности со значительной помощью других лиц",
        WorkRecommendation.work_with_conditions:
            "по ИПРА доступен труд в специально созданных условиях — это путь содействия "
            "занятости, а не социальной занятости",
        WorkRecommendation.work_contraindicated: "по ИПРА трудовая деятельность противопоказана",
    }[rec]
    return RuleResult(rule="simple_work_with_help", clause=clause, facts=(fact,), passed=passed,
                      reason_ru=reason)


def social_employment_age(subject: Subject, on: date, settings: EligibilitySettings) -> RuleResult:
    """001 Регламент п.3: "инвалидов трудоспособного возраста (детей-инвалидов в возрасте
    14 лет и старше)": 14 to 17 as a disabled child, from 18 until the retirement age."""
    age = age_on(subject.birth_date, on)
    bound = settings.working_age.upper_bound(subject.sex, subject.birth_date)
    facts = (_age_fact(subject, on),
             Fact(name="working_age_ends_on", value=bound.isoformat(),
                  source=f"пол {subject.sex.value}; 400-ФЗ ст.8, приложение 6"))
    if age < SOCIAL_EMPLOYMENT_CHILD_AGE:
        passed, reason = False, f"на {on:%d.%m.%Y} исполнилось {age}: нужно 14 лет и старше"
    elif age < ADULT_AGE:
        passed, reason = True, f"ребёнок-инвалид, на {on:%d.%m.%Y} исполнилось {age} (14+)"
    elif on < bound:
        passed, reason = True, f"трудоспособный возраст: {age} на {on:%d.%m.%Y}"
    else:
        passed, reason = False, (f"на {on:%d.%m.%Y} исполнилось {age}: трудоспособный возраст "
                                 f"окончился {bound:%d.%m.%Y}")
    return RuleResult(rule="social_employment_age", clause="298-п Регламент п.3", facts=facts,
                      passed=passed, reason_ru=reason)


def adult(subject: Subject, on: date) -> RuleResult:
    """000 п.10: "инвалидов старше 18 лет" — read as having reached 18 (docs)."""
    age = age_on(subject.birth_date, on)
    passed = age >= ADULT_AGE
    return RuleResult(rule="adult", clause="000 п.10", facts=(_age_fact(subject, on),),
                      passed=passed,
                      reason_ru=f"на {on:%d.%m.%Y} исполнилось {age}"
                                f"{'' if passed else ': нужно 18 лет и старше'}")


def early_age(subject: Subject, on: date, settings: EligibilitySettings) -> RuleResult:
    """003 п.4: "дети раннего возраста" — under ``early_help_age_limit_years`` (default 3)."""
    age = age_on(subject.birth_date, on)
    limit = settings.early_help_age_limit_years
    passed = age < limit
    return RuleResult(rule="early_age", clause="003 п.4, п.9",
                      facts=(_age_fact(subject, on),
                             Fact(name="early_help_age_limit_years", value=limit,
                                  source="настройка региона")),
                      passed=passed,
                      reason_ru=f"на {on:%d.%m.%Y} исполнилось {age}"
                                f"{'' if passed else f': ранняя помощь — до {limit} лет'}")


def early_help_target_group(subject: Subject) -> RuleResult:
    """003 п.9, п.10: a child of the target group — a disabled child, a child with a
    limitation in their ИПРА, or one the application states a limitation or its risk for."""
    facts = (Fact(name="disability_group",
                  value=subject.disability_group.value if subject.disability_group else None,
                  source="заявление"),
             Fact(name="ipra.limitations", value=len(subject.ipra.limitations)
                  if subject.ipra else None,
                  source=_ipra_source(subject.ipra) if subject.ipra else "нет ИПРА"),
             Fact(name="early_help_grounds",
                  value=", ".join(sorted(g.value for g in subject.early_help_grounds)) or None,
                  source="заявление"))
    grounds = []
    if subject.disability_group == DisabilityGroup.child:
        grounds.append("ребёнок-инвалид")
    if subject.ipra is not None and subject.ipra.limitations:
        grounds.append("ограничения жизнедеятельности по ИПРА")
    if subject.early_help_grounds:
        grounds.append("основания, указанные в заявлении")
    return RuleResult(rule="early_help_target_group", clause="003 п.9, п.10", facts=facts,
                      passed=bool(grounds),
                      reason_ru=("целевая группа: " + ", ".join(grounds)) if grounds else
                      "нет сведений об инвалидности, ограничениях или риске их развития")


# --- the decisions --------------------------------------------------------------------------

_ROUTE_RU: Mapping[RequestKind, str] = {
    RequestKind.accompaniment: "сопровождение при комплексной реабилитации",
    RequestKind.supported_living: "сопровождаемое проживание",
    RequestKind.social_employment: "социальную занятость",
    RequestKind.early_help: "раннюю помощь",
}

_WHAT_TO_DO_RU: Mapping[str, str] = {
    "ipra_in_force": "Обратитесь в бюро медико-социальной экспертизы за разработкой новой ИПРА "
                     "(или исправлением сведений о ней) и подайте заявление снова.",
    "needs_outside_help": "Если ваше состояние изменилось, вы можете обратиться в бюро МСЭ для "
                          "пересмотра ИПРА. Информацию и консультацию о реабилитации можно "
                          "получить в реабилитационной организации и в бюро МСЭ (363н п.5, п.6).",
    "needs_help_supported_living": "Если вам нужна регулярная помощь, а в ИПРА это не отражено, "
                                   "обратитесь в бюро МСЭ для пересмотра ИПРА.",
    "work_degree_3": "Вы можете обратиться в центр занятости населения за содействием в "
                     "трудоустройстве, в том числе сопровождаемом.",
    "simple_work_with_help": "Вы можете обратиться в центр занятости населения за содействием "
                             "в трудоустройстве на оборудованное (специальное) рабочее место.",
    "social_employment_age": "Социальная занятость — для детей-инвалидов с 14 лет и инвалидов "
                             "трудоспособного возраста. Вы можете обратиться за социальными "
                             "услугами или сопровождением при комплексной реабилитации.",
    "adult": "Сопровождаемое проживание — для инвалидов с 18 лет. Для ребёнка можно подать "
             "заявление о сопровождении при комплексной реабилитации (или о ранней помощи).",
    "early_age": "Ранняя помощь — для детей раннего возраста. Для ребёнка старшего возраста "
                 "можно подать заявление о сопровождении при комплексной реабилитации.",
    "early_help_target_group": "Если у ребёнка есть нарушения развития или риск их появления, "
                               "приложите заключение врача или направление медицинской "
                               "организации и подайте заявление снова.",
}

APPEAL_RU = ("Если вы не согласны с решением, вы можете обратиться в Министерство социальной "
             "политики Калининградской области, которое контролирует межведомственное "
             "взаимодействие (298-п Порядок п.13, Регламент п.17).")


def explain_ru(kind: RequestKind, failed: tuple[RuleResult, ...]) -> str:
    """The Russian text for the person: why the route cannot be provided, what they can do."""
    why = "; ".join(r.reason_ru for r in failed)
    todo = " ".join(dict.fromkeys(_WHAT_TO_DO_RU[r.rule] for r in failed))
    return (f"Заявление о предоставлении услуги «{_ROUTE_RU[kind]}» зарегистрировано, "
            f"но услуга не может быть предоставлена: {why}. Что можно сделать: {todo} "
            f"{APPEAL_RU}")


def _decision(kind: RequestKind, on: date, rules: tuple[RuleResult, ...],
              notes: tuple[str, ...] = ()) -> Decision:
    eligible = all(r.passed for r in rules)
    failed = tuple(r for r in rules if not r.passed)
    return Decision(route_kind=kind, eligible=eligible, decided_on=on, rules=rules,
                    notes_ru=notes, explanation_ru=None if eligible else explain_ru(kind, failed))


# ------------------------------------------------------------ the grounds an ИПРА gives
def grounds_accompaniment(ipra: Ipra | None) -> tuple[RuleResult, ...]:
    """004 п.1: a degree-2/3 limitation of self-care, movement, orientation, communication or
    behaviour control in the ИПРА (what п.13 в ends accompaniment without)."""
    return (needs_outside_help(ipra, "363н п.1", "needs_outside_help"),)


def grounds_social_employment(ipra: Ipra | None) -> tuple[RuleResult, ...]:
    """001 Регламент п.3: the ИПРА's conclusion of a degree-3 limitation of the capacity to
    work, simple work only with significant help of others."""
    return (work_limitation_degree_3(ipra), simple_work_with_help(ipra))


def grounds_supported_living(ipra: Ipra | None) -> tuple[RuleResult, ...]:
    """000 п.10: unable to live independently without the help of others — read, as at the
    application (``decide_supported_living``), from the ИПРА's degree-2/3 limitations of
    004 п.1's categories."""
    return (needs_outside_help(ipra, "000 п.10; 363н п.1", "needs_help_supported_living"),)


IPRA_GROUNDS: Mapping[RequestKind, Callable[[Ipra | None], tuple[RuleResult, ...]]] = {
    RequestKind.accompaniment: grounds_accompaniment,
    RequestKind.social_employment: grounds_social_employment,
    RequestKind.supported_living: grounds_supported_living,
}
"""Per route kind, the part of its eligibility rule an ИПРА gives — what a new МСЭ decision
can take away. Early help (003 п.4, п.9) is absent: a child of early age of the target group
(a doctor's conclusion or a medical organisation's referral), no ИПРА."""


def ipra_grounds(kind: str, ipra: Ipra | None) -> tuple[RuleResult, ...] | None:
    """The route kind's grounds read on ``ipra`` (each rule with its clause); None: the
    kind's grounds do not rest on an ИПРА (early help) or the kind is unknown."""
    try:
        rule = IPRA_GROUNDS.get(RequestKind(kind))
    except ValueError:
        return None
    return rule(ipra) if rule else None


def decide_accompaniment_stop(on: date) -> Decision:
    """004 п.11, п.13 б: the person may refuse accompaniment at any time — always granted."""
    rule = RuleResult(rule="refusal_any_time", clause="363н п.11, п.13 б", facts=(), passed=True,
                      reason_ru="отказаться от сопровождения можно в любое время")
    return _decision(RequestKind.accompaniment, on, (rule,))


def decide_accompaniment(subject: Subject, on: date,
                         settings: EligibilitySettings | None = None) -> Decision:
    """004 п.1 (degree 2 or 3 in one of five categories), п.11 / п.13 а (during the ИПРА);
    the same for providing and for resuming (п.11: resumed during the ИПРА's term)."""
    rules = (ipra_in_force(subject, on, "363н п.1, п.11, п.13 а"),
             *grounds_accompaniment(subject.ipra))
    return _decision(RequestKind.accompaniment, on, rules)


def decide_social_employment(subject: Subject, on: date,
                             settings: EligibilitySettings | None = None) -> Decision:
    """001 Регламент п.3: degree-3 work limitation, simple work only with significant help,
    working age or a disabled child aged 14+, per the ИПРА issued by МСЭ."""
    s = settings or EligibilitySettings()
    rules = (ipra_in_force(subject, on, "298-п Регламент п.3"),
             *grounds_social_employment(subject.ipra), social_employment_age(subject, on, s))
    return _decision(RequestKind.social_employment, on, rules,
                     notes=("Потребность в услугах определяется первым шагом маршрута "
                            "(298-п Регламент п.16 пп.1)",))


def decide_supported_living(subject: Subject, on: date,
                            settings: EligibilitySettings | None = None) -> Decision:
    """000 п.10: an adult (18+) unable to live independently without the help of others;
    the need is assessed as the route's first step."""
    rules = (adult(subject, on), ipra_in_force(subject, on, "000 п.10"),
             *grounds_supported_living(subject.ipra))
    return _decision(RequestKind.supported_living, on, rules,
                     notes=("Нуждаемость в сопровождаемом проживании подтверждается оценкой — "
                            "первым шагом маршрута (000 п.10; 298-п Порядок п.9)",))


def decide_early_help(subject: Subject, on: date,
                      settings: EligibilitySettings | None = None) -> Decision:
    """003 п.4, п.9, п.10: a child of early age of the target group."""
    s = settings or EligibilitySettings()
    rules = (early_age(subject, on, s), early_help_target_group(subject))
    return _decision(RequestKind.early_help, on, rules)


DECIDE: Mapping[RequestKind, Callable[[Subject, date, EligibilitySettings | None], Decision]] = {
    RequestKind.accompaniment: decide_accompaniment,
    RequestKind.social_employment: decide_social_employment,
    RequestKind.supported_living: decide_supported_living,
    RequestKind.early_help: decide_early_help,
}


def decide(application: Application, ipra: Ipra | None,
           settings: EligibilitySettings | None = None) -> Decision:
    """The decision on an application, on its date, from the person's current ИПРА."""
    kind = application.request.kind
    if application.request.action == AccompanimentAction.stop:
        return decide_accompaniment_stop(application.application_date)
    return DECIDE[kind](Subject.of(application, ipra), application.application_date, settings)
