"""Routes formed from the data templates (issue 11): the newest template version, kept by
the route; steps whose condition the person's ИПРА does not meet are formed closed and never
sent (004 п.8: the СФР only with technical aids); steps with no unmet dependency open at
once; the six social-employment actions open one after another (001 Регламент п.16)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.routes.board import Filters, board, late_by_agency, matching
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from models.agencies import Agency, AnswerOutcome
from models.routes import Route, Step, StepStatus
from tests.ladder.conftest import Staff, run_worker, worker_settings
from tests.person_file.conftest import audits, consent, extract, form

OPEN = (StepStatus.sending, StepStatus.awaiting)


def _register(api: TestClient, coord: Staff, kind: str, ipra: dict[str, Any]) -> str:
    assert api.post("/api/ipra", json=ipra, headers=coord.headers).status_code == 201
    r = api.post("/api/person-file/applications", headers=coord.headers,
                 json={"application": form(kind), "consent": consent()})
    assert r.status_code == 201, r.text
    assert r.json()["eligible"] is True, r.json()
    route_id: str = r.json()["route_id"]
    return route_id


def _steps(db: Engine, route_id: str) -> list[Step]:
    with Session(db) as s:
        return list(s.exec(select(Step).where(Step.route_id == route_id).order_by(Step.seq)))


def _answer(db: Engine, clock: DbClock, cfg: EngineConfig, step: Step, hook: str) -> None:
    with Session(db, expire_on_commit=False) as s:
        agency = s.get(Agency, step.agency_id)
        assert agency is not None and step.current_request_id is not None
        ans, _ = record_answer(s, agency=agency, webhook_id=hook, now=clock.now(),
                               answer=AnswerIn(task_id=step.current_request_id,
                                               outcome=AnswerOutcome.provided, payload={},
                                               comment=None))
        assert ans.id is not None
        apply_answer(s, cfg, ans.id, now=clock.now())
        s.commit()


def test_accompaniment_without_technical_aids_leaves_the_aid_steps_out(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    doc = extract()
    doc["ipra"]["measures"] = [m for m in doc["ipra"]["measures"]
                               if m["direction"] != "technical_aids"]
    route_id = _register(api, staff["coord39"], "accompaniment", doc)
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and (route.template, route.template_version) == (
            "accompaniment", 2)
    steps = {x.kind: x for x in _steps(db, route_id)}
    for kind in ("mse_tsr_selection", "sfr_tsr_consulting"):
        assert steps[kind].status is StepStatus.cancelled
        assert steps[kind].current_request_id is None
        assert (steps[kind].outcome_note or "").startswith("не применяется: если в ИПРА есть")
    # МСЭ informs (004 п.6) while the organisation forms the route (п.10б); the ИПРА's
    # measures (v2, from_ipra) run beside them
    assert sorted(k for k, x in steps.items() if x.status in OPEN
                  and not k.startswith("ipra_")) == ["mse_informing", "rehabilitation_route"]
    assert not any(k.startswith("ipra_technical_aids") for k in steps)
    [reg] = audits(db, entity="route", action="registered", route_id=route_id)
    assert reg.after is not None and reg.after["not_applicable"] == [
        "mse_tsr_selection", "sfr_tsr_consulting"]


def test_with_parallel_steps_the_sfr_is_asked_beside_the_others(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    """МСЭ informs (004 п.6) while the organisation forms the route (п.10б) and the СФР
    consults on the technical aids (п.8) — all three at once."""
    route_id = _register(api, staff["coord39"], "accompaniment", extract())
    steps = {x.kind: x for x in _steps(db, route_id)}
    assert sorted(k for k, x in steps.items() if x.status in OPEN
                  and not k.startswith("ipra_")) == [
        "mse_informing", "rehabilitation_route", "sfr_tsr_consulting"]
    # v2 (from_ipra, 004 п.10 пп.б): the ИПРА's measures are open beside them, one per
    # executor at a time
    measures = [x for k, x in steps.items() if k.startswith("ipra_")]
    assert measures and all(x.ipra_due_date is not None for x in measures)
    open_roles = [x.role for x in measures if x.status in OPEN]
    assert open_roles and len(open_roles) == len(set(open_roles)) == len(
        {x.role for x in measures})
    assert steps["sfr_tsr_consulting"].role == "sfr"
    assert steps["mse_tsr_selection"].status is StepStatus.planned  # after mse_informing


def test_social_employment_opens_its_actions_one_after_another(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff], tmp_path: Path) -> None:
    doc = extract()
    doc["ipra"]["limitations"] = [{"category": "work", "degree": 3}]
    doc["ipra"]["work_recommendation"] = "simple_work_with_significant_help"
    route_id = _register(api, staff["coord39"], "social_employment", doc)
    run_worker(db, clock, cfg, worker_settings(tmp_path))
    steps = _steps(db, route_id)
    assert [x.kind for x in steps if x.status in OPEN] == ["need_determined"]
    _answer(db, clock, cfg, steps[0], "wh-se-1")
    steps = _steps(db, route_id)
    # after the need is determined: the conditions (п.16 пп.2) — not the services yet —
    # and beside the actions the health monitoring (п.6 пп.8), sport and culture (optional)
    assert [x.kind for x in steps if x.status in OPEN] == [
        "conditions_created", "health_monitoring", "sport", "culture"]
    assert {x.kind: x.status for x in steps}["services_provided"] is StepStatus.planned
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status.value == "active"


def test_the_board_shows_every_open_step_of_a_parallel_route(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    """The coordinator's overview says which steps are open (issue 11: parallel steps), the
    filter "waiting on an agency" finds the route by any of them, and the late counts by
    agency count each agency the route is late with."""
    route_id = _register(api, staff["coord39"], "accompaniment", extract())
    open_steps = [x for x in _steps(db, route_id) if x.status in OPEN]
    assert len(open_steps) >= 3
    with Session(db) as s:
        [row] = [r for r in board(s, region="39", now=clock.now(), filters=Filters())
                 if r.id == route_id]
    assert [o.seq for o in row.open_steps] == [x.seq for x in open_steps]
    assert row.waiting_on == {x.agency_id for x in open_steps}
    assert row.step_seq == open_steps[0].seq  # none late: the first open one
    last = open_steps[-1]
    assert last.agency_id is not None and last.agency_id != row.agency_id
    assert [r.id for r in matching([row], Filters(agency_id=last.agency_id))] == [route_id]
    assert late_by_agency([row]) == []
    # three weeks on, every open step is past its deadline: each agency counted once
    later = clock.now() + timedelta(days=21)
    with Session(db) as s:
        [row] = [r for r in board(s, region="39", now=later, filters=Filters())
                 if r.id == route_id]
    assert all(o.late_working_days > 0 for o in row.open_steps)
    assert sorted(a for a, _, n in late_by_agency([row]) if n == 1) == sorted(row.waiting_on)
