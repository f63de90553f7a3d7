"""Every clause a route template cites exists in its document, in the right part and with
the cited sub-clause, and says what the step is (issue 11: "check every clause you cite
against the text").

The seed documents (``/work/shared/seeds``) are read into clauses: 000 and 003 are tables
(a clause is a row "N.<tab>…"), 001 has two parts each numbered from 1 (the Порядок of
supported living and the Регламент of social employment), 004 is the order's Порядок (its
own п.1–2 and the appendix's form are left out). Clauses are accepted only in sequence
(1, 2, 3 …), so a stray "2." inside a clause is not taken for one; sub-clauses are "N)"
(001) or a letter "а)" (004), also in sequence — 001 Регламент п.16 prints its sixth action
"б)", which a numeric list reads as "6)".

``KEY_WORDS`` says, for each step kind of each template, words that every clause the step
cites must contain: a citation with a wrong meaning (the right document, the wrong clause)
fails. A step whose basis says ``нет пункта:`` cites no clause for itself; the clauses it
names in passing must still exist. Every template file of the directories in force is
checked, so a new template (or a new version) is checked too — and a step kind without key
words fails until someone reads its clause and writes them here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from models.template_files import (
    NO_CLAUSE,
    Cite,
    TemplateSpec,
    load_template_file,
    parse_basis,
    template_dirs,
)

SEEDS = Path("/work/shared/seeds")
pytestmark = pytest.mark.skipif(not SEEDS.exists(),
                                reason="the source documents are not on this machine")

_LETTERS = "абвгдежзиклмн"


@dataclass(frozen=True)
class Clause:
    text: str
    subs: dict[str, str]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("ё", "е"))


def _in_sequence(text: str, pattern: str, first: str, following: dict[str, str],
                 ) -> list[tuple[str, int, int]]:
    """(label, start, end) of each numbered item of ``text`` whose label follows the one
    before it; the end is the next accepted item's start."""
    found: list[tuple[str, int]] = []
    expect = first
    for m in re.finditer(pattern, text, flags=re.MULTILINE):
        label = m.group(1)
        if label == "б" and expect == "6":
            label = "6"  # 001 Регламент п.16 prints "б)" for "6)"
        if label == expect:
            found.append((label, m.start()))
            expect = following.get(label, "")
    return [(label, start, found[i + 1][1] if i + 1 < len(found) else len(text))
            for i, (label, start) in enumerate(found)]


_NEXT_NUMBER = {str(n): str(n + 1) for n in range(1, 99)}
_NEXT_LETTER = dict(zip(_LETTERS, _LETTERS[1:], strict=False))


def _clauses(text: str, *, table: bool) -> dict[int, Clause]:
    head = r"^(\d{1,2})\.\t" if table else r"^(\d{1,2})\.\s"
    out: dict[int, Clause] = {}
    for label, start, end in _in_sequence(text, head, "1", _NEXT_NUMBER):
        body = text[start:end]
        subs: dict[str, str] = {}
        for first, following in (("1", _NEXT_NUMBER), ("а", _NEXT_LETTER)):
            items = _in_sequence(body, r"^\s*-?\s*(\d{1,2}|[а-я])\)\s", first, following)
            subs.update({lab: _norm(body[s:e]) for lab, s, e in items})
        out[int(label)] = Clause(_norm(body), subs)
    return out


def _between(text: str, start: str | None, end: str | None) -> str:
    i = text.index(start) + len(start) if start else 0
    j = text.index(end, i) if end else len(text)
    return text[i:j]


@cache
def document(doc: str, part: str | None) -> dict[int, Clause]:
    """The clauses of one document (and part, for 001)."""
    [path] = SEEDS.glob(f"{doc}_*.txt")
    text = path.read_text(encoding="utf-8")
    if doc == "000":
        return _clauses(_between(text, None, "\nПриложение 1"), table=True)
    if doc == "003":
        return _clauses(text, table=True)
    if doc == "004":
        return _clauses(_between(text, "*Приложение*", "*Приложение к порядку"), table=False)
    assert doc == "001" and part in ("Порядок", "Регламент"), (doc, part)
    if part == "Порядок":
        return _clauses(_between(text, "П О Р Я Д О К", "\nРЕГЛАМЕНТ"), table=False)
    return _clauses(_between(text, "\nРЕГЛАМЕНТ", None), table=False)


def clause_text(cite: Cite) -> str:
    """The text of a cited clause (its sub-clause when cited); AssertionError saying what is
    missing otherwise."""
    clauses = document(cite.doc, cite.part)
    where = f"{cite.doc} {cite.part}" if cite.part else cite.doc
    assert cite.clause in clauses, (f"{cite}: {where} has no п.{cite.clause} (it has "
                                    f"п.1–{max(clauses)})")
    clause = clauses[cite.clause]
    if cite.sub is None:
        return clause.text
    assert cite.sub in clause.subs, (f"{cite}: {where} п.{cite.clause} has no пп.{cite.sub} "
                                     f"(it has: {', '.join(clause.subs) or 'none'})")
    return clause.subs[cite.sub]


# The words each step's clause must contain (lower case, "е" for "ё"): every clause the
# step cites contains every word. Read from the clause itself, not from the step's text.
KEY_WORDS: dict[tuple[str, str], tuple[str, ...]] = {
    # 001 Регламент п.16: the six actions; п.6: the purposes of the exchange
    ("social_employment", "need_determined"): ("определение потребности",),
    ("social_employment", "conditions_created"): ("создание условий", "выделение помещений",
                                                  "оборудованием", "кадровое обеспечение"),
    ("social_employment", "services_provided"): ("предоставление услуг по социальной "
                                                 "занятости",),
    ("social_employment", "person_recorded"): ("учета лиц",),
    ("social_employment", "services_recorded"): ("учета предоставленных услуг",),
    ("social_employment", "satisfaction_monitored"): ("мониторинг удовлетворенности",),
    ("social_employment", "health_monitoring"): ("периодический мониторинг",
                                                 "состоянием здоровья"),
    ("social_employment", "sport"): ("физкультурных мероприятий",),
    ("social_employment", "culture"): ("культурных мероприятий",),
    # 000 п.10–15; 001 Порядок п.3
    ("supported_living", "need_assessment"): ("нуждаемости", "сопровождаемом проживании"),
    ("supported_living", "need_monitoring"): ("мониторинга нуждаемости", "ежегодно"),
    ("supported_living", "training_apartment"): ("квартир", "подготовки",
                                                 "при наличии возможности"),
    ("supported_living", "supported_housing"): ("услуг по сопровождаемому проживанию",),
    ("supported_living", "education"): ("образовани",),
    ("supported_living", "employment"): ("трудоустройстве",),
    ("supported_living", "social_employment"): ("социальной занятости",),
    # 004 п.6–10
    ("accompaniment", "mse_informing"): ("учреждением мсэ", "сопровождение"),
    ("accompaniment", "rehabilitation_route"): ("формирование индивидуального "
                                                "реабилитационного маршрута",),
    ("accompaniment", "mse_tsr_selection"): ("подборе технических средств реабилитации",
                                             "кабинета демонстрации"),
    ("accompaniment", "sfr_tsr_consulting"): ("территориальным органом фонда",
                                              "тср за счет средств федерального бюджета"),
    ("accompaniment", "route_support"): ("соблюдения сроков и полноты",),
    ("accompaniment", "situational_help"): ("ситуационного характера", "договоров"),
    # 003
    ("early_help", "need_recorded"): ("реестра детей целевой группы", "нуждающихся"),
    ("early_help", "provider_referral"): ("реестра", "поставщиков услуг"),
    ("early_help", "services_recorded"): ("реестра детей целевой группы",
                                          "получивших услуги"),
}
TERMS_WORDS = ("рабоч",)  # a term of the request: working days
"""Every clause a template's ``[terms]`` basis cites counts working days."""


def check_step(code: str, kind: str, basis: str) -> None:
    """The step's cited clauses exist and say what the step is (AssertionError naming the
    clause and the missing word)."""
    cites = parse_basis(basis)
    texts = [(c, clause_text(c)) for c in cites]
    if basis.startswith(NO_CLAUSE):
        return
    words = KEY_WORDS.get((code, kind))
    assert words is not None, (f"{code}.{kind}: no key words: read its clause ({basis}) and "
                               "add the words that say what the step is to KEY_WORDS")
    for cite, text in texts:
        for word in words:
            assert word in text, f"{code}.{kind}: {cite} does not say {word!r}"


def check_template(t: TemplateSpec) -> None:
    for c in parse_basis(t.basis):
        clause_text(c)
    for c in parse_basis(t.terms.basis):
        for word in TERMS_WORDS:
            assert word in clause_text(c), f"{t.file} terms: {c} does not count working days"
    for s in t.steps:
        check_step(t.code, s.kind, s.basis)


def _files() -> list[Path]:
    return sorted({p.name: p for d in template_dirs() for p in sorted(d.glob("*.toml"))}
                  .values())


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_every_clause_a_template_cites_exists_and_says_what_the_step_is(path: Path) -> None:
    check_template(load_template_file(path))


def test_the_documents_are_read_into_their_clauses() -> None:
    assert sorted(document("001", "Порядок")) == list(range(1, 15))
    assert sorted(document("001", "Регламент")) == list(range(1, 19))
    assert sorted(document("000", None)) == list(range(1, 23))
    assert sorted(document("004", None)) == list(range(1, 14))
    assert max(document("003", None)) == 31
    assert list(document("001", "Регламент")[16].subs) == ["1", "2", "3", "4", "5", "6"]
    assert list(document("001", "Регламент")[6].subs) == [str(n) for n in range(1, 12)]
    assert list(document("001", "Порядок")[3].subs) == [str(n) for n in range(1, 8)]
    assert list(document("004", None)[10].subs) == ["а", "б", "в"]
    assert list(document("004", None)[13].subs) == ["а", "б", "в"]
    assert document("004", None)[6].subs == {}


def test_the_six_social_employment_actions_find_their_words_in_their_own_subclause() -> None:
    """001 Регламент п.16 пп.1–6, in order: each action's words are in its sub-clause and
    in no other of the six."""
    six = ["need_determined", "conditions_created", "services_provided", "person_recorded",
           "services_recorded", "satisfaction_monitored"]
    for n, kind in enumerate(six, 1):
        check_step("social_employment", kind, f"001 Регламент п.16 пп.{n}")
        for other in set(range(1, 7)) - {n}:
            with pytest.raises(AssertionError, match="does not say"):
                check_step("social_employment", kind, f"001 Регламент п.16 пп.{other}")


@pytest.mark.parametrize(("code", "kind", "basis", "error"), [
    # the citations the audit found (before this change) are refused
    ("supported_living", "supported_housing", "000 п.10", "does not say"),
    ("supported_living", "need_assessment", "000 п.10; 001 Порядок п.9", "001 Порядок п.9 "
                                                                         "does not say"),
    ("supported_living", "satisfaction_check", "000 п.17", "no key words"),
    ("early_help", "individual_programme", "003 п.10", "no key words"),
    ("accompaniment", "mse_informing", "004 п.10 пп.а", "does not say"),
    # the right words in the wrong part: 001 Порядок has 14 clauses, no п.16
    ("social_employment", "need_determined", "001 Порядок п.16 пп.1", "Порядок has no п.16"),
    ("social_employment", "sport", "001 Порядок п.6 пп.10", "Порядок п.6 has no пп.10"),
    ("social_employment", "satisfaction_monitored", "001 Регламент п.16 пп.7", "no пп.7"),
    ("accompaniment", "situational_help", "004 п.10 пп.г", "no пп.г"),
    ("accompaniment", "sfr_tsr_consulting", "004 п.8 пп.а", "has no пп.а (it has: none)"),
    ("early_help", "need_recorded", "003 п.40", "003 has no п.40"),
    # "нет пункта": no words are asked, but the clauses it names must exist
    ("supported_living", "health_monitoring",
     "нет пункта: Порядок не устанавливает наблюдения за здоровьем (001 Порядок п.3 пп.9)",
     "no пп.9"),
])
def test_a_citation_with_a_wrong_clause_or_meaning_fails(code: str, kind: str, basis: str,
                                                         error: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(error)):
        check_step(code, kind, basis)


def test_terms_must_cite_clauses_that_count_working_days(tmp_path: Path) -> None:
    good = next(p for p in _files() if p.name == "early_help-v1.toml")
    text = good.read_text(encoding="utf-8")
    start = text.index('basis = "001 Порядок п.10, п.11')
    end = text.index("\n", start)
    bad = tmp_path / "early_help-v1.toml"
    bad.write_text(text[:start] + 'basis = "001 Порядок п.3"' + text[end:], encoding="utf-8")
    with pytest.raises(AssertionError, match="001 Порядок п.3 does not count working days"):
        check_template(load_template_file(bad))
