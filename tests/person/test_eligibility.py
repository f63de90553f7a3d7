"""Eligibility at its boundaries: ages 13/14, 17/18 (and 2/3) on the application date; degrees
1/2/3 of each category; the ИПРА's term; every decision explained."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.ages import Sex, age_on
from models.application import EarlyHelpGround, RequestKind, validate_application
from models.disability import DisabilityGroup
from models.eligibility import (
    NEEDS_HELP_CATEGORIES,
    Decision,
    EligibilitySettings,
    Subject,
    decide,
    decide_accompaniment,
    decide_early_help,
    decide_social_employment,
    decide_supported_living,
)
from models.ipra import Ipra, LimitationCategory
from tests.person.forms import DELETE, application, put
from tests.person.test_ipra import EXAMPLE

ON = date(2026, 1, 12)  # the application date
SNILS = "112-233-445 95"


def make_ipra(limitations: dict[LimitationCategory, int], born: date = date(1990, 5, 17),
              issued: date = date(2025, 11, 20), **changes: Any) -> Ipra:
    """The example ИПРА of a person born on ``born`` with these limitations; a child's (no
    measures, until 18) when they are under 18 on ``issued``."""
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))["ipra"]
    doc["subject"]["birth_date"] = born.isoformat()
    doc["issued_on"] = doc["valid_from"] = issued.isoformat()
    doc["limitations"] = [{"category": c.value, "degree": d} for c, d in limitations.items()]
    if age_on(born, issued) < 18:
        doc.update(kind="child", term="until_18", measures=[])
        del doc["valid_until"]
    for key, value in changes.items():
        doc = put(doc, key.replace("__", "."), value)
    return Ipra.model_validate(doc)


def subject(limitations: dict[LimitationCategory, int], born: date = date(1990, 5, 17),
            sex: Sex = Sex.female, group: DisabilityGroup | None = DisabilityGroup.second,
            ipra: Ipra | None | str = "make", **kw: Any) -> Subject:
    the_ipra = make_ipra(limitations, born) if ipra == "make" else ipra
    assert not isinstance(the_ipra, str)
    return Subject(snils=SNILS, birth_date=born, sex=sex, disability_group=group, ipra=the_ipra,
                   **kw)


def born_aged(years: int, on: date = ON, days_after_birthday: int = 0) -> date:
    """A birth date making the person exactly ``years`` on ``on`` (their birthday that day)."""
    return date(on.year - years, on.month, on.day) - timedelta(days=days_after_birthday)


def rule(decision: Decision, code: str) -> Any:
    return next(r for r in decision.rules if r.rule == code)


def assert_explained(decision: Decision) -> None:
    if decision.eligible:
        assert decision.explanation_ru is None
    else:
        text = decision.explanation_ru
        assert text is not None and "Что можно сделать" in text
        for failed in decision.failed:
            assert failed.reason_ru in text
    for r in decision.rules:
        assert r.clause and r.reason_ru


# --- accompaniment (004 п.1) ----------------------------------------------------------------

@pytest.mark.parametrize("category", list(LimitationCategory))
@pytest.mark.parametrize("degree", [1, 2, 3])
def test_accompaniment_by_category_and_degree(category: LimitationCategory, degree: int) -> None:
    decision = decide_accompaniment(subject({category: degree}), ON)
    expected = category in NEEDS_HELP_CATEGORIES and degree >= 2
    assert decision.eligible is expected
    facts = {f.name: f.value for f in rule(decision, "needs_outside_help").facts}
    if category in NEEDS_HELP_CATEGORIES:
        assert facts[f"limitation.{category.value}.degree"] == degree
    assert set(facts) == {f"limitation.{c.value}.degree" for c in NEEDS_HELP_CATEGORIES}
    assert rule(decision, "needs_outside_help").clause == "363н п.1"
    assert_explained(decision)


@given(st.dictionaries(st.sampled_from(list(LimitationCategory)), st.integers(1, 3)))
def test_accompaniment_is_any_of_five_at_degree_two(limits: dict[LimitationCategory, int]) -> None:
    decision = decide_accompaniment(subject(limits), ON)
    assert decision.eligible == any(limits.get(c, 0) >= 2 for c in NEEDS_HELP_CATEGORIES)


def test_accompaniment_within_the_ipras_term() -> None:
    limits = {LimitationCategory.movement: 2}
    s = subject(limits)
    assert decide_accompaniment(s, date(2027, 12, 1)).eligible  # the last day
    late = decide_accompaniment(s, date(2027, 12, 2))
    assert not late.eligible and [r.rule for r in late.failed] == ["ipra_in_force"]
    assert "не действует на 02.12.2027" in (late.explanation_ru or "")
    early = decide_accompaniment(s, date(2025, 11, 19))
    assert not early.eligible
    none = decide_accompaniment(subject(limits, ipra=None), ON)
    assert [r.rule for r in none.failed] == ["ipra_in_force", "needs_outside_help"]
    assert_explained(none)
    other = make_ipra(limits, **{"subject__snils": "068-619-801 04"})
    decision = decide_accompaniment(subject(limits, ipra=other), ON)
    assert "другому лицу" in rule(decision, "ipra_in_force").reason_ru
    assert not decision.eligible


# --- social employment (001 Регламент п.3) ---------------------------------------------------

WORK3 = {LimitationCategory.work: 3}


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_social_employment_work_degree(degree: int) -> None:
    decision = decide_social_employment(subject({LimitationCategory.work: degree}), ON)
    assert decision.eligible is (degree == 3)
    assert rule(decision, "work_degree_3").facts[0].value == degree
    assert_explained(decision)


@pytest.mark.parametrize(("age", "days_after", "eligible"), [
    (13, 1, False),  # 13: the 14th birthday is tomorrow
    (14, 0, True),   # 14 on the application date
    (17, 0, True),   # a disabled child aged 17
    (18, 0, True),   # 18: working age
])
def test_social_employment_ages(age: int, days_after: int, eligible: bool) -> None:
    born = born_aged(age, days_after_birthday=-days_after)
    group = DisabilityGroup.child if age < 18 else DisabilityGroup.second
    ipra = make_ipra(WORK3, born=born, issued=ON)  # an adult's from the 18th birthday
    decision = decide_social_employment(subject(WORK3, born=born, group=group, ipra=ipra), ON)
    age_rule = rule(decision, "social_employment_age")
    assert age_rule.passed is eligible and decision.eligible is eligible
    fact = age_rule.facts[0]
    assert (fact.name, fact.on) == ("age_years", ON)
    assert fact.value == (age - 1 if days_after else age)
    assert_explained(decision)


def test_social_employment_ends_at_retirement_age() -> None:
    man = date(1962, 3, 10)  # 64 years (400-ФЗ appendix 6)
    within = make_ipra(WORK3, born=man, valid_until="2028-12-01")
    s = subject(WORK3, born=man, sex=Sex.male, ipra=within)
    assert decide_social_employment(s, date(2026, 3, 9)).eligible
    out = decide_social_employment(s, date(2026, 3, 10))
    assert [r.rule for r in out.failed] == ["social_employment_age"]
    assert "окончился 10.03.2026" in out.failed[0].reason_ru
    woman = subject(WORK3, born=date(1966, 6, 1), sex=Sex.female,
                    ipra=make_ipra(WORK3, born=date(1966, 6, 1)))
    assert not decide_social_employment(woman, ON).eligible  # 58 years for 1966: retired 2024


@pytest.mark.parametrize(("recommendation", "eligible"), [
    ("simple_work_with_significant_help", True), ("work_with_conditions", False),
    ("work_contraindicated", False), (DELETE, True)])
def test_social_employment_needs_simple_work_with_help(recommendation: Any,
                                                       eligible: bool) -> None:
    ipra = make_ipra(WORK3, work_recommendation=recommendation)
    decision = decide_social_employment(subject(WORK3, ipra=ipra), ON)
    assert decision.eligible is eligible
    assert rule(decision, "simple_work_with_help").clause == "298-п Регламент п.3"
    assert decision.notes_ru  # the need is determined at the route's first step


# --- supported living (000 п.10) -------------------------------------------------------------

@pytest.mark.parametrize(("age", "eligible"), [(17, False), (18, True)])
def test_supported_living_from_18_on_the_date(age: int, eligible: bool) -> None:
    born = born_aged(age) if eligible else born_aged(18) + timedelta(days=1)
    group = DisabilityGroup.second if eligible else DisabilityGroup.child
    limits = {LimitationCategory.self_care: 2}
    decision = decide_supported_living(
        subject(limits, born=born, group=group, ipra=make_ipra(limits, born=born, issued=ON)), ON)
    assert rule(decision, "adult").passed is eligible and decision.eligible is eligible
    assert rule(decision, "adult").facts[0].value == age
    assert_explained(decision)


@pytest.mark.parametrize("category", list(LimitationCategory))
@pytest.mark.parametrize("degree", [1, 2, 3])
def test_supported_living_needs_regular_help(category: LimitationCategory, degree: int) -> None:
    decision = decide_supported_living(subject({category: degree}), ON)
    assert decision.eligible is (category in NEEDS_HELP_CATEGORIES and degree >= 2)
    assert rule(decision, "needs_help_supported_living").clause.startswith("000 п.10")
    assert any("оценкой" in n for n in decision.notes_ru)


# --- early help (003) ------------------------------------------------------------------------

def child(born: date, **kw: Any) -> Subject:
    return subject({LimitationCategory.movement: 1}, born=born, group=DisabilityGroup.child,
                   **kw)


@pytest.mark.parametrize(("born", "age", "eligible"), [
    (born_aged(2), 2, True),
    (born_aged(3) + timedelta(days=1), 2, True),  # the 3rd birthday is tomorrow
    (born_aged(3), 3, False),  # 3 on the application date
])
def test_early_help_age_bound(born: date, age: int, eligible: bool) -> None:
    decision = decide_early_help(child(born), ON)
    assert decision.eligible is eligible
    assert rule(decision, "early_age").facts[0].value == age
    assert_explained(decision)


def test_early_help_age_limit_is_a_setting() -> None:
    four = child(born_aged(4))
    assert not decide_early_help(four, ON).eligible
    decision = decide_early_help(four, ON, EligibilitySettings(early_help_age_limit_years=7))
    assert decision.eligible
    limit = {f.name: f.value for f in rule(decision, "early_age").facts}
    assert limit["early_help_age_limit_years"] == 7


def test_early_help_target_group() -> None:
    born = born_aged(1)
    nobody = subject({}, born=born, group=None, ipra=None)
    decision = decide_early_help(nobody, ON)
    assert [r.rule for r in decision.failed] == ["early_help_target_group"]
    assert_explained(decision)
    at_risk = subject({}, born=born, group=None, ipra=None,
                      early_help_grounds=frozenset({EarlyHelpGround.risk_of_limitation}))
    assert decide_early_help(at_risk, ON).eligible
    assert decide_early_help(subject({}, born=born, group=DisabilityGroup.child, ipra=None),
                             ON).eligible


# --- from an application ---------------------------------------------------------------------

def test_decide_from_an_application() -> None:
    app = validate_application(application()).value
    assert app is not None
    decision = decide(app, make_ipra({LimitationCategory.self_care: 2}))
    assert decision.route_kind == RequestKind.accompaniment and decision.eligible
    assert decision.decided_on == ON
    refused = decide(app, make_ipra({LimitationCategory.self_care: 1}))
    assert not refused.eligible
    text = refused.explanation_ru or ""
    assert "сопровождение при комплексной реабилитации" in text
    assert "МСЭ" in text and "обратиться в Министерство" in text
    stop = validate_application(put(put(application(), "request.action", "stop"),
                                    "request.participant", "mse")).value
    assert stop is not None
    decision = decide(stop, None)
    assert decision.eligible and [r.rule for r in decision.rules] == ["refusal_any_time"]
    dumped = Decision.model_validate_json(refused.model_dump_json())
    assert dumped == refused


def test_a_decision_carries_no_snils() -> None:
    limits = {LimitationCategory.movement: 2}
    other = make_ipra(limits, **{"subject__snils": "068-619-801 04"})
    for ipra in (make_ipra(limits), other):
        dumped = decide_accompaniment(subject(limits, ipra=ipra), ON).model_dump_json()
        assert SNILS not in dumped and "068-619-801 04" not in dumped
