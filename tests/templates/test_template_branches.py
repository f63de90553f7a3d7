"""Branches and a role chosen from the application in template files (issue 11).

supported_living v2 (000 п.10–15): education (п.13), employment (п.14) and social
employment (п.15) are branches the route's decision chooses, employment and social
employment alternatives, the satisfaction check after all of them. early_help v2 (003): the
identifying organisation's role is one of health, social protection, education. Each new
rule of the format is refused naming the file, where and the rule."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from models.agencies import AgencyRole
from models.template_files import (
    TEMPLATE_DIR,
    TemplateFileError,
    describe,
    load_templates,
    parse_template,
)
from models.templates import get_template


def _raw(name: str) -> dict[str, Any]:
    return tomllib.loads((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


def test_supported_living_v2_has_the_branches_as_the_issue_reads_000() -> None:
    t = load_templates()["supported_living"][2]
    assert t.branches == ("education", "employment", "social_employment")
    assert {s.kind: s.branch for s in t.steps if s.branch} == {
        "education": "education", "employment": "employment",
        "social_employment": "social_employment"}
    assert t.branching is not None and t.branching.after == "need_assessment"
    assert t.branching.alternatives == (("employment", "social_employment"),)
    assert t.step("education").basis.startswith("000 п.13")
    assert t.step("employment").basis == "000 п.14"
    assert t.step("social_employment").basis == "000 п.15"
    # the satisfaction check comes after every branch that applies
    assert set(t.step("satisfaction_check").depends_on) >= set(t.branches)
    # v1's loose citations are not repeated: п.10 is need, not housing
    assert "000 п.10" not in t.step("supported_housing").basis
    # no clause sets a per-person satisfaction check (000 п.17 is the region's yearly
    # monitoring): the basis says so (tests/templates/test_template_citations.py)
    assert t.step("satisfaction_check").basis.startswith("нет пункта:")
    # the engine's template knows the branch of each step
    rt = get_template("supported_living", 2)
    assert [s.branch for s in rt.steps if s.branch] == list(t.branches)
    text = "\n".join(describe(t))
    assert "взаимоисключающие: employment или social_employment" in text


def test_early_help_v2_takes_the_identifying_role_from_the_application() -> None:
    t = load_templates()["early_help"][2]
    first = t.steps[0]
    assert first.kind == "child_identified" and first.role is AgencyRole.health
    assert first.roles == (AgencyRole.health, AgencyRole.social_policy, AgencyRole.education)
    assert [s.kind for s in t.steps] == [s.kind for s in load_templates()["early_help"][1].steps]
    # 003 describes no identification and no individual programme: the bases say so
    assert first.basis.startswith("нет пункта: 003 не описывает выявления")
    assert t.step("individual_programme").basis.startswith(
        "нет пункта: 003 не предусматривает индивидуальной программы")
    assert get_template("early_help", 2).steps[0].roles == first.roles


def _sl(**edit: Any) -> dict[str, Any]:
    raw = copy.deepcopy(_raw("supported_living-v2.toml"))
    for key, value in edit.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def _step(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    step: dict[str, Any] = next(s for s in raw["steps"] if s["kind"] == kind)
    return step


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.pop("branching"), r"branching: required: steps name branches"),
    (lambda r: r["branching"].update(after="nope"), r"branching: after: must be a step kind"),
    (lambda r: r["branching"].update(after="education"),
     r"branching: after: 'education' must be a step that ends and is not itself a branch"),
    (lambda r: r["branching"].update(after="need_monitoring"),
     r"'need_monitoring' must be a step that ends"),
    (lambda r: r["branching"].update(alternatives=[["employment"]]),
     r"branching: alternatives: each group must list at least two branches"),
    (lambda r: r["branching"].update(alternatives=[["employment", "sport"]]),
     r"branching: alternatives: 'sport' is not a branch of any step"),
    (lambda r: r["branching"].update(alternatives=[["employment", "education"],
                                                  ["employment", "social_employment"]]),
     r"'employment' is in two groups"),
    (lambda r: r["branching"].pop("basis"), r"branching: basis: required"),
    (lambda r: r["branching"].update(why="x"), r"branching: why: unknown key"),
    (lambda r: _step(r, "education").update(branch="Education"),
     r"steps\[4\] \(education\): branch: must match"),
    (lambda r: _step(r, "education").update(when={"ipra_has": ["professional"]}),
     r"steps\[4\] \(education\): branch: a branch step applies by the route's decision"),
])
def test_each_branch_rule_is_refused_naming_where_and_the_rule(change: Any,
                                                              message: str) -> None:
    raw = _sl()
    change(raw)
    with pytest.raises(TemplateFileError, match=message) as err:
        parse_template(raw, "supported_living-v2.toml")
    assert str(err.value).startswith("supported_living-v2.toml: ")


def test_branching_without_branch_steps_is_refused() -> None:
    raw = _raw("social_employment-v1.toml")
    raw["branching"] = {"after": "need_determined", "basis": "001 Регламент п.16"}
    with pytest.raises(TemplateFileError, match=r"branching: no step names a branch"):
        parse_template(raw, "social_employment-v1.toml")


@pytest.mark.parametrize(("roles", "message"), [
    (["health"], r"roles: must be a list of at least two different participant roles"),
    (["health", "health"], r"roles: must be a list of at least two different"),
    (["health", "school"], r"roles: 'school' is not a participant role"),
    (["social_policy", "education"], r"roles: must include the step's role 'health'"),
])
def test_each_roles_rule_is_refused(roles: list[str], message: str) -> None:
    raw = copy.deepcopy(_raw("early_help-v2.toml"))
    raw["steps"][0]["roles"] = roles
    with pytest.raises(TemplateFileError,
                       match=r"early_help-v2.toml: steps\[0\] \(child_identified\): " + message):
        parse_template(raw, "early_help-v2.toml")
