"""Supported living v2 end to end on the moved clock: the branch decision (000 п.10–15).

000 п.10: the need is assessed (and monitored yearly); п.11: the training apartment; then the
housing with support; п.13 education or vocational training, п.14 employment (supported
employment included) or п.15 social employment — the person's choice and the assessment
decide which apply; then the satisfaction check. A coordinator records the decision once
(``POST /api/routes/{id}/branches``): the branches not chosen are closed as not applicable,
the chosen ones open in their turn, employment and social employment are alternatives."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli.routes import routes_app
from engine.errors import EngineError
from engine.infra.clock import DbClock
from engine.infra.settings import get_settings
from engine.persons.applications import register_full_application
from engine.routes import transitions
from engine.routes.branches import record_branch_decision
from engine.routes.template_migration import migrate_route
from engine.routes.transitions import EngineConfig
from models.audit import AuditEvent
from models.labels import step_kind_ru
from models.routes import Route, RouteStatus, StepStatus
from models.template_files import templates
from models.templates import template_of
from tasks import prefect_mirror as pm
from tests.ladder.conftest import Staff
from tests.person_file.conftest import consent, extract, form
from tests.person_file.test_recurring_steps import OPEN, _answer, _steps

BRANCHES = ["education", "employment", "social_employment"]


def _route(api: TestClient, coord: Staff) -> str:
    assert api.post("/api/ipra", json=extract(), headers=coord.headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form("supported_living"), "consent": consent()})
    assert r.status_code == 201 and r.json()["eligible"] is True, r.text
    route_id: str = r.json()["route_id"]
    return route_id


def _decide(api: TestClient, coord: Staff, route_id: str, chosen: list[str],
            assessment: str = "Нуждается в сопровождаемом проживании; готов к обучению"
            ) -> tuple[int, dict[str, object]]:
    r = api.post(f"/api/routes/{route_id}/branches", headers=coord.headers,
                 json={"chosen": chosen, "assessment": assessment})
    body: dict[str, object] = r.json()
    return r.status_code, body


def _route_row(db: Engine, route_id: str) -> Route:
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None
        return route


def _actions(db: Engine, route_id: str) -> list[str]:
    with Session(db) as s:
        return list(s.exec(select(AuditEvent.action).where(AuditEvent.route_id == route_id)
                           .order_by(col(AuditEvent.id))))


def test_education_then_employment_chosen_the_route_waits_then_completes(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = _route(api, coord)
    assert _route_row(db, route_id).template_version == 2  # the newest published
    # before the assessment is answered: refused, naming the rule, nothing changes
    code, body = _decide(api, coord, route_id, ["education"])
    assert code == 422 and "need_assessment, which is not answered yet" in str(body)
    assert "branches_decided" not in _actions(db, route_id)
    _answer(db, clock, cfg, _steps(db, route_id)["need_assessment"])
    _answer(db, clock, cfg, _steps(db, route_id)["training_apartment"])  # 000 п.11
    _answer(db, clock, cfg, _steps(db, route_id)["supported_housing"])
    steps = _steps(db, route_id)
    assert steps["health_monitoring"].status in OPEN and steps["need_monitoring"].status in OPEN
    # the branch steps wait for the decision, visibly; the route does not move on
    assert all(steps[k].status is StepStatus.planned and steps[k].current_request_id is None
               for k in (*BRANCHES, "satisfaction_check"))
    got = api.get(f"/api/routes/{route_id}", headers=coord.headers).json()
    assert got["status"] == "active" and got["awaiting_branch_decision"] == BRANCHES
    assert got["branch_decision"] is None
    view = pm.load_view(db, route_id, clock.now())  # and the flow run's state says it
    assert view is not None
    assert pm.route_state(view).message.endswith(  # in Russian, as the card (issue 12)
        "ожидается решение о направлениях: " + ", ".join(step_kind_ru(k) for k in BRANCHES))
    with Session(db) as s:  # the engine refuses to open a branch step before the decision
        route = s.get(Route, route_id)
        assert route is not None
        with pytest.raises(EngineError, match=r"step: education is a branch step \(education\)"
                                              r".*000 п\.10–15"):
            transitions._start_step(s, cfg, route, template_of(route), steps["education"],
                                    ready_at=clock.now(), now=clock.now(), actor="test")
        s.rollback()
    # the rules, each refused naming the field
    code, body = _decide(api, coord, route_id, ["employment", "social_employment"])
    assert code == 422 and ("chosen: employment and social_employment are alternatives"
                            in str(body))
    code, body = _decide(api, coord, route_id, ["education", "sport"])
    assert code == 422 and "chosen[1]: 'sport' is not a branch of template supported_living" \
        in str(body)
    code, body = _decide(api, coord, route_id, ["education"], assessment="   ")
    assert code == 422 and "assessment:" in str(body)
    assert _steps(db, route_id)["social_employment"].status is StepStatus.planned
    # the decision: education, then employment; social employment closed as not applicable
    code, body = _decide(api, coord, route_id, ["education", "employment"])
    assert code == 200, body
    assert body["chosen"] == ["education", "employment"]
    assert body["closed"] == ["social_employment"]
    steps = _steps(db, route_id)
    assert steps["social_employment"].status is StepStatus.cancelled
    assert (steps["social_employment"].outcome_note or "").startswith("не применяется")
    assert steps["education"].status in OPEN
    assert steps["employment"].status is StepStatus.planned  # after education (000 п.13, п.14)
    got = api.get(f"/api/routes/{route_id}", headers=coord.headers).json()
    assert got["awaiting_branch_decision"] == []
    view = pm.load_view(db, route_id, clock.now())
    assert view is not None and "branch decision" not in pm.route_state(view).message
    assert got["branch_decision"]["chosen"] == ["education", "employment"]
    # recorded once
    code, body = _decide(api, coord, route_id, ["education"])
    assert code == 422 and "recorded already" in str(body)
    _answer(db, clock, cfg, _steps(db, route_id)["education"])
    steps = _steps(db, route_id)
    assert steps["employment"].status in OPEN
    assert steps["satisfaction_check"].status is StepStatus.planned  # waits for employment
    _answer(db, clock, cfg, steps["employment"])
    steps = _steps(db, route_id)
    assert steps["satisfaction_check"].status in OPEN
    assert _route_row(db, route_id).status is RouteStatus.active
    _answer(db, clock, cfg, steps["satisfaction_check"])
    route = _route_row(db, route_id)
    assert route.status is RouteStatus.completed
    steps = _steps(db, route_id)
    assert steps["health_monitoring"].status is StepStatus.cancelled  # ended with the route
    actions = _actions(db, route_id)
    assert actions.count("branches_decided") == 1 and actions.count("closed_not_chosen") == 1
    assert actions.index("branches_decided") < actions.index("completed")


def test_social_employment_chosen_right_after_the_assessment(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = _route(api, coord)
    _answer(db, clock, cfg, _steps(db, route_id)["need_assessment"])
    code, body = _decide(api, coord, route_id, ["social_employment"],
                         assessment="Нуждается; выбирает социальную занятость")
    assert code == 200, body
    assert body["closed"] == ["education", "employment"]
    steps = _steps(db, route_id)
    assert steps["social_employment"].status is StepStatus.planned  # after the housing
    _answer(db, clock, cfg, steps["training_apartment"])
    _answer(db, clock, cfg, _steps(db, route_id)["supported_housing"])
    steps = _steps(db, route_id)
    # education and employment are closed: social employment does not wait for them
    assert steps["social_employment"].status in OPEN
    assert steps["satisfaction_check"].status is StepStatus.planned
    _answer(db, clock, cfg, steps["social_employment"])
    _answer(db, clock, cfg, _steps(db, route_id)["satisfaction_check"])
    assert _route_row(db, route_id).status is RouteStatus.completed
    steps = _steps(db, route_id)
    assert {k: steps[k].status for k in BRANCHES} == {
        "education": StepStatus.cancelled, "employment": StepStatus.cancelled,
        "social_employment": StepStatus.answered}


def test_a_decision_is_refused_after_a_branch_step_opened_and_on_a_route_without_branches(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """A route that started on v1 (no decision: its branches were optional steps) has its
    social employment open; migrated to v2, a decision would close or reopen an open step:
    refused. A route whose template has no branches: refused."""
    coord = staff["coord39"]
    assert api.post("/api/ipra", json=extract(), headers=coord.headers).status_code == 201
    with Session(db, expire_on_commit=False) as s:
        done = register_full_application(
            s, cfg, raw=form("supported_living"), consent=consent(), now=clock.now(),
            template_versions={"supported_living": 1})
        s.commit()
    assert done.route is not None and done.route.template_version == 1
    route_id = done.route.id
    for kind in ("need_assessment", "training_apartment", "supported_housing"):
        _answer(db, clock, cfg, _steps(db, route_id)[kind])
    assert _steps(db, route_id)["social_employment"].status in OPEN
    with Session(db) as s:
        got = migrate_route(s, cfg, route_id=route_id, code="supported_living",
                            versions=templates()["supported_living"], to_version=2,
                            mapping={}, now=clock.now())
        s.commit()
    assert got is not None
    assert _steps(db, route_id)["social_employment"].status in OPEN  # kept, still open
    code, body = _decide(api, coord, route_id, ["education"])
    assert code == 422
    assert "has opened already" in str(body) and "a decision comes before" in str(body)
    assert _route_row(db, route_id).plan is None or \
        "branches" not in (_route_row(db, route_id).plan or {})
    other = api.post("/api/person-file/applications", headers=coord.headers,
                     json={"application": form("accompaniment", person__snils="112-233-445 95"),
                           "consent": consent()})
    assert other.status_code == 201, other.text
    with Session(db) as s:
        with pytest.raises(EngineError, match=r"route: template accompaniment v2 has no "
                                              r"branches to decide"):
            record_branch_decision(s, cfg, route_id=other.json()["route_id"],
                                   chosen=["education"], assessment="x", now=clock.now(),
                                   actor="test")


def test_cli_records_the_decision_and_refuses_alternatives(
        api: TestClient, db: Engine, db_url: str, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "false")
    get_settings.cache_clear()
    route_id = _route(api, staff["coord39"])
    _answer(db, clock, cfg, _steps(db, route_id)["need_assessment"])
    try:
        bad = CliRunner().invoke(routes_app, ["branches", route_id, "--choose",
                                              "employment,social_employment",
                                              "--assessment", "Нуждается"])
        assert bad.exit_code == 2
        assert "chosen: employment and social_employment are alternatives" in bad.output
        assert "branches_decided" not in _actions(db, route_id)
        done = CliRunner().invoke(routes_app, ["branches", route_id, "--choose", "education",
                                               "--assessment", "Нуждается; выбирает учёбу"])
        assert done.exit_code == 0, done.output
        out = json.loads(done.stdout)
        assert out["chosen"] == ["education"]
        assert out["closed"] == ["employment", "social_employment"]
        assert _route_row(db, route_id).plan is not None
        assert _actions(db, route_id).count("closed_not_chosen") == 2
    finally:
        get_settings.cache_clear()
