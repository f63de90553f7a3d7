"""Early help v2 and accompaniment v2 end to end on the moved clock, each to completion.

early_help v2 (003): the child is identified by an education organisation (the application's
``identified_by``), so the first request goes to the education participant; then recorded
as needing early help (п.9), referred to a provider of the registry (п.6), the services
(the issue's individual programme: 003 names none), recorded as received (п.9).
accompaniment v2 (004 п.6–10): formed from an application with an ИПРА, each measure a step
for its executor due by its deadline (п.10 пп.б), run beside the template's steps."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig
from models.agencies import Agency
from models.audit import AuditEvent
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from sim.person_files import child_application
from tests.ladder.conftest import Staff
from tests.person_file.conftest import REGISTERED, apply_with_ipra, consent, form
from tests.person_file.test_recurring_steps import OPEN, _answer, _steps

EARLY_HELP = ["child_identified", "need_recorded", "provider_referral", "individual_programme",
              "services_recorded"]


def _route(db: Engine, route_id: str) -> Route:
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None
        return route


def test_early_help_of_a_child_identified_by_an_education_organisation(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], seeded: list[Person]) -> None:
    coord = staff["coord39"]
    raw, agreed = child_application(seeded[0], 0, REGISTERED, seed=11)
    raw["request"]["identified_by"] = "education"
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": raw, "consent": agreed})
    assert r.status_code == 201 and r.json()["eligible"] is True, r.text
    route_id = r.json()["route_id"]
    route = _route(db, route_id)
    assert (route.template, route.template_version) == ("early_help", 2)
    assert route.person_id != seeded[0].id  # the child's route
    steps = _steps(db, route_id)
    first = steps["child_identified"]
    assert first.role == "education" and first.status in OPEN
    with Session(db) as s:
        agency = s.get(Agency, first.agency_id)
        assert agency is not None and agency.role == "education"
        registered = s.exec(select(AuditEvent).where(
            AuditEvent.route_id == route_id, AuditEvent.action == "registered",
            AuditEvent.entity == "route")).one()
        assert registered.after is not None
        assert registered.after["roles"] == {"child_identified": "education"}
    for i, kind in enumerate(EARLY_HELP):
        steps = _steps(db, route_id)
        assert [k for k in EARLY_HELP if steps[k].status in OPEN] == [kind]  # in order
        assert all(steps[k].status is StepStatus.planned for k in EARLY_HELP[i + 1:])
        assert _route(db, route_id).status is RouteStatus.active
        _answer(db, clock, cfg, steps[kind])
        clock.advance_working_days(1)
    route = _route(db, route_id)
    assert route.status is RouteStatus.completed and route.completed_at is not None
    assert all(s.status is StepStatus.answered for s in _steps(db, route_id).values())


def test_identified_by_without_it_the_default_role_and_on_another_kind_refused(
        api: TestClient, db: Engine, staff: dict[str, Staff], seeded: list[Person]) -> None:
    coord = staff["coord39"]
    raw, agreed = child_application(seeded[1], 1, REGISTERED, seed=11)
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": raw, "consent": agreed})
    assert r.status_code == 201, r.text
    assert _steps(db, r.json()["route_id"])["child_identified"].role == "health"  # default
    bad = api.post("/api/person-file/applications", headers=coord.headers,
                   json={"application": form("supported_living",
                                             request__identified_by="education"),
                         "consent": consent()})
    assert bad.status_code == 422 and "identified_by" in bad.text, bad.text
    raw2, agreed2 = child_application(seeded[2], 2, REGISTERED, seed=11)
    raw2["request"]["identified_by"] = "police"
    bad = api.post("/api/person-file/applications", headers=coord.headers,
                   json={"application": raw2, "consent": agreed2})
    assert bad.status_code == 422 and "identified_by" in bad.text, bad.text


def test_accompaniment_v2_formed_from_an_ipra_runs_to_completion(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = apply_with_ipra(api, coord.headers, "accompaniment")
    route = _route(db, route_id)
    assert (route.template, route.template_version) == ("accompaniment", 2)
    assert route.plan is not None
    measures = [e["kind"] for e in route.plan["measures"]]
    assert len(measures) == 6  # every measure of the example ИПРА a step
    steps = _steps(db, route_id)
    # measures of different executors run in parallel with the template's steps
    assert sum(steps[k].status in OPEN for k in measures) >= 3
    assert steps["sfr_tsr_consulting"].status in OPEN  # the ИПРА has technical aids (п.8)
    rounds = 0
    while _route(db, route_id).status is RouteStatus.active:
        rounds += 1
        assert rounds <= 12, {k: s.status for k, s in _steps(db, route_id).items()}
        open_ = [s for s in _steps(db, route_id).values() if s.status in OPEN]
        assert open_, "an active route with nothing open"
        for step in open_:
            _answer(db, clock, cfg, step)
        clock.advance_working_days(1)
    route = _route(db, route_id)
    assert route.status is RouteStatus.completed
    with Session(db) as s:
        statuses = {st.kind: st.status for st in s.exec(
            select(Step).where(Step.route_id == route_id).order_by(col(Step.seq)))}
    assert all(statuses[k] is StepStatus.answered for k in measures)
    assert statuses["route_support"] is StepStatus.answered
