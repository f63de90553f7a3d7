"""The demo's scripted life events: a route's life beyond the answers (issue 11), drawn from
the seed among the persons, in small fixed counts, on fixed business days — so the same seed
gives the same events and the same summary.

- **Migration**: accompaniment v2 (the ИПРА's measures as steps, 004 п.10 пп.б) is not yet
  published in the demo's first days: the routes formed then are at v1. On
  ``MIGRATION_WORKING_DAY`` v2 is published and every active accompaniment route at v1 is
  migrated with the use case ``rehab template migrate --apply`` runs
  (``engine.routes.template_migration``), one transaction per route.
- **Refusal and resumption** (004 п.11, п.12): one accompaniment person refuses one
  participant's accompaniment (an agency with an open step, drawn from the seed) and resumes
  it ``RESUME_AFTER_WORKING_DAYS`` working days later.
- **Application to stop** (004 п.13 б): another accompaniment person applies to stop.
- **ИПРА expiry** (004 п.13 а; 001 Регламент п.3): one person of a social-employment file
  (a kind whose grounds are the ИПРА's, ``models.route_life.IPRA_TERM_KINDS``) has an ИПРА
  whose term ends ``IPRA_TERM_WORKING_DAYS`` working days after they apply; the sweeper's
  ИПРА-expiry timer ends their route.

An event whose route is no longer active on its day (finished early) is skipped; the
summary's ``route_outcomes`` shows what happened.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from calendars import RegionCalendar
from engine.routes.refusal import refuse_participant, resume_participant
from engine.routes.template_migration import migrate_route, plan_migration
from engine.routes.termination import terminate_on_application
from engine.routes.transitions import EngineConfig
from models.route_life import IPRA_TERM_KINDS
from models.routes import Route, RouteStatus, Step, StepStatus
from models.template_files import templates

ACTOR = "demo:coordinator"
MIGRATED = "accompaniment"
MIGRATION_TO = 2
MIGRATION_WORKING_DAY = 5
"""Working days after the demo's start: the day after the last applications (days 0–4)."""
REFUSE_WORKING_DAY = 6
RESUME_AFTER_WORKING_DAYS = 3
STOP_WORKING_DAY = 7
IPRA_TERM_WORKING_DAYS = 4
OPEN = (StepStatus.sending, StepStatus.awaiting, StepStatus.needs_clarification)


@dataclass(frozen=True)
class LifePlan:
    """Who does what on which day (person indexes in generation order)."""

    migration_day: date
    refusal: tuple[int, date, date] | None  # person, refusal day, resumption day
    stop: tuple[int, date] | None  # person, day of the application to stop
    expiry: int | None  # person whose ИПРА ends soon after they apply

    def template_versions(self, day: date) -> Mapping[str, int]:
        """The versions published on ``day``: accompaniment v1 before the migration day."""
        return {MIGRATED: MIGRATION_TO - 1} if day < self.migration_day else {}


def plan_life(*, seed: int, kinds: Sequence[str], start: date, cal: RegionCalendar,
              withdrawn: int | None) -> LifePlan:
    """The events for the persons whose files form routes of ``kinds`` (in generation
    order; ``sim.person_files.route_kind_of``), never the person ``withdrawn`` (their
    consent is withdrawn midway)."""
    rng = random.Random(f"life:{seed}")
    accompanied = [i for i, k in enumerate(kinds) if k == "accompaniment" and i != withdrawn]
    others = [i for i, k in enumerate(kinds) if k in IPRA_TERM_KINDS
              and k != "accompaniment" and i != withdrawn]
    rng.shuffle(accompanied)
    refuse_day = cal.add_working_days(start, REFUSE_WORKING_DAY)
    return LifePlan(
        migration_day=cal.add_working_days(start, MIGRATION_WORKING_DAY),
        refusal=(accompanied[0], refuse_day,
                 cal.add_working_days(refuse_day, RESUME_AFTER_WORKING_DAYS))
        if accompanied else None,
        stop=(accompanied[1], cal.add_working_days(start, STOP_WORKING_DAY))
        if len(accompanied) > 1 else None,
        expiry=rng.choice(others) if others else None)


def ipra_last_day(plan: LifePlan, index: int, applied: date,
                  cal: RegionCalendar) -> date | None:
    """The short ИПРА term of the expiry person (None: the usual two years)."""
    return cal.add_working_days(applied, IPRA_TERM_WORKING_DAYS) if index == plan.expiry \
        else None


def _route(session: Session, person_id: str, template: str) -> Route | None:
    return session.exec(select(Route).where(
        Route.person_id == person_id, Route.template == template,
        Route.status == RouteStatus.active).order_by(col(Route.id))).first()


def migrate_accompaniment(engine: Engine, cfg: EngineConfig, *, now: datetime) -> int:
    """v2 published: every active accompaniment route at v1 migrated (identity mapping: the
    steps of v1 are unchanged in v2), one transaction per route. Returns the count."""
    versions = templates()[MIGRATED]
    with Session(engine) as s:
        planned = plan_migration(s, code=MIGRATED, versions=versions,
                                 to_version=MIGRATION_TO, mapping={})
    done = 0
    for mig in planned:
        with Session(engine) as s:
            if migrate_route(s, cfg, route_id=mig.route_id, code=MIGRATED, versions=versions,
                             to_version=MIGRATION_TO, mapping={}, now=now,
                             actor=ACTOR) is not None:
                done += 1
            s.commit()
    return done


def refused_agency(session: Session, route: Route, seed: int, index: int) -> str | None:
    """The participant the person ``index`` refuses: an agency with an open step, drawn
    from the seed and the person's position (never the route's id, which is random; sorted
    first: the draw does not depend on the rows' order)."""
    agencies = sorted({st.agency_id for st in session.exec(select(Step).where(
        Step.route_id == route.id, col(Step.status).in_(OPEN))) if st.agency_id})
    return random.Random(f"refuse:{seed}:{index}").choice(agencies) if agencies else None


def act(engine: Engine, cfg: EngineConfig, plan: LifePlan, people: list[str], *, day: date,
        now: datetime, seed: int, refused: dict[str, str]) -> None:
    """The events of ``day`` (at the registration slot), each in its own transaction.
    ``refused``: route id → agency refused, kept between the refusal and the resumption."""
    if day == plan.migration_day:
        migrate_accompaniment(engine, cfg, now=now)
    if plan.refusal and day == plan.refusal[1]:
        with Session(engine) as s:
            route = _route(s, people[plan.refusal[0]], MIGRATED)
            agency = refused_agency(s, route, seed, plan.refusal[0]) if route else None
            if route and agency:
                refuse_participant(s, cfg, route_id=route.id, agency_id=agency,
                                   application_date=day, now=now, actor=ACTOR)
                refused[route.id] = agency
                s.commit()
    if plan.refusal and day == plan.refusal[2]:
        with Session(engine) as s:
            route = _route(s, people[plan.refusal[0]], MIGRATED)
            if route and route.id in refused:
                resume_participant(s, cfg, route_id=route.id, agency_id=refused.pop(route.id),
                                   application_date=day, now=now, actor=ACTOR)
                s.commit()
    if plan.stop and day == plan.stop[1]:
        with Session(engine) as s:
            route = _route(s, people[plan.stop[0]], MIGRATED)
            if route:
                terminate_on_application(s, cfg, route_id=route.id, application_date=day,
                                         now=now, actor=ACTOR)
                s.commit()
