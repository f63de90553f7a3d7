"""Route templates as data (issue 11): the four templates load and say what the regulations
say, clause by clause; a template file with each kind of error is refused naming the file,
the step and the rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from models.ipra import Ipra, IpraExtract
from models.template_files import (
    TEMPLATE_DIR,
    TemplateFileError,
    describe,
    load_template_file,
    load_templates,
    parse_basis,
    parse_template,
)

SEEDS = Path("/work/shared/seeds")
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ipra-extract.json"


def _ipra(directions: set[str] | None = None) -> Ipra:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    if directions is not None:
        doc["ipra"]["measures"] = [m for m in doc["ipra"]["measures"]
                                   if m["direction"] in directions]
    return IpraExtract.model_validate(doc).ipra


def test_the_four_route_kinds_load() -> None:
    loaded = load_templates()
    assert sorted(loaded) == ["accompaniment", "early_help", "social_employment",
                              "supported_living"]
    assert {code: sorted(v) for code, v in loaded.items()} == {
        "accompaniment": [1, 2], "early_help": [1, 2], "social_employment": [1],
        "supported_living": [1, 2]}
    assert [s.kind for s in loaded["accompaniment"][2].steps] == [
        s.kind for s in loaded["accompaniment"][1].steps]  # v2 adds the ИПРА's measures only
    assert loaded["accompaniment"][2].from_ipra and not loaded["accompaniment"][1].from_ipra


def test_social_employment_is_the_six_mandatory_actions_in_order() -> None:
    """001 Регламент п.16: пп.1–6, necessary and mandatory, in this sequence; health
    monitoring (п.6 пп.8) recurs beside them; sport and culture (пп.10, пп.11) optional."""
    t = load_templates()["social_employment"][1]
    six = [s for s in t.steps if s.basis.startswith("001 Регламент п.16")]
    assert [s.basis.split()[3] for s in six] == [f"пп.{n}" for n in range(1, 7)]
    assert [s.kind for s in six] == ["need_determined", "conditions_created",
                                     "services_provided", "person_recorded",
                                     "services_recorded", "satisfaction_monitored"]
    assert not any(s.optional for s in six) and all(s.when.always for s in six)
    for before, after in zip(six, six[1:], strict=False):
        assert after.depends_on == (before.kind,)
    health = t.step("health_monitoring")
    assert health.recurring and health.basis.startswith("001 Регламент п.6 пп.8")
    assert t.step("sport").optional and t.step("culture").optional


def test_accompaniment_asks_sfr_only_when_the_ipra_has_technical_aids() -> None:
    """004 п.8: the СФР accompanies when the ИПРА has technical aids of the federal budget."""
    t = load_templates()["accompaniment"][1]
    with_aids = [s.kind for s in t.applicable(_ipra())]
    without = [s.kind for s in t.applicable(_ipra({"medical", "social"}))]
    assert "sfr_tsr_consulting" in with_aids and "mse_tsr_selection" in with_aids
    assert without == ["mse_informing", "rehabilitation_route", "route_support",
                       "situational_help"]
    assert [s.kind for s in t.applicable(None)] == without
    rt = t.route_template(parallel=True)  # every step: seq is the template's index
    assert [s.kind for s in rt.steps] == [s.kind for s in t.steps]
    assert rt.waits_for(0) == () and rt.waits_for(1) == ()  # МСЭ and the organisation at once
    assert rt.waits_for(4) == (1,)  # route_support after rehabilitation_route
    strict = t.route_template(parallel=False)  # each after the one before it
    assert [strict.waits_for(i) for i in range(3)] == [(), (0,), (0, 1)]
    # the clause of each step describes it (today's toy template cited п.6 for an extract)
    assert t.step("mse_informing").basis.startswith("004 п.6")
    assert t.step("rehabilitation_route").basis == "004 п.10 пп.б"


def _clauses(doc: str) -> set[int]:
    """The numbered clauses of a seed document (a line beginning "N." or "N.<tab>")."""
    [path] = SEEDS.glob(f"{doc}_*.txt")
    return {int(m.group(1)) for m in re.finditer(r"(?m)^\s*(\d{1,2})\.[\s\t]",
                                                  path.read_text(encoding="utf-8"))}


@pytest.mark.skipif(not SEEDS.exists(), reason="the source documents are not on this machine")
def test_every_cited_clause_exists_in_its_document() -> None:
    for versions in load_templates().values():
        for t in versions.values():
            for where, basis in [("template", t.basis), ("terms", t.terms.basis),
                                 *[(s.kind, s.basis) for s in t.steps]]:
                for part in re.split(r";\s*", re.sub(r"\(.*?\)", "", basis)):
                    m = re.match(r"(000|001|003|004)\b", part.strip())
                    if m is None:
                        continue
                    known = _clauses(m.group(1))
                    for n in re.findall(r"п\.(\d+)", part):
                        assert int(n) in known, f"{t.file} {where}: {m.group(1)} п.{n}"


def test_show_prints_each_step_with_its_clause() -> None:
    t = load_templates()["social_employment"][1]
    text = "\n".join(describe(t))
    for s in t.steps:
        assert s.kind in text and s.basis in text


# ------------------------------------------------------------------------------ bad files
GOOD: dict[str, Any] = {
    "code": "toy", "version": 1, "title": "Проба", "basis": "004 п.10",
    "steps": [
        {"kind": "a", "role": "mse", "requested": "Сведения", "basis": "004 п.6"},
        {"kind": "b", "role": "provider", "requested": "Маршрут", "basis": "004 п.10",
         "depends_on": ["a"]},
    ],
}


def _bad(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        target: Any = doc
        parts = path.split("__")
        for p in parts[:-1]:
            target = target[int(p)] if p.isdigit() else target[p]
        last = parts[-1]
        if value is ...:
            del target[int(last) if last.isdigit() else last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return doc


@pytest.mark.parametrize(("changes", "where", "rule"), [
    ({"code": ...}, "", "code: required"),
    ({"extra": 1}, "", "extra: unknown key"),
    ({"version": 0}, "", "version: must be a whole number >= 1"),
    ({"basis": "по закону"}, "", "basis: must cite a clause"),
    ({"steps": []}, "", "steps: at least one step"),
    ({"terms": {"answer_days": "пять"}}, "terms", "answer_days: must be a whole number"),
    ({"steps__1__kind": "a"}, "steps[1] (a)", "kind: already used"),
    ({"steps__1__kind": "B-2"}, "steps[1]", "kind: must match"),
    ({"steps__1__role": "police"}, "steps[1] (b)", "role: 'police' is not a participant role"),
    ({"steps__1__requested": "Route"}, "steps[1] (b)", "requested: the agency reads it"),
    ({"steps__1__requested": ...}, "steps[1] (b)", "requested: required"),
    ({"steps__1__basis": "004"}, "steps[1] (b)", "basis: must cite a clause"),
    ({"steps__1__basis": "001 п.16 пп.1"}, "steps[1] (b)", "say '001 Порядок' or '001 Регламент'"),
    ({"steps__1__basis": "004 Регламент п.10"}, "steps[1] (b)", "only 001 has parts"),
    ({"steps__1__basis": "004 п.10 пп.б пп.в"}, "steps[1] (b)", "пп. follows its clause"),
    ({"steps__1__basis": "004 п.10, 000 п.11"}, "steps[1] (b)", "one document per part"),
    ({"steps__1__basis": "004 п.10 (ТСР"}, "steps[1] (b)", "a '(' without its ')'"),
    ({"steps__1__basis": "по 004 п.10"}, "steps[1] (b)", "must begin with the document"),
    ({"steps__1__basis": "нет пункта: нет"}, "steps[1] (b)", "the reason no clause fits"),
    ({"basis": "нет пункта: ни один пункт не описывает этот маршрут целиком"}, "",
     "is for a step only"),
    ({"terms": {"basis": "нет пункта: документ не устанавливает сроков запроса"}}, "terms",
     "is for a step only"),
    ({"steps__1__optional": "нет"}, "steps[1] (b)", "optional: must be true or false"),
    ({"steps__1__deadline_days": 0}, "steps[1] (b)", "deadline_days: must be a whole number"),
    ({"steps__1__deadline_days": "60"}, "steps[1] (b)",
     "deadline_days: must be a whole number >= 1 (got '60')"),
    ({"from_ipra": "yes"}, "", "from_ipra: must be true or false"),
    ({"from_ipra": 1}, "", "from_ipra: must be true or false"),
    ({"terms": {"first_send_days": 2}}, "terms", "basis: required"),
    ({"terms": {"basis": "по Порядку п.10"}}, "terms", "basis: must cite a clause"),
    ({"terms": {"basis": "001 п.10"}}, "terms", "say '001 Порядок' or '001 Регламент'"),
    ({"terms": {"basis": ""}}, "terms", "basis: must be non-empty text"),
    ({"title": ...}, "", "title: required"),
    ({"title": "  "}, "", "title: must be non-empty text"),
    ({"terms": "1 день"}, "terms", "must be a table"),
    ({"steps__1__depends_on": ["c"]}, "steps[1] (b)", "depends_on: 'c' is not an earlier step"),
    ({"steps__0__depends_on": ["b"]}, "steps[0] (a)", "depends_on: 'b' is not an earlier"),
    ({"steps__1__depends_on": ["b"]}, "steps[1] (b)", "cannot depend on itself"),
    ({"steps__1__depends_on": ["a", "a"]}, "steps[1] (b)", "listed twice"),
    ({"steps__0__period_days": 20}, "steps[1] (b)", "depends_on: 'a' is recurring"),
    ({"steps__1__period_days": 0}, "steps[1] (b)", "period_days: must be a whole number >= 1"),
    ({"steps__1__answer_days": -5}, "steps[1] (b)", "answer_days: must be a whole number"),
    ({"steps__1__send_days": True}, "steps[1] (b)", "send_days: must be a whole number"),
    ({"steps__1__when": {"ipra_has": ["magic"]}}, "steps[1] (b)",
     "when.ipra_has: 'magic' is not a measure direction"),
    ({"steps__1__when": {"age": 3}}, "steps[1] (b): when", "age: unknown key"),
    ({"steps__1__when": "always"}, "steps[1] (b)", "when: must be a table"),
    ({"steps__0__when": {"ipra_has": ["technical_aids"]}}, "steps[1] (b)",
     "an unconditional step cannot wait for it"),
    ({"steps__1__colour": "red"}, "steps[1] (b)", "colour: unknown key"),
])
def test_a_template_with_each_kind_of_error_is_refused_naming_file_step_and_rule(
        changes: dict[str, Any], where: str, rule: str) -> None:
    with pytest.raises(TemplateFileError) as err:
        parse_template(_bad(**changes), "toy-v1.toml")
    assert err.value.file == "toy-v1.toml"
    assert err.value.where == where, str(err.value)
    assert rule in err.value.rule, str(err.value)
    assert str(err.value).startswith(f"toy-v1.toml: {where}: " if where else "toy-v1.toml: ")


def test_a_step_may_say_that_no_clause_describes_it() -> None:
    doc = _bad(steps__1__basis="нет пункта: 004 не описывает этот шаг; ближайшее — 004 п.10 "
                               "пп.б (формирование маршрута)")
    t = parse_template(doc, "toy-v1.toml")
    assert t.step("b").basis.startswith("нет пункта:")
    assert [str(c) for c in parse_basis(t.step("b").basis)] == ["004 п.10 пп.б"]
    assert t.terms.basis == "001 Порядок п.10, п.11"  # no [terms]: Kaliningrad's, stated


def test_all_steps_recurring_is_refused() -> None:
    doc = _bad(steps__1__depends_on=[], steps__0__period_days=5, steps__1__period_days=5)
    with pytest.raises(TemplateFileError, match="all are recurring"):
        parse_template(doc, "toy-v1.toml")


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_file_level_errors(tmp_path: Path) -> None:
    good = (TEMPLATE_DIR / "early_help-v1.toml").read_text(encoding="utf-8")
    with pytest.raises(TemplateFileError, match=r"^early-help\.toml: file name"):
        load_template_file(_write(tmp_path, "early-help.toml", good))
    with pytest.raises(TemplateFileError, match=r"^early_help-v2\.toml: code/version"):
        load_template_file(_write(tmp_path, "early_help-v2.toml", good))
    with pytest.raises(TemplateFileError, match=r"^broken-v1\.toml: toml: "):
        load_template_file(_write(tmp_path, "broken-v1.toml", "code = [\n"))
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(TemplateFileError, match="no template files"):
        load_templates(other)
    _write(other, "early_help-v1.toml", good)
    _write(other, "early_help-v3.toml", good.replace("version = 1", "version = 3"))
    with pytest.raises(TemplateFileError, match=r"^early_help: versions: must be 1..n"):
        load_templates(other)


def test_the_flow_run_state_says_which_parallel_steps_are_open() -> None:
    from datetime import date as day

    from models.routes import RouteStatus, StepStatus
    from tasks.prefect_mirror import RouteView, StepView, route_state

    def view(*statuses: StepStatus) -> RouteView:
        steps = [StepView(id=f"s{i}", seq=i, kind=f"k{i}", status=st, agency="МСЭ",
                          answer_by_date=day(2026, 1, 19), send_by_date=day(2026, 1, 13),
                          task_run_id=None, mirrored=None)
                 for i, st in enumerate(statuses)]
        return RouteView(id="rt_1", region="39", template="accompaniment",
                         status=RouteStatus.active, flow_run_id=None, mirrored=None,
                         steps=steps)

    two = route_state(view(StepStatus.awaiting, StepStatus.sending, StepStatus.planned))
    assert two.message is not None and two.message.startswith("открыто шагов: 2 из 3 — шаг 1 «k0»:")
    assert "; шаг 2 «k1»:" in two.message
    one = route_state(view(StepStatus.answered, StepStatus.awaiting, StepStatus.planned))
    assert one.message is not None and one.message.endswith("— шаг 2 из 3")


def test_a_basis_is_read_into_document_part_clause_and_subclause() -> None:
    text = ("000 п.10–12; 001 Регламент п.16 пп.2, п.6 пп.8 (периодичность; п.99 — в скобках "
            "не читается); 004 п.10 пп.б — настройка; организации здравоохранения — 003 п.1")
    assert [str(c) for c in parse_basis(text)] == [
        "000 п.10", "000 п.11", "000 п.12", "001 Регламент п.16 пп.2", "001 Регламент п.6 пп.8",
        "004 п.10 пп.б", "003 п.1"]
    with pytest.raises(ValueError, match="must begin with the document"):
        parse_basis("организации здравоохранения — 003 п.1")  # the first part cites
