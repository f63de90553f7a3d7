"""Route templates: the steps of an individual rehabilitation route (pure data).

A route is formed by the rehabilitation organisation from the person's ИПРА and its deadlines
and completeness are ensured by it (363н п.10б). Each step is an interagency request to a
participant (298-п Порядок п.3 / Регламент п.4) answered in 5 working days (298-п п.11, п.12).

**Version 0 (the three-step templates below) forms no new route.** Every new route is formed
from the newest version of its template's data file (``models/route_templates``,
``engine.routes.forming``: a 363н application, ``POST /api/applications``, ``rehab import``).
Version 0 stays only because a route keeps the version it started with: the routes
registered before the data templates existed run on to their end on it, or are moved to a
data version by a template migration (``rehab template migrate``, which accepts them). It
is not what the regulations describe — its social-employment route merges and leaves out
actions of 001 Регламент п.16 — so nothing user-facing offers it. The engine's own tests and
the benchmark's "routes × 3 steps" scenario name it explicitly (``template_version=0``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from models.agencies import AgencyRole

if TYPE_CHECKING:
    from models.routes import Route

SEND_WORKING_DAYS = 1
"""298-п п.10: a request is prepared and sent within 1 working day of registration."""

ANSWER_WORKING_DAYS = 5
"""298-п п.11 (Порядок), п.12 (Регламент): answered within 5 working days of receipt."""


class LadderError(ValueError):
    """A ladder timing breaks its rule (the message names the field)."""


@dataclass(frozen=True)
class Ladder:
    """Escalation timings of a step, in working days (issue: the escalation ladder).

    ``reminder_days_before``: level 0 this many working days before the answer deadline
    (0: no reminder); ``escalate_after_days``: level 2 when this many working days have
    passed after the deadline (at least 1: level 2 comes after level 1).
    """

    reminder_days_before: int = 1
    escalate_after_days: int = 2

    def __post_init__(self) -> None:
        for name, low in (("reminder_days_before", 0), ("escalate_after_days", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise LadderError(f"ladder.{name}: must be a whole number of working days "
                                  f">= {low} (got {value!r})")


@dataclass(frozen=True)
class StepTemplate:
    """One step: what is requested from which kind of participant, and on which terms."""

    kind: str
    role: AgencyRole
    requested: str  # Russian text the agency reads
    basis: str  # clause of the regulation
    answer_days: int | None = None
    send_days: int | None = None
    """The template's own terms in working days, kept in every region; None: the act of the
    route's region sets them (``models.regions``: 298-п Порядок п.10, п.11 by default)."""
    optional: bool = False  # a supervisor may close it and the route goes on
    ladder: Ladder | None = None  # None: the template's / settings' default
    depends_on: tuple[str, ...] | None = None
    """Kinds of the steps it waits for (a data template's ``depends_on``); None: the step
    before it (strict order, 298-п Регламент п.16)."""
    deadline_days: int | None = None
    """Template-level deadline: the step must be done within this many working days of the
    route's registration (363н п.10б: the organisation ensures the route's deadlines); an
    ИПРА deadline given with the application takes precedence. None: no such deadline."""
    period_days: int | None = None
    """Recurring (001 Регламент п.6 пп.8; 000 п.10): a new request every N working days while
    the route lives (``engine.routes.recurring``); the route does not wait for it."""
    roles: tuple[AgencyRole, ...] = ()
    """The roles the participant may have (``role`` the default): the role is taken from the
    application when the route is formed (003: the organisation that identified the child —
    health, social or education); empty: always ``role``."""
    branch: str | None = None
    """The branch the step belongs to (000 п.13–15: education, employment, social
    employment): it opens only after the route's branch decision chose it
    (``engine.routes.branches``); a branch not chosen is closed as not applicable."""
    absent_completes: bool | None = None
    """Whether an agency's notice that the information is absent (001 Порядок п.11,
    Регламент п.12) completes the step; None: the template's rule (``absent_completes``)."""

    @property
    def recurring(self) -> bool:
        return self.period_days is not None

    def __post_init__(self) -> None:
        d = self.deadline_days
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1):
            raise ValueError(f"deadline_days: must be a whole number of working days >= 1 "
                             f"(got {d!r})")


@dataclass(frozen=True)
class RouteTemplate:
    """A named sequence of steps (298-п Регламент п.16: a mandatory order of actions)."""

    code: str
    title: str
    basis: str
    steps: tuple[StepTemplate, ...]
    ladder: Ladder | None = None  # None: the settings' default ladder
    decision_pending: bool = False
    """The route has branch steps and no branch decision yet (``template_of``): its branch
    steps wait for the decision (000 п.10–15: the person's choice and the assessment)."""

    def step(self, seq: int) -> StepTemplate:
        return self.steps[seq]

    def ladder_for(self, seq: int, default: Ladder) -> Ladder:
        """The step's own ladder, else the template's, else ``default``."""
        return self.steps[seq].ladder or self.ladder or default

    def waits_for(self, seq: int) -> tuple[int, ...]:
        """The seqs of the steps step ``seq`` waits for: its ``depends_on`` (by kind), else
        every step before it (strict order: a closed not-applicable step does not let a later
        one overtake an earlier open one)."""
        deps = self.steps[seq].depends_on
        if deps is None:
            return tuple(range(seq))
        kinds = [s.kind for s in self.steps]
        return tuple(kinds.index(k) for k in deps)

    def waits_for_decision(self, seq: int) -> bool:
        """Whether step ``seq`` is a branch step of a route without its branch decision."""
        return self.decision_pending and self.steps[seq].branch is not None


ALL_ACTIONS_DONE: dict[str, str] = {
    "social_employment": "001 Регламент п.16",
}
"""Templates whose mandatory steps must each be done, by the clause that says so: 001
Регламент п.16 — the six actions of social employment are mandatory, in their order, and
the route is not completed until all six are done. A notice that the information is absent
does not do an action: the step needs clarification (the coordinator asks again)."""


def absent_completes(template: RouteTemplate, seq: int) -> tuple[bool, str | None]:
    """Whether a notice of absence completes step ``seq`` (001 Порядок п.11: otherwise a valid
    answer), and the clause when it does not: the step's own ``absent_completes`` when set,
    else False for a mandatory, non-recurring step of a template in ``ALL_ACTIONS_DONE``."""
    st = template.steps[seq]
    clause = ALL_ACTIONS_DONE.get(template.code)
    if st.absent_completes is not None:
        return st.absent_completes, None if st.absent_completes else clause or st.basis
    if clause is not None and not st.optional and st.period_days is None:
        return False, clause
    return True, None


SUPPORTED_LIVING = RouteTemplate(
    code="supported_living",
    title="Сопровождаемое проживание",
    basis="000 п.10–14; 298-п Порядок п.9–11",
    steps=(
        StepTemplate(
            kind="need_assessment",
            role=AgencyRole.social_policy,
            requested="Оценка нуждаемости в сопровождаемом проживании",
            basis="000 п.10; 298-п Порядок п.9",
        ),
        StepTemplate(
            kind="medical_check",
            role=AgencyRole.health,
            requested="Сведения о состоянии здоровья и противопоказаниях",
            # 298-п Порядок (supported living) names the Ministry of Health a participant
            # (п.3 пп.3) and the request for information the measures need (п.4, п.9); no
            # clause sets a health check (Регламент п.6 пп.8 is social employment's)
            basis="298-п Порядок п.3 пп.3, п.4, п.9",
        ),
        StepTemplate(
            kind="training_placement",
            role=AgencyRole.education,
            requested="Зачисление на обучение навыкам самостоятельного проживания",
            basis="000 п.11, п.13",
            optional=True,
        ),
    ),
)

SOCIAL_EMPLOYMENT = RouteTemplate(
    code="social_employment",
    title="Социальная занятость",
    basis="298-п Регламент п.3, п.16",
    steps=(
        StepTemplate(
            kind="need_assessment",
            role=AgencyRole.social_policy,
            requested="Определение потребности в услугах по социальной занятости",
            basis="298-п Регламент п.16 пп.1",
        ),
        StepTemplate(
            kind="health_monitoring",
            role=AgencyRole.health,
            requested="Периодический мониторинг состояния здоровья",
            basis="298-п Регламент п.6 пп.8",
        ),
        StepTemplate(
            kind="employment_conditions",
            role=AgencyRole.provider,
            requested="Создание условий и предоставление услуг социальной занятости",
            basis="298-п Регламент п.16 пп.2–3",
        ),
    ),
)

ACCOMPANIMENT = RouteTemplate(
    code="accompaniment",
    title="Сопровождение при комплексной реабилитации",
    basis="363н п.1, п.10",
    steps=(
        StepTemplate(
            kind="ipra_extract",
            role=AgencyRole.mse,
            requested="Выписка из ИПРА инвалида",
            # no clause of 363н asks МСЭ for an extract (п.6 is МСЭ informing and
            # consulting): the route is formed from the ИПРА's measures, п.10 пп.б
            basis="363н: no clause (the route is formed from the ИПРА, п.10 пп.б)",
        ),
        StepTemplate(
            kind="rehabilitation_route",
            role=AgencyRole.provider,
            requested="Формирование индивидуального реабилитационного маршрута",
            basis="363н п.10б",
        ),
        StepTemplate(
            kind="tsr_provision",
            role=AgencyRole.sfr,
            requested="Сведения об обеспечении техническими средствами реабилитации",
            basis="363н п.8",
            optional=True,
        ),
    ),
)

TEMPLATES: dict[str, RouteTemplate] = {
    t.code: t for t in (SUPPORTED_LIVING, SOCIAL_EMPLOYMENT, ACCOMPANIMENT)
}


def newest_version(code: str) -> int:
    """The newest published version of template ``code`` (its data files), the one a new
    route is formed from; ValueError naming the field for an unknown code."""
    from models.template_files import latest

    try:
        return latest(code).version
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None


def get_template(code: str, version: int = 0) -> RouteTemplate:
    """The template by code and version (0: the built-in one above, kept for the routes that
    started on it; n >= 1: the data file ``models/route_templates/<code>-v<n>.toml``), or
    ValueError naming the field."""
    if version:
        return _data_template(code, version)
    try:
        return TEMPLATES[code]
    except KeyError:
        raise ValueError(
            f"template: unknown route template {code!r}; known: {', '.join(sorted(TEMPLATES))}"
        ) from None


@lru_cache(maxsize=64)
def _data_template(code: str, version: int) -> RouteTemplate:
    from models.template_files import version_of

    try:
        return version_of(code, version).route_template()
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None


def template_of(route: Route) -> RouteTemplate:
    """The template (and version) a route started with — it keeps it — extended by the
    route's own plan: the steps a template migration retired and the ИПРА's measures
    (004 п.10 пп.б; ``models.ipra_plan``)."""
    base = get_template(route.template, route.template_version)
    if (not (route.plan or {}).get("branches")
            and any(st.branch is not None for st in base.steps)):
        base = replace(base, decision_pending=True)
    if not route.plan:
        return base
    from models.ipra_plan import extend_template  # models.ipra_plan builds on this module

    return extend_template(base, route.plan, parallel=True)
