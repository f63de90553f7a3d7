"""The ИПРА (individual rehabilitation / habilitation programme) and its extract from ФГИС ФРИ.

The ИПРА is issued by an МСЭ bureau (004 п.1; form and procedure: Mintrud order 545н) for a
term — until a date, indefinitely, or for a child until 18 (guide/domain.md). It holds the
limitations of the seven main categories of life activity, each of degree 1–3 (181-ФЗ art. 7
ч.2, cited by 004 п.1), and the measures by direction, each with its executor and deadline.
Every route is built from it (004 п.10б).

The extract format (``fri-ipra-extract/1``) is documented in docs/ipra.md with an example in
docs/examples/. ``parse_ipra_extract`` accepts a file only when every field is valid and
otherwise names every bad field. A newer ИПРА of the same person supersedes the older one
(``supersedes``, ``latest_ipra``); both are kept in the history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, ValidationInfo, field_validator

from models.agencies import AgencyRole
from models.ages import ADULT_AGE, Sex, age_on, anniversary
from models.contacts import RegionCode
from models.identity import FullName
from models.input_validation import (
    NON_BLANK_PATTERN,
    Checked,
    InputModel,
    Text,
    check_json,
    rule_error,
    schema_pattern,
)
from models.snils import Snils

EXTRACT_FORMAT = "fri-ipra-extract/1"


class LimitationCategory(StrEnum):
    """The main categories of life activity (181-ФЗ art. 7 ч.2; 004 п.1)."""

    self_care = "self_care"
    movement = "movement"
    orientation = "orientation"
    communication = "communication"
    behaviour_control = "behaviour_control"
    learning = "learning"
    work = "work"


CATEGORY_RU: dict[LimitationCategory, str] = {
    LimitationCategory.self_care: "способность к самообслуживанию",
    LimitationCategory.movement: "способность к самостоятельному передвижению",
    LimitationCategory.orientation: "способность к ориентации",
    LimitationCategory.communication: "способность к общению",
    LimitationCategory.behaviour_control: "способность контролировать своё поведение",
    LimitationCategory.learning: "способность к обучению",
    LimitationCategory.work: "способность к трудовой деятельности",
}


class Limitation(InputModel):
    """A limitation of one category with its degree (1–3; no limitation: not listed)."""

    category: LimitationCategory
    degree: int = Field(ge=1, le=3)


class MeasureDirection(StrEnum):
    """Directions of rehabilitation measures in the ИПРА (guide/domain.md; 545н)."""

    medical = "medical"
    professional = "professional"
    social = "social"
    psycho_pedagogical = "psycho_pedagogical"
    physical_culture_sport = "physical_culture_sport"
    technical_aids = "technical_aids"


class Funding(StrEnum):
    """Who pays for a technical aid (004 п.6, п.8: federal budget through СФР, regional, own)."""

    federal = "federal"
    regional = "regional"
    own = "own"


class Executor(InputModel):
    """Who carries a measure out: a participant role, or a named agency (exactly one)."""

    role: AgencyRole | None = None
    agency: str | None = Field(default=None, max_length=500, validate_default=True)

    @field_validator("agency")
    @classmethod
    def _exactly_one(cls, v: str | None, info: ValidationInfo) -> str | None:
        if "role" not in info.data:
            return v
        if (info.data["role"] is None) == (v is None):
            raise rule_error("executor_one_of",
                             "Укажите исполнителя: либо роль участника, либо организацию",
                             field="role")
        return v


def _due_within_term(measure: Measure, info: ValidationInfo) -> Measure:
    """A measure's deadline falls within the ИПРА's term (it is carried out under it)."""
    start: date | None = info.data.get("valid_from")
    # the term's end only when the term validated (an invalid one is reported there)
    end = _last_day(info.data) if "valid_until" in info.data else None
    if start is not None and measure.due < start:
        raise rule_error("due_within_term", "Срок мероприятия раньше начала действия ИПРА",
                         below="due")
    if end is not None and measure.due > end:
        raise rule_error("due_within_term", "Срок мероприятия позже окончания действия ИПРА",
                         below="due")
    return measure


class Measure(InputModel):
    """A rehabilitation measure: direction, what, executor, deadline (and funding of an aid)."""

    direction: MeasureDirection
    title: Text
    executor: Executor
    due: date
    funding: Funding | None = Field(default=None, validate_default=True)

    @field_validator("funding")
    @classmethod
    def _aids_only(cls, v: Funding | None, info: ValidationInfo) -> Funding | None:
        direction = info.data.get("direction")
        if direction == MeasureDirection.technical_aids and v is None:
            raise rule_error("funding_required",
                             "Для технического средства реабилитации укажите источник "
                             "финансирования")
        if direction is not None and direction != MeasureDirection.technical_aids and v:
            raise rule_error("not_applicable",
                             "Источник финансирования указывается только для ТСР")
        return v


class Bureau(InputModel):
    """The МСЭ bureau that issued the ИПРА."""

    code: str = Field(min_length=1, max_length=20,
                      json_schema_extra={"pattern": NON_BLANK_PATTERN})
    name: Text
    region_code: RegionCode


class IpraSubject(InputModel):
    """Whose ИПРА it is: the person is found by SNILS (never duplicated)."""

    snils: Snils
    full_name: FullName
    birth_date: date
    sex: Sex


class IpraKind(StrEnum):
    """ИПРА инвалида, or ИПРА ребенка-инвалида (004 п.1)."""

    adult = "adult"
    child = "child"


class IpraTerm(StrEnum):
    """The term the ИПРА is issued for (guide/domain.md): until a date, indefinitely, until 18."""

    until_date = "until_date"
    indefinite = "indefinite"
    until_18 = "until_18"


class WorkRecommendation(StrEnum):
    """The ИПРА's conclusion on work, read for social employment (001 Регламент п.3)."""

    simple_work_with_significant_help = "simple_work_with_significant_help"
    work_with_conditions = "work_with_conditions"
    work_contraindicated = "work_contraindicated"


IPRA_NUMBER_PATTERN = r"^[0-9]{1,6}\.[0-9]{1,4}\.[0-9]{2}/[0-9]{4}$"
_NUMBER_RE = re.compile(IPRA_NUMBER_PATTERN)


def _ipra_number(value: str) -> str:
    if not _NUMBER_RE.fullmatch(value):
        raise rule_error("ipra_number", "Номер ИПРА — в форме 1234.5.39/2025")
    return value


def _last_day(data: dict[str, object]) -> date | None:
    """The last day of the term from already validated fields (None: indefinite/unknown)."""
    term = data.get("term")
    if term == IpraTerm.until_date:
        until = data.get("valid_until")
        return until if isinstance(until, date) else None
    subject = data.get("subject")
    if term == IpraTerm.until_18 and isinstance(subject, IpraSubject):
        return anniversary(subject.birth_date, ADULT_AGE) - timedelta(days=1)
    return None


class Ipra(InputModel):
    """One ИПРА as issued by the МСЭ bureau."""

    number: Annotated[str, AfterValidator(_ipra_number), schema_pattern(IPRA_NUMBER_PATTERN)]
    issued_on: date
    bureau: Bureau
    kind: IpraKind
    subject: IpraSubject
    valid_from: date
    term: IpraTerm
    valid_until: date | None = Field(default=None, validate_default=True)
    limitations: tuple[Limitation, ...] = Field(default=(), max_length=7)
    measures: tuple[Annotated[Measure, AfterValidator(_due_within_term)], ...] = ()
    work_recommendation: WorkRecommendation | None = None

    @field_validator("subject")
    @classmethod
    def _kind_fits_age(cls, v: IpraSubject, info: ValidationInfo) -> IpraSubject:
        """A child's ИПРА (ребенок-инвалид) is issued under 18, an adult's from 18."""
        issued: date | None = info.data.get("issued_on")
        kind = info.data.get("kind")
        if issued is None or kind is None:
            return v
        if v.birth_date > issued:
            raise rule_error("born_before_issue", "Дата рождения позже даты выдачи ИПРА",
                             below="birth_date")
        child = age_on(v.birth_date, issued) < ADULT_AGE
        if child != (kind == IpraKind.child):
            raise rule_error("kind_fits_age",
                             "ИПРА ребенка-инвалида выдаётся до 18 лет, ИПРА инвалида — с 18 лет",
                             field="kind")
        return v

    @field_validator("valid_from")
    @classmethod
    def _from_issue(cls, v: date, info: ValidationInfo) -> date:
        issued: date | None = info.data.get("issued_on")
        if issued is not None and v < issued:
            raise rule_error("valid_from_after_issue",
                             "Срок действия ИПРА не может начинаться раньше даты выдачи")
        return v

    @field_validator("valid_until")
    @classmethod
    def _term(cls, v: date | None, info: ValidationInfo) -> date | None:
        """Until a date: the date, after the start; a child's not past 18. Indefinite: adults
        only. Until 18: a child's ИПРА; the last day is the eve of the 18th birthday."""
        term, kind = info.data.get("term"), info.data.get("kind")
        start: date | None = info.data.get("valid_from")
        subject: IpraSubject | None = info.data.get("subject")
        if term is None:
            return v
        if term != IpraTerm.until_date and v is not None:
            raise rule_error("not_applicable",
                             "Дата окончания указывается только для срока «до даты»")
        if term == IpraTerm.until_date:
            if v is None:
                raise rule_error("required_for_kind", "Укажите дату окончания срока ИПРА")
            if start is not None and v < start:
                raise rule_error("until_after_from",
                                 "Срок действия ИПРА оканчивается раньше, чем начинается")
            if kind == IpraKind.child and subject is not None and \
                    v >= anniversary(subject.birth_date, ADULT_AGE):
                raise rule_error("child_until_18",
                                 "ИПРА ребенка-инвалида действует не дольше чем до 18 лет")
        if term == IpraTerm.indefinite and kind == IpraKind.child:
            raise rule_error("child_not_indefinite",
                             "ИПРА ребенка-инвалида не выдаётся бессрочно", field="term")
        if term == IpraTerm.until_18 and kind == IpraKind.adult:
            raise rule_error("until_18_child_only",
                             "Срок «до 18 лет» — только для ИПРА ребенка-инвалида", field="term")
        return v

    @field_validator("limitations")
    @classmethod
    def _one_per_category(cls, v: tuple[Limitation, ...]) -> tuple[Limitation, ...]:
        seen: set[LimitationCategory] = set()
        for i, limitation in enumerate(v):
            if limitation.category in seen:
                raise rule_error("category_once", "Категория указана повторно",
                                 below=f"{i}.category")
            seen.add(limitation.category)
        return v

    @property
    def last_day(self) -> date | None:
        """The last day the ИПРА is in force (None: indefinite)."""
        return _last_day(dict(self))

    def in_force_on(self, on: date) -> bool:
        """Whether the ИПРА is in force on the date ``on`` (004 п.11, п.13 а)."""
        end = self.last_day
        return self.valid_from <= on and (end is None or on <= end)

    def degree(self, category: LimitationCategory) -> int:
        """The degree of a category's limitation; 0 when the ИПРА does not list it."""
        return next((lim.degree for lim in self.limitations if lim.category == category), 0)


class ExtractMeta(InputModel):
    """Where the extract comes from and when it was made."""

    source: Literal["ФГИС ФРИ"]
    extract_id: str = Field(min_length=1, max_length=64,
                            json_schema_extra={"pattern": NON_BLANK_PATTERN})
    generated_at: AwareDatetime


class IpraExtract(InputModel):
    """The file: ``{"format": "fri-ipra-extract/1", "extract": {...}, "ipra": {...}}``."""

    format: Literal["fri-ipra-extract/1"]
    extract: ExtractMeta
    ipra: Ipra


def parse_ipra_extract(text: str | bytes) -> Checked[IpraExtract]:
    """The extract, or every bad field (path, rule, Russian message); nothing from a bad file."""
    return check_json(IpraExtract, text)


class IpraOrderError(ValueError):
    """Two different ИПРА of one person issued on one day: which one is in force is unclear."""


def supersedes(new: Ipra, old: Ipra) -> bool:
    """Whether ``new`` supersedes ``old``: the same person (by SNILS), another ИПРА, issued
    later. The old one stays in the history (issue 10)."""
    return (new.subject.snils == old.subject.snils and new.number != old.number
            and new.issued_on > old.issued_on)


def latest_ipra(history: Iterable[Ipra]) -> Ipra | None:
    """The ИПРА that supersedes every other in one person's history (None: no ИПРА).

    Raises IpraOrderError for two different ИПРА issued on the latest day, or for a history
    mixing persons.
    """
    items = list(history)
    if not items:
        return None
    if len({i.subject.snils for i in items}) > 1:
        raise IpraOrderError("history mixes the ИПРА of different persons")
    newest = max(i.issued_on for i in items)
    numbers = {i.number for i in items if i.issued_on == newest}
    if len(numbers) > 1:
        raise IpraOrderError(f"several ИПРА issued on {newest.isoformat()}: "
                             f"{', '.join(sorted(numbers))}")
    return next(i for i in items if i.issued_on == newest)
