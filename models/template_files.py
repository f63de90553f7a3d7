"""Route templates as data: one TOML file per template version, validated when loaded.

A template says what a route of one kind is made of, as the regulations describe it; a
reader checks it against the regulation clause by clause (``rehab template show CODE``). The
files live in ``models/route_templates/``, named ``<code>-v<version>.toml``; a route keeps
the version it started with, so a published version is never edited — a change is the next
version in a new file.

A file::

    code = "social_employment"        # the file's name: social_employment-v1.toml
    version = 1
    title = "Социальная занятость инвалидов"
    basis = "001 Регламент п.3, п.16"
    from_ipra = false                  # true: the ИПРА's measures become steps (004 п.10б)

    [terms]                            # optional; given, it needs its basis
    first_send_days = "region"         # the route's region's act (298-п Порядок п.10)
    later_send_days = 1                # a later step: from the end of the one before it
    answer_days = "region"             # the region's act (298-п Порядок п.11, Регламент п.12)
    basis = "001 Порядок п.10, п.11"

    [[steps]]
    kind = "need_determined"           # [a-z][a-z0-9_]*, unique in the template
    role = "social_policy"             # models.agencies.AgencyRole
    requested = "Определение потребности …"   # Russian: what the agency is asked
    basis = "001 Регламент п.16 пп.1"  # the clause: <document> [part] п.<n> [пп.<x>]
    optional = false                   # optional: a supervisor may close it, the route goes on
    depends_on = []                    # kinds of earlier steps it waits for
    when = { ipra_has = ["technical_aids"] }  # applies only then (else the step is left out)
    period_days = 20                   # recurring: a new request every N working days
    send_days = 1                      # overrides [terms] (a number or "region")
    answer_days = 5
    deadline_days = 60                 # complete within N working days of registration
    branch = "employment"              # applies only when the route's decision chooses it
    roles = ["health", "education"]    # the role is one of these, taken from the application

    [branching]                        # required when a step names a branch
    after = "need_assessment"          # the decision records this step's conclusion
    alternatives = [["employment", "social_employment"]]   # at most one of each group
    basis = "000 п.10, п.14, п.15"

A basis cites clauses of the source documents (``../shared/seeds``): ``<document>`` (000,
001, 003, 004), for 001 its part (``Порядок`` or ``Регламент``: both number their clauses from
1), then ``п.<n>`` (or a range ``п.<n>–<m>``), each optionally with ``пп.<x>`` (a digit or a
letter); several clauses of one document are joined by commas, documents by ``;``; a
parenthesised remark, a trailing `` — remark`` or a later ``;`` part that does not begin
with a document is free text (``parse_basis``; the clauses named in the latter are read).
Where no clause describes a step, its basis says so: ``basis = "нет пункта: <why, and the
nearest clauses>"`` (steps only; the explanation is required, and the clauses it names must
be well-formed too).

A term is a number of working days — the template's own, kept in every region — or
``"region"`` (also when not stated): the act of the route's region sets it (its
``models/region_rules`` file, else the default region's, 298-п: ``models.regions``). The
precedence is explicit, never inferred from a value.

Every rule broken is reported as ``TemplateFileError``: the file, the step (its index and
kind), the field and the rule — at start-up (``load_templates``) and by ``rehab template
validate``.

The setting ``REHAB_TEMPLATE_DIR`` (``ENV_DIR``; ``docs/configuration.md``) names a further
directory of template files: its files are added to the package's, and a file of the same
name replaces the package's (a region's or a test's own templates). The processes read it at
start-up; a bad file there stops them as a bad file of the package would.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.agencies import AgencyRole
from models.ipra import Ipra, MeasureDirection
from models.labels import DIRECTION_SHORT_RU
from models.templates import RouteTemplate, StepTemplate

TEMPLATE_DIR = Path(__file__).resolve().parent / "route_templates"
REGION_TERM = "region"
"""A term the act of the route's region sets (``models.regions``), not the template."""
ENV_DIR = "REHAB_TEMPLATE_DIR"
"""The further directory of template files (``Settings.template_dir``)."""

_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FILE_RE = re.compile(r"^(?P<code>[a-z][a-z0-9_]{0,39})-v(?P<version>[1-9][0-9]*)\.toml$")
NO_CLAUSE = "нет пункта:"
"""A step's basis that begins so says that no clause of the documents describes the step."""
_NO_CLAUSE_MIN = 30
_DOCS = ("000", "001", "003", "004")
_TOKEN = re.compile(r"(?P<doc>\b(?:000|001|003|004)\b)|(?P<part>Порядок|Регламент)"
                    r"|(?P<sub>пп\.\s*(?P<subval>\d{1,2}|[а-я])(?![а-я\d]))"
                    r"|(?P<clause>п\.\s*(?P<low>\d{1,2})(?:\s*[–-]\s*(?P<high>\d{1,2}))?(?!\d))"
                    r"|(?P<comma>,)|(?P<ws>\s+)|(?P<other>.)")
_DOC_FIRST = re.compile(r"\s*(?:000|001|003|004)\b")
_REF_IN_TEXT = re.compile(r"\b(?:000|001|003|004)\s+(?:(?:Порядок|Регламент)\s+)?"
                          r"п\.\s*\d{1,2}(?:\s*[–-]\s*\d{1,2})?(?:\s*пп\.\s*(?:\d{1,2}|[а-я]))?"
                          r"(?:\s*,\s*п\.\s*\d{1,2}(?:\s*[–-]\s*\d{1,2})?"
                          r"(?:\s*пп\.\s*(?:\d{1,2}|[а-я]))?)*")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")

_TOP_KEYS = {"code", "version", "title", "basis", "terms", "steps", "from_ipra", "branching"}
_TERM_KEYS = {"first_send_days", "later_send_days", "answer_days", "basis"}
_STEP_KEYS = {"kind", "role", "requested", "basis", "optional", "depends_on", "when",
              "period_days", "send_days", "answer_days", "deadline_days", "branch", "roles"}
_WHEN_KEYS = {"ipra_has"}
_BRANCHING_KEYS = {"after", "alternatives", "basis"}


class BasisError(ValueError):
    """A basis that does not cite clauses in the form ``parse_basis`` reads (the rule)."""


@dataclass(frozen=True)
class Cite:
    """One cited clause: the document (000, 001, 003, 004), its part (001 only: Порядок or
    Регламент), the clause number and the sub-clause (``пп.``: a digit or a letter), if any."""

    doc: str
    part: str | None
    clause: int
    sub: str | None = None

    def __str__(self) -> str:
        part = f" {self.part}" if self.part else ""
        sub = f" пп.{self.sub}" if self.sub else ""
        return f"{self.doc}{part} п.{self.clause}{sub}"


def _cites_of_segment(segment: str) -> list[Cite]:
    """``<doc> [part] п.<n>[–<m>] [пп.<x>], п.<n> …`` — one document's clauses."""
    out: list[Cite] = []
    doc: str | None = None
    part: str | None = None
    for m in _TOKEN.finditer(segment):
        if m.group("ws") or m.group("comma"):
            continue
        if doc is None and not m.group("doc"):
            raise BasisError(f"{segment.strip()!r}: must begin with the document "
                             f"({', '.join(_DOCS)})")
        if m.group("doc"):
            if doc is not None:
                raise BasisError(f"{segment.strip()!r}: one document per part; separate "
                                 "documents with ';'")
            doc = m.group("doc")
        elif m.group("part"):
            if out or part is not None:
                raise BasisError(f"{segment.strip()!r}: the part (Порядок/Регламент) comes "
                                 "right after the document")
            part = m.group("part")
        elif m.group("clause"):
            assert doc is not None  # the segment's first token is its document (above)
            low = int(m.group("low"))
            high = int(m.group("high") or low)
            if high < low:
                raise BasisError(f"{segment.strip()!r}: the range п.{low}–{high} runs "
                                 "backwards")
            out.extend(Cite(doc, part, n) for n in range(low, high + 1))
        elif m.group("sub"):
            if not out or out[-1].sub is not None:
                raise BasisError(f"{segment.strip()!r}: пп. follows its clause (п.<n> пп.<x>)")
            last = out.pop()
            out.append(Cite(last.doc, last.part, last.clause, m.group("subval")))
        else:
            raise BasisError(f"{segment.strip()!r}: unexpected {m.group(0)!r} (a remark goes "
                             "in parentheses or after ' — ')")
    if doc is None or not out:
        raise BasisError(f"{segment.strip()!r}: must cite a clause: <document> [part] п.<n>")
    if doc == "001" and part is None:
        raise BasisError(f"{segment.strip()!r}: 001 has two parts numbered from 1: say "
                         "'001 Порядок' or '001 Регламент'")
    if doc != "001" and part is not None:
        raise BasisError(f"{segment.strip()!r}: only 001 has parts (Порядок, Регламент)")
    return out


def _without_remarks(text: str) -> str:
    depth, out = 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                raise BasisError(f"{text!r}: a ')' without its '('")
            depth -= 1
        elif depth == 0:
            out.append(ch)
    if depth:
        raise BasisError(f"{text!r}: a '(' without its ')'")
    return "".join(out)


def parse_basis(text: str) -> tuple[Cite, ...]:
    """The clauses a basis cites, in order (``BasisError`` naming the rule otherwise).

    ``"001 Регламент п.16 пп.2"``, ``"004 п.10 пп.б"``, ``"000 п.11, п.13"``,
    ``"000 п.10–15; 001 Порядок п.9–11"``; parenthesised remarks, a trailing `` — remark``
    of a part, and a part after the first that does not begin with a document are free text
    (the clauses such a part names — ``… — 003 п.1`` — are returned all the same). A basis
    beginning ``нет пункта:`` (``NO_CLAUSE``) states that no clause describes the step: it
    must explain why in at least 30 characters, and the clauses it names in passing
    (``<document> [part] п.<n> …``) are returned, so that they too can be checked against
    the documents."""
    text = text.strip()
    if text.startswith(NO_CLAUSE):
        why = text[len(NO_CLAUSE):].strip()
        if len(why) < _NO_CLAUSE_MIN or not _CYRILLIC.search(why):
            raise BasisError(f"'{NO_CLAUSE}' must be followed by the reason no clause fits "
                             f"(in Russian, at least {_NO_CLAUSE_MIN} characters)")
        return tuple(c for m in _REF_IN_TEXT.finditer(why)
                     for c in _cites_of_segment(m.group(0)))
    cites: list[Cite] = []
    for i, segment in enumerate(_without_remarks(text).split(";")):
        if i and not _DOC_FIRST.match(segment):
            # a remark after the first citation: the clauses it names are read all the same
            cites.extend(c for m in _REF_IN_TEXT.finditer(segment)
                         for c in _cites_of_segment(m.group(0)))
            continue
        cites.extend(_cites_of_segment(segment.split(" — ", 1)[0]))
    return tuple(cites)


class TemplateFileError(ValueError):
    """A template file breaks a rule: ``file``, ``where`` (the step or the section), the
    field and the rule, in one line."""

    def __init__(self, file: str, where: str, rule: str) -> None:
        super().__init__(f"{file}: {where}: {rule}" if where else f"{file}: {rule}")
        self.file, self.where, self.rule = file, where, rule


@dataclass(frozen=True)
class Condition:
    """When a step applies. ``ipra_has``: the person's ИПРА lists a measure of one of these
    directions (e.g. technical aids: 004 п.8). Empty: always."""

    ipra_has: tuple[MeasureDirection, ...] = ()

    @property
    def always(self) -> bool:
        return not self.ipra_has

    def holds(self, ipra: Ipra | None) -> bool:
        """Whether the step applies for this ИПРА (no ИПРА: only unconditional steps)."""
        if self.always:
            return True
        if ipra is None:
            return False
        return any(m.direction in self.ipra_has for m in ipra.measures)

    def describe(self) -> str:
        if self.always:
            return "всегда"
        return "если в ИПРА есть мероприятия: " + ", ".join(
            f"{DIRECTION_SHORT_RU[d]} ({d.value})" for d in self.ipra_has)

    def describe_ru(self) -> str:
        """For a page: the directions' Russian names only (no codes)."""
        if self.always:
            return "всегда"
        return "если в ИПРА есть мероприятия: " + ", ".join(
            DIRECTION_SHORT_RU[d] for d in self.ipra_has)


@dataclass(frozen=True)
class Terms:
    """The template's send and answer terms in working days, and their basis."""

    first_send_days: int | None = None
    later_send_days: int | None = None
    answer_days: int | None = None
    """None: ``"region"`` — the act of the route's region sets the term."""
    basis: str = "001 Порядок п.10, п.11"


@dataclass(frozen=True)
class StepSpec:
    """One step of a template file."""

    kind: str
    role: AgencyRole
    requested: str
    basis: str
    send_days: int | None
    answer_days: int | None
    """None: the route's region's act sets the term (``"region"``)."""
    optional: bool = False
    depends_on: tuple[str, ...] = ()
    when: Condition = field(default_factory=Condition)
    period_days: int | None = None
    deadline_days: int | None = None
    branch: str | None = None
    """The branch the step belongs to: it applies only when the route's branch decision
    chooses it (``engine.routes.branches``), and is closed as not applicable otherwise."""
    roles: tuple[AgencyRole, ...] = ()
    """The roles the step's participant may have (``role`` is one of them, the default):
    the role is taken from the application when the route is formed (early help, 003: the
    organisation that identified the child)."""

    @property
    def recurring(self) -> bool:
        return self.period_days is not None


@dataclass(frozen=True)
class Branching:
    """How a route's branches are decided: a coordinator records the person's choice
    together with the conclusion of step ``after`` (000 п.10: the need assessment); at most
    one branch of each group of ``alternatives`` is chosen."""

    after: str
    alternatives: tuple[tuple[str, ...], ...]
    basis: str

    def alternative_of(self, branch: str) -> tuple[str, ...]:
        """The group of alternatives ``branch`` is in (empty: none)."""
        return next((g for g in self.alternatives if branch in g), ())


@dataclass(frozen=True)
class TemplateSpec:
    """One version of a template, as its file says."""

    code: str
    version: int
    title: str
    basis: str
    terms: Terms
    steps: tuple[StepSpec, ...]
    file: str
    from_ipra: bool = False
    """004 п.10 пп.б: the route also carries out the person's ИПРА — each measure a step for
    its executor, due by its deadline, after the template's steps (``models.ipra_plan``)."""
    branching: Branching | None = None

    @property
    def branches(self) -> tuple[str, ...]:
        """The template's branch names, in the order of their first step."""
        return tuple(dict.fromkeys(s.branch for s in self.steps if s.branch))

    def step(self, kind: str) -> StepSpec:
        return next(s for s in self.steps if s.kind == kind)

    def applicable(self, ipra: Ipra | None) -> tuple[StepSpec, ...]:
        """The steps that apply for the person's ИПРА (each step's condition), in order."""
        return tuple(s for s in self.steps if s.when.holds(ipra))

    def route_template(self, *, parallel: bool = True) -> RouteTemplate:
        """Every step, as the engine's ``RouteTemplate`` (in the file's order, so that a
        route's step ``seq`` is the template's index: a step whose condition does not hold
        is formed as not applicable, ``engine.routes``). ``parallel``: steps wait for their
        ``depends_on`` only (the product's way: parallel where the template allows, in strict
        order where it chains them); False: each waits for the one before it."""
        return RouteTemplate(
            code=self.code, title=self.title, basis=self.basis,
            steps=tuple(StepTemplate(kind=s.kind, role=s.role, requested=s.requested,
                                     basis=s.basis, answer_days=s.answer_days,
                                     send_days=s.send_days, optional=s.optional,
                                     depends_on=s.depends_on if parallel else None,
                                     deadline_days=s.deadline_days,
                                     period_days=s.period_days, branch=s.branch,
                                     roles=s.roles)
                        for s in self.steps))


# ---------------------------------------------------------------------------- validation
def _int(value: object, file: str, where: str, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise TemplateFileError(file, where, f"{name}: must be a whole number >= {low} "
                                             f"(got {value!r})")
    return value


def _term(value: object, file: str, where: str, name: str) -> int | None:
    """A term: a whole number of working days (the template's own) or "region" / not stated
    (None: the route's region's act sets it)."""
    if value is None or value == REGION_TERM:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TemplateFileError(file, where, f"{name}: must be a whole number >= 1 (the "
                                             f"template's own term) or \"{REGION_TERM}\" (the "
                                             f"region's act sets it); got {value!r}")
    return value


def _text(value: object, file: str, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TemplateFileError(file, where, f"{name}: must be non-empty text")
    return value.strip()


def _basis(value: object, file: str, where: str, *, step: bool = False) -> str:
    text = _text(value, file, where, "basis")
    if text.startswith(NO_CLAUSE) and not step:
        raise TemplateFileError(file, where, f"basis: '{NO_CLAUSE}' is for a step only: a "
                                             "template and its terms cite their clauses")
    try:
        parse_basis(text)
    except BasisError as exc:
        raise TemplateFileError(file, where, "basis: must cite a clause of a source document, "
                                             "e.g. '001 Регламент п.16 пп.1', '004 п.10 пп.б' "
                                             f"or '{NO_CLAUSE} <why>': {exc}") from None
    return text


def _only(table: Mapping[str, Any], allowed: set[str], file: str, where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise TemplateFileError(file, where, f"{extra[0]}: unknown key (allowed: "
                                             f"{', '.join(sorted(allowed))})")


def _condition(raw: object, file: str, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise TemplateFileError(file, where, "when: must be a table, e.g. "
                                             "{ ipra_has = [\"technical_aids\"] }")
    _only(raw, _WHEN_KEYS, file, f"{where}: when")
    items = raw.get("ipra_has", [])
    if not isinstance(items, list) or not items:
        raise TemplateFileError(file, where, "when.ipra_has: must be a non-empty list of "
                                             "measure directions")
    known = {d.value for d in MeasureDirection}
    for item in items:
        if item not in known:
            raise TemplateFileError(file, where, f"when.ipra_has: {item!r} is not a measure "
                                                 f"direction ({', '.join(sorted(known))})")
    return Condition(ipra_has=tuple(MeasureDirection(i) for i in items))


def _step(raw: object, i: int, terms: Terms, earlier: Mapping[str, StepSpec],
          file: str) -> StepSpec:
    where = f"steps[{i}]"
    if not isinstance(raw, dict):
        raise TemplateFileError(file, where, "must be a table ([[steps]])")
    kind = raw.get("kind")
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise TemplateFileError(file, where, f"kind: must match [a-z][a-z0-9_]* (got {kind!r})")
    where = f"steps[{i}] ({kind})"
    _only(raw, _STEP_KEYS, file, where)
    if kind in earlier:
        raise TemplateFileError(file, where, "kind: already used by an earlier step")
    for key in ("role", "requested", "basis"):
        if key not in raw:
            raise TemplateFileError(file, where, f"{key}: required")
    try:
        role = AgencyRole(raw["role"])
    except ValueError:
        raise TemplateFileError(file, where, f"role: {raw['role']!r} is not a participant "
                                             f"role ({', '.join(r.value for r in AgencyRole)})"
                                ) from None
    requested = _text(raw["requested"], file, where, "requested")
    if not _CYRILLIC.search(requested):
        raise TemplateFileError(file, where, "requested: the agency reads it: write it in "
                                             "Russian")
    basis = _basis(raw["basis"], file, where, step=True)
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise TemplateFileError(file, where, "optional: must be true or false")
    deps = raw.get("depends_on", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise TemplateFileError(file, where, "depends_on: must be a list of step kinds")
    for dep in deps:
        if dep == kind:
            raise TemplateFileError(file, where, "depends_on: a step cannot depend on itself")
        if dep not in earlier:
            raise TemplateFileError(file, where, f"depends_on: {dep!r} is not an earlier step "
                                                 "(a step depends only on steps above it)")
        if earlier[dep].recurring:
            raise TemplateFileError(file, where, f"depends_on: {dep!r} is recurring: it ends "
                                                 "only with the route")
    if len(set(deps)) != len(deps):
        raise TemplateFileError(file, where, "depends_on: a step is listed twice")
    when = _condition(raw["when"], file, where) if "when" in raw else Condition()
    for dep in deps:
        if not earlier[dep].when.always and when.always:
            raise TemplateFileError(file, where, f"depends_on: {dep!r} applies only "
                                                 f"{earlier[dep].when.describe()}; an "
                                                 "unconditional step cannot wait for it")
    period = raw.get("period_days")
    deadline = raw.get("deadline_days")
    branch = raw.get("branch")
    if branch is not None:
        if not isinstance(branch, str) or not _KIND_RE.match(branch):
            raise TemplateFileError(file, where, f"branch: must match [a-z][a-z0-9_]* (got "
                                                 f"{branch!r})")
        if "when" in raw or period is not None:
            raise TemplateFileError(file, where, "branch: a branch step applies by the "
                                                 "route's decision; it cannot also have "
                                                 "`when` or `period_days`")
    roles = _roles(raw["roles"], role, file, where) if "roles" in raw else ()
    first = not earlier
    send_default = terms.first_send_days if first else terms.later_send_days
    return StepSpec(
        kind=kind, role=role, requested=requested, basis=basis,
        send_days=_term(raw.get("send_days", send_default), file, where, "send_days"),
        answer_days=_term(raw.get("answer_days", terms.answer_days), file, where,
                          "answer_days"),
        optional=optional, depends_on=tuple(deps), when=when,
        period_days=None if period is None else _int(period, file, where, "period_days"),
        deadline_days=None if deadline is None else _int(deadline, file, where,
                                                         "deadline_days"),
        branch=branch, roles=roles)


def _roles(raw: object, default: AgencyRole, file: str, where: str) -> tuple[AgencyRole, ...]:
    known = {r.value for r in AgencyRole}
    if not isinstance(raw, list) or len(raw) < 2 or len(set(map(str, raw))) != len(raw):
        raise TemplateFileError(file, where, "roles: must be a list of at least two different "
                                             "participant roles")
    for item in raw:
        if item not in known:
            raise TemplateFileError(file, where, f"roles: {item!r} is not a participant role "
                                                 f"({', '.join(sorted(known))})")
    if default.value not in raw:
        raise TemplateFileError(file, where, f"roles: must include the step's role "
                                             f"{default.value!r} (the default)")
    return tuple(AgencyRole(r) for r in raw)


def _branching(raw: object, steps: Mapping[str, StepSpec], file: str) -> Branching | None:
    """``[branching]``: required exactly when a step names a branch."""
    named = {s.branch for s in steps.values() if s.branch}
    if raw is None:
        if named:
            raise TemplateFileError(file, "branching", "required: steps name branches ("
                                                       f"{', '.join(sorted(named))})")
        return None
    if not isinstance(raw, dict):
        raise TemplateFileError(file, "branching", "must be a table ([branching])")
    _only(raw, _BRANCHING_KEYS, file, "branching")
    if not named:
        raise TemplateFileError(file, "branching", "no step names a branch (step key "
                                                   "`branch`)")
    after = raw.get("after")
    if not isinstance(after, str) or after not in steps:
        raise TemplateFileError(file, "branching", f"after: must be a step kind (got "
                                                   f"{after!r})")
    if steps[after].branch or steps[after].recurring:
        raise TemplateFileError(file, "branching", f"after: {after!r} must be a step that "
                                                   "ends and is not itself a branch")
    groups = raw.get("alternatives", [])
    if not isinstance(groups, list):
        raise TemplateFileError(file, "branching", "alternatives: must be a list of lists "
                                                   "of branch names")
    seen: set[str] = set()
    out: list[tuple[str, ...]] = []
    for group in groups:
        if not isinstance(group, list) or len(group) < 2:
            raise TemplateFileError(file, "branching", "alternatives: each group must list "
                                                       "at least two branches")
        for name in group:
            if name not in named:
                raise TemplateFileError(file, "branching", f"alternatives: {name!r} is not "
                                                           "a branch of any step")
            if name in seen:
                raise TemplateFileError(file, "branching", f"alternatives: {name!r} is in "
                                                           "two groups")
            seen.add(name)
        out.append(tuple(group))
    basis = _basis(raw["basis"], file, "branching") if "basis" in raw else ""
    if not basis:
        raise TemplateFileError(file, "branching", "basis: required (the clauses that let "
                                                   "the person choose)")
    return Branching(after=after, alternatives=tuple(out), basis=basis)


def _terms_without_basis(terms_raw: Mapping[str, Any], file: str) -> str:
    """No ``[terms]``: Kaliningrad's terms with their basis (``Terms``). A ``[terms]`` table
    states its own terms, so it states their basis too (not a silent assumption)."""
    if terms_raw:
        raise TemplateFileError(file, "terms", "basis: required: the clauses the terms rest "
                                               "on, e.g. '001 Порядок п.10, п.11'")
    return Terms.basis


def parse_template(raw: Mapping[str, Any], file: str, *, expect_code: str | None = None,
                   expect_version: int | None = None) -> TemplateSpec:
    """Validate a parsed template file; TemplateFileError naming the first rule broken."""
    _only(raw, _TOP_KEYS, file, "")
    for key in ("code", "version", "title", "basis", "steps"):
        if key not in raw:
            raise TemplateFileError(file, "", f"{key}: required")
    code = raw["code"]
    if not isinstance(code, str) or not _KIND_RE.match(code):
        raise TemplateFileError(file, "", f"code: must match [a-z][a-z0-9_]* (got {code!r})")
    version = _int(raw["version"], file, "", "version")
    if expect_code is not None and (code, version) != (expect_code, expect_version):
        raise TemplateFileError(file, "", f"code/version: the file is named for {expect_code} "
                                          f"v{expect_version} but holds {code} v{version}")
    title = _text(raw["title"], file, "", "title")
    basis = _basis(raw["basis"], file, "")
    terms_raw = raw.get("terms", {})
    if not isinstance(terms_raw, dict):
        raise TemplateFileError(file, "terms", "must be a table ([terms])")
    _only(terms_raw, _TERM_KEYS, file, "terms")
    terms = Terms(
        first_send_days=_term(terms_raw.get("first_send_days"), file, "terms",
                              "first_send_days"),
        later_send_days=_term(terms_raw.get("later_send_days"), file, "terms",
                              "later_send_days"),
        answer_days=_term(terms_raw.get("answer_days"), file, "terms", "answer_days"),
        basis=_basis(terms_raw["basis"], file, "terms") if "basis" in terms_raw
        else _terms_without_basis(terms_raw, file))
    steps_raw = raw["steps"]
    if not isinstance(steps_raw, list) or not steps_raw:
        raise TemplateFileError(file, "", "steps: at least one step ([[steps]])")
    steps: dict[str, StepSpec] = {}
    for i, s in enumerate(steps_raw):
        spec = _step(s, i, terms, steps, file)
        steps[spec.kind] = spec
    if all(s.recurring for s in steps.values()):
        raise TemplateFileError(file, "steps", "a route needs a step that ends (all are "
                                               "recurring)")
    from_ipra = raw.get("from_ipra", False)
    if not isinstance(from_ipra, bool):
        raise TemplateFileError(file, "", "from_ipra: must be true or false")
    branching = _branching(raw.get("branching"), steps, file)
    return TemplateSpec(code=code, version=version, title=title, basis=basis, terms=terms,
                        steps=tuple(steps.values()), file=file, from_ipra=from_ipra,
                        branching=branching)


def load_template_file(path: Path) -> TemplateSpec:
    """Read and validate one ``<code>-v<version>.toml``."""
    name = path.name
    m = _FILE_RE.match(name)
    if m is None:
        raise TemplateFileError(name, "", "file name: must be <code>-v<version>.toml")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateFileError(name, "", f"toml: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateFileError(name, "", f"file: cannot be read ({exc})") from None
    return parse_template(raw, name, expect_code=m["code"], expect_version=int(m["version"]))


def template_dirs() -> tuple[Path, ...]:
    """The directories of the templates in force: the package's, then ``REHAB_TEMPLATE_DIR``
    when set (its files add to the package's; one of the same name replaces it)."""
    extra = os.environ.get(ENV_DIR, "").strip()
    return (TEMPLATE_DIR, Path(extra)) if extra else (TEMPLATE_DIR,)


def template_codes() -> tuple[str, ...]:
    """The template codes of the directories in force, read from the files' names only
    (``<code>-v<n>.toml``): what a schema may list at import time, before the start-up check
    has validated the files (``templates`` parses them)."""
    codes = {m.group("code") for d in template_dirs() if d.is_dir()
             for p in d.glob("*.toml") if (m := _FILE_RE.match(p.name))}
    return tuple(sorted(codes))


def load_templates(directory: Path | Sequence[Path] | None = None,
                   ) -> dict[str, dict[int, TemplateSpec]]:
    """Every template file of ``directory`` (default: the directories in force,
    ``template_dirs``; of several, a later one's file replaces an earlier one's of the same
    name), by code and version (TemplateFileError on the first bad file; a template without
    version 1 or with a gap is an error too)."""
    dirs = (template_dirs() if directory is None
            else (directory,) if isinstance(directory, Path) else tuple(directory))
    by_name: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            name = ENV_DIR if d != TEMPLATE_DIR and directory is None else "directory"
            raise TemplateFileError(str(d), "", f"{name}: not a directory of template files")
        by_name.update({p.name: p for p in sorted(d.glob("*.toml"))})
    if not by_name:
        raise TemplateFileError(", ".join(map(str, dirs)), "", "no template files (*.toml)")
    out: dict[str, dict[int, TemplateSpec]] = {}
    for _, path in sorted(by_name.items()):
        spec = load_template_file(path)
        out.setdefault(spec.code, {})[spec.version] = spec
    for code, versions in out.items():
        if sorted(versions) != list(range(1, len(versions) + 1)):
            raise TemplateFileError(code, "", f"versions: must be 1..n without gaps (found "
                                              f"{sorted(versions)})")
    return out


@lru_cache(maxsize=1)
def templates() -> Mapping[str, Mapping[int, TemplateSpec]]:
    """The product's templates: the directories in force, loaded and validated once
    (``reload_templates`` reads them again)."""
    return load_templates()


def reload_templates() -> None:
    """Read the template files again on the next use (after ``REHAB_TEMPLATE_DIR``
    changed)."""
    templates.cache_clear()


def latest(code: str) -> TemplateSpec:
    """The newest version of template ``code`` (KeyError naming the known codes)."""
    versions = templates().get(code)
    if not versions:
        raise KeyError(f"template: unknown route template {code!r}; known: "
                       f"{', '.join(sorted(templates()))}")
    return versions[max(versions)]


def version_of(code: str, version: int) -> TemplateSpec:
    """One version of a template (a route keeps the version it started with)."""
    try:
        return templates()[code][version]
    except KeyError:
        raise KeyError(f"template: no version {version} of {code!r}") from None


def _days(term: int | None) -> str:
    return "по акту региона" if term is None else f"{term} р.д."


def describe(spec: TemplateSpec) -> list[str]:
    """Lines for ``rehab template show``: each step with its clause, role, terms,
    condition, dependencies and period."""
    t = spec.terms
    lines = [f"{spec.code} v{spec.version} — {spec.title}", f"  основание: {spec.basis}",
             f"  сроки: первый запрос {_days(t.first_send_days)} от регистрации, "
             f"следующие {_days(t.later_send_days)}, ответ {_days(t.answer_days)} "
             f"({t.basis})"]
    if spec.from_ipra:
        lines.append("  маршрут по ИПРА: каждое мероприятие — шаг исполнителя со сроком "
                     "мероприятия (004 п.10 пп.б)")
    for i, s in enumerate(spec.steps, 1):
        flags = ["необязательный" if s.optional else "обязательный"]
        if s.recurring:
            flags.append(f"повторяется каждые {s.period_days} р.д.")
        if s.deadline_days:
            flags.append(f"выполнить за {s.deadline_days} р.д.")
        lines.append(f"{i:>2}. {s.kind} [{s.role.value}] — {s.requested}")
        lines.append(f"    {s.basis}; {', '.join(flags)}; отправка {_days(s.send_days)}, "
                     f"ответ {_days(s.answer_days)}")
        if not s.when.always:
            lines.append(f"    применяется: {s.when.describe()}")
        if s.branch:
            lines.append(f"    направление: {s.branch} — применяется, если выбрано решением "
                         "по маршруту")
        if s.roles:
            lines.append("    участник: одна из ролей "
                         f"{', '.join(r.value for r in s.roles)} — по заявлению")
        if s.depends_on:
            lines.append(f"    после: {', '.join(s.depends_on)}")
    if spec.branching:
        groups = "; ".join(" или ".join(g) for g in spec.branching.alternatives)
        lines.append(f"  решение о направлениях: после {spec.branching.after}, выбор "
                     f"инвалида и заключение оценки; взаимоисключающие: {groups or 'нет'} "
                     f"({spec.branching.basis})")
    return lines


def validate_directory(directory: Path | None = None) -> Sequence[TemplateSpec]:
    """Every template of ``directory`` (default: the directories in force) validated (for
    ``rehab template validate``)."""
    return [v for versions in load_templates(directory).values() for v in versions.values()]
