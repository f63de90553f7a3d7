"""A route formed from the ИПРА (004 п.10 пп.б): each measure a step for its executor, due
by the measure's deadline (a complete-by deadline on the ladder), measures of different
executors in parallel; a new ИПРА re-plans it — shown first, then applied (added, cancelled
with a notice to the agency, re-dated), audited."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli.routes import routes_app
from engine.escalations.ladder import _applies as ladder_applies
from engine.infra.clock import DbClock
from engine.infra.settings import get_settings
from engine.routes.template_migration import migrate_route, plan_migration
from engine.routes.transitions import EngineConfig
from models.agencies import AgencyRequest, RequestState
from models.persons import Person
from models.routes import CancelNotice, Route, RouteStatus, Step, StepStatus
from models.suspension import StepSuspension
from models.template_files import templates
from models.timers import DeadlineKind, EscalationLevel, Timer, TimerKind, TimerStatus
from tests.conftest import kaliningrad
from tests.ipra_plan.conftest import (
    AIDS,
    EDUCATION,
    HEALTH,
    SOCIAL,
    answer,
    ipra_doc,
    measure_steps,
    register,
    steps,
)
from tests.ladder.conftest import Staff, escalations, new_route, receive_inbox, sweep
from tests.person_file.conftest import audits

OPEN = (StepStatus.sending, StepStatus.awaiting)


def test_three_executors_in_parallel_each_due_by_its_measure_one_overdue_escalated(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    route_id = register(api, staff["coord39"], [HEALTH, AIDS, EDUCATION])
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.template_version == 2
        assert route.plan is not None and route.plan["ipra"] == "1234.5.39/2025"
    ms = measure_steps(db, route_id)
    assert sorted(ms) == ["education", "health", "sfr"]
    # all three open at once, each with its executor's agency and its measure's deadline
    assert all(x.status in OPEN for x in ms.values())
    assert {r: (x.ipra_due_date, x.complete_by_date, x.complete_by_source)
            for r, x in ms.items()} == {
        "health": (date(2026, 2, 27), date(2026, 2, 27), "ipra"),
        "sfr": (date(2026, 3, 31), date(2026, 3, 31), "ipra"),
        "education": (date(2026, 4, 30), date(2026, 4, 30), "ipra")}
    assert {x.agency_id for x in ms.values()} == {"mz39", "sfr39", "mo39"}
    [reg] = audits(db, entity="route", action="registered", route_id=route_id)
    assert reg.after is not None and sorted(reg.after["ipra_measures"].values()) == [
        "2026-02-27", "2026-03-31", "2026-04-30"]
    # the СФР and education measures are done in time; the medical one is not
    clock.freeze(kaliningrad(2026, 2, 20, 12, 0))
    answer(db, clock, cfg, ms["sfr"])
    answer(db, clock, cfg, ms["education"])
    clock.freeze(kaliningrad(2026, 3, 2, 9, 0))  # Monday after Friday 27 February
    sweep(db, clock, cfg)
    clock.freeze(kaliningrad(2026, 3, 5, 9, 0))  # 2 working days later: level 2
    sweep(db, clock, cfg)
    done = {x.id for x in measure_steps(db, route_id).values()
            if x.status is StepStatus.answered}
    assert done == {ms["sfr"].id, ms["education"].id}
    complete = [(e.step_id, e.level, e.due_date) for e in escalations(db, route_id)
                if e.deadline_kind is DeadlineKind.complete_by]
    assert complete == [(ms["health"].id, EscalationLevel.overdue, date(2026, 2, 27)),
                        (ms["health"].id, EscalationLevel.escalated, date(2026, 2, 27))]


def test_replan_is_shown_then_applied_added_cancelled_with_notice_redated(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord, [HEALTH, AIDS, EDUCATION])
    receive_inbox(db, clock, cfg, route_id)  # the agencies open their inboxes at once
    before = measure_steps(db, route_id)
    aids_request = before["sfr"].current_request_id
    # a new ИПРА: the medical measure later, no wheelchair, social adaptation added
    new = ipra_doc([{**HEALTH, "due": "2026-03-31"}, EDUCATION, SOCIAL],
                   number="1300.5.39/2026", issued_on="2026-01-12")
    assert api.post("/api/ipra", json=new, headers=coord.headers).status_code == 201
    preview = api.get(f"/api/routes/{route_id}/replan", headers=coord.headers)
    assert preview.status_code == 200, preview.text
    p = preview.json()
    assert (p["applied"], p["from_ipra"], p["to_ipra"]) == (False, "1234.5.39/2025",
                                                           "1300.5.39/2026")
    assert [(a["executor"], a["due"]) for a in p["added"]] == [("social_policy", "2026-06-30")]
    assert p["cancelled"] == [{"kind": before["sfr"].kind, "status": "awaiting"}]
    assert p["redated"] == [{"kind": before["health"].kind, "from": "2026-02-27",
                             "to": "2026-03-31"}]
    assert p["unchanged"] == [before["education"].kind]
    # the preview changed nothing
    assert {k: (x.status, x.ipra_due_date) for k, x in measure_steps(db, route_id).items()} \
        == {k: (x.status, x.ipra_due_date) for k, x in before.items()}
    applied = api.post(f"/api/routes/{route_id}/replan", headers=coord.headers)
    assert applied.status_code == 200, applied.text
    assert {k: v for k, v in applied.json().items() if k != "applied"} == \
        {k: v for k, v in p.items() if k != "applied"}
    after = measure_steps(db, route_id)
    assert after["social_policy"].status in OPEN  # a new executor: opens at once
    assert after["social_policy"].complete_by_date == date(2026, 6, 30)
    assert after["sfr"].status is StepStatus.cancelled
    assert (after["health"].ipra_due_date, after["health"].complete_by_date) == (
        date(2026, 3, 31), date(2026, 3, 31))
    with Session(db) as s:
        req = s.get(AgencyRequest, aids_request)
        assert req is not None and req.state is RequestState.cancelled
        notice = s.exec(select(CancelNotice).where(CancelNotice.request_id == aids_request)
                        ).one()
        assert notice.agency_id == "sfr39" and "1300.5.39/2026" in notice.reason
        overdue = s.exec(select(Timer).where(
            Timer.step_id == after["health"].id, Timer.kind == TimerKind.complete_overdue,
            Timer.status == TimerStatus.pending)).all()
        assert [t.due_date for t in overdue] == [date(2026, 3, 31)]
        assert s.exec(select(Timer).where(Timer.step_id == after["sfr"].id,
                                          col(Timer.status) == TimerStatus.pending)).all() == []
    [rec] = audits(db, entity="route", action="replanned", route_id=route_id)
    assert rec.after is not None and rec.after["to_ipra"] == "1300.5.39/2026"
    assert rec.after["added_steps"] == [after["social_policy"].kind]
    assert audits(db, entity="request", action="cancel_notice_delivered",
                  entity_id=str(aids_request))
    # applying the same ИПРА again changes nothing
    kept = {k: (x.status, x.ipra_due_date) for k, x in steps(db, route_id).items()}
    again = api.post(f"/api/routes/{route_id}/replan", headers=coord.headers).json()
    assert (again["added"], again["cancelled"], again["redated"]) == ([], [], [])
    assert {k: (x.status, x.ipra_due_date) for k, x in steps(db, route_id).items()} == kept


def test_replan_of_a_route_not_formed_from_the_ipra_is_refused(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    r = api.post("/api/applications", headers=coord.headers,
                 json={"full_name": "Синтетиков Иван", "snils": "068-619-801 04",
                       "birth_date": "1990-05-01", "template": "supported_living"})
    assert r.status_code == 201, r.text
    bad = api.get(f"/api/routes/{r.json()['id']}/replan", headers=coord.headers)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("route: ")
    assert api.get("/api/routes/rt_nope/replan", headers=coord.headers).status_code == 404


def test_the_persons_choice_of_provider_through_the_api(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    """001 Регламент п.15 пп.2: recorded later than the application; the role's next
    request goes to the chosen agency; another role's agency is refused naming the field."""
    coord = staff["coord39"]
    route_id = register(api, coord, [HEALTH])
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None
        person_id = route.person_id
    url = f"/api/persons/{person_id}/providers"
    bad = api.put(url, json={"role": "provider", "agency_id": "mz39"}, headers=coord.headers)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("agency_id: mz39 is a health participant")
    other = api.put(url, json={"role": "provider", "agency_id": "psu39b"},
                    headers=staff["coord16"].headers)
    assert other.status_code == 404
    ok = api.put(url, json={"role": "provider", "agency_id": "psu39b"}, headers=coord.headers)
    assert ok.status_code == 200, ok.text
    assert (ok.json()["role"], ok.json()["agency_id"]) == ("provider", "psu39b")
    # a new ИПРА adds a measure for the provider role: its step goes to the chosen agency
    new = ipra_doc([HEALTH, {"direction": "psycho_pedagogical", "title": "Психолог",
                             "executor": {"role": "provider"}, "due": "2026-05-29"}],
                   number="1300.5.39/2026", issued_on="2026-01-12")
    assert api.post("/api/ipra", json=new, headers=coord.headers).status_code == 201
    assert api.post(f"/api/routes/{route_id}/replan", headers=coord.headers).status_code == 200
    assert measure_steps(db, route_id)["provider"].agency_id == "psu39b"


def test_accompaniment_v1_route_migrates_to_v2_and_takes_on_the_ipra_measures(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """The real v2 (from_ipra): v1's steps go on unchanged (the identity mapping), the
    person's ИПРА measures are added as steps due by their deadlines."""
    coord = staff["coord39"]
    assert api.post("/api/ipra", json=ipra_doc([HEALTH, AIDS]),
                    headers=coord.headers).status_code == 201
    with Session(db) as s:
        person = s.exec(select(Person).where(Person.snils == "112-233-445 95")).one()
    route_id = new_route(db, clock, cfg, person, template="accompaniment",
                         template_version=1)
    v1 = {k: (x.status, x.agency_id) for k, x in steps(db, route_id).items()}
    versions = templates()["accompaniment"]
    with Session(db) as s:
        [dry] = plan_migration(s, code="accompaniment", versions=versions, to_version=2,
                               mapping={})
        got = migrate_route(s, cfg, route_id=route_id, code="accompaniment",
                            versions=versions, to_version=2, mapping={}, now=clock.now())
        s.commit()
    assert got == dry and dry.cancelled == dry.retired == dry.added == ()
    assert len(dry.measures_added) == 2
    after = steps(db, route_id)
    assert {k: (x.status, x.agency_id) for k, x in after.items() if k in v1} == v1
    assert {x.role: x.complete_by_date for x in measure_steps(db, route_id).values()} == {
        "health": date(2026, 2, 27), "sfr": date(2026, 3, 31)}
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.template_version == 2
        assert route.plan is not None and route.plan["ipra"] == "1234.5.39/2025"


def test_cli_replan_shows_then_applies(
        api: TestClient, db: Engine, db_url: str, staff: dict[str, Staff],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_PREFECT_MIRROR", "false")
    get_settings.cache_clear()
    coord = staff["coord39"]
    route_id = register(api, coord, [HEALTH, AIDS])
    new = ipra_doc([HEALTH], number="1300.5.39/2026", issued_on="2026-01-12")
    assert api.post("/api/ipra", json=new, headers=coord.headers).status_code == 201
    try:
        shown = CliRunner().invoke(routes_app, ["replan", route_id])
        assert shown.exit_code == 0, shown.output
        preview = json.loads(shown.stdout)
        assert preview["applied"] is False and len(preview["cancelled"]) == 1
        assert measure_steps(db, route_id)["sfr"].status in OPEN  # nothing changed yet
        done = CliRunner().invoke(routes_app, ["replan", route_id, "--apply"])
        assert done.exit_code == 0, done.output
        assert {**json.loads(done.stdout), "applied": False} == preview
        assert measure_steps(db, route_id)["sfr"].status is StepStatus.cancelled
        missing = CliRunner().invoke(routes_app, ["replan", "rt_nope"])
        assert missing.exit_code == 2 and "route_id: no route" in missing.output
    finally:
        get_settings.cache_clear()


def test_an_executor_named_by_the_ipra_gets_the_step(
        api: TestClient, db: Engine, staff: dict[str, Staff]) -> None:
    """The ИПРА names the executor agency: that participant (by its full name, in the
    route's region); a name we do not know: a participant of the direction's role."""
    named = {"direction": "psycho_pedagogical", "title": "Психологическая помощь",
             "executor": {"agency": "Министерство образования Калининградской области"},
             "due": "2026-04-30"}
    unknown = {"direction": "physical_culture_sport", "title": "Адаптивная физкультура",
               "executor": {"agency": "ГАУ «Неизвестный центр»"}, "due": "2026-05-29"}
    route_id = register(api, staff["coord39"], [named, unknown])
    ms = measure_steps(db, route_id)
    assert (ms["education"].agency_id, ms["sport"].agency_id) == ("mo39", "msport39")
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.plan is not None
        assert sorted((e["role"], e["agency_id"]) for e in route.plan["measures"]) == [
            ("education", "mo39"), ("sport", None)]


def test_replan_redates_a_paused_step_without_timers_armed_once_on_resume(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """The medical measure's participant is refused (004 п.11) and a new ИПРА moves its
    deadline: the paused step takes the new date (on its suspension too) but runs no
    deadline — nothing climbs the ladder while it is paused; the resume arms one ladder on
    the new date."""
    coord = staff["coord39"]
    route_id = register(api, coord, [HEALTH, EDUCATION])
    receive_inbox(db, clock, cfg, route_id)
    health = measure_steps(db, route_id)["health"]
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"agency_id": health.agency_id, "application_date": "2026-01-14"})
    assert r.status_code == 200, r.text
    new = ipra_doc([{**HEALTH, "due": "2026-03-31"}, EDUCATION], number="1300.5.39/2026",
                   issued_on="2026-01-12")
    assert api.post("/api/ipra", json=new, headers=coord.headers).status_code == 201
    applied = api.post(f"/api/routes/{route_id}/replan", headers=coord.headers)
    assert applied.status_code == 200, applied.text
    assert [x["kind"] for x in applied.json()["redated"]] == [health.kind]
    paused = measure_steps(db, route_id)["health"]
    assert paused.status is StepStatus.paused
    assert (paused.ipra_due_date, paused.complete_by_date) == (date(2026, 3, 31),
                                                               date(2026, 3, 31))

    def pending_timers() -> list[Timer]:
        with Session(db) as s:
            return list(s.exec(select(Timer).where(Timer.step_id == health.id,
                                                   Timer.status == TimerStatus.pending)))

    assert pending_timers() == []
    with Session(db) as s:
        row = s.exec(select(StepSuspension).where(StepSuspension.step_id == health.id)).one()
        assert row.complete_by_date == date(2026, 3, 31) and row.complete_days_left
    clock.freeze(kaliningrad(2026, 4, 2, 9))  # past the new date, still paused
    sweep(db, clock, cfg)
    assert [e for e in escalations(db, route_id) if e.step_id == health.id] == []
    r = api.post(f"/api/routes/{route_id}/resume-participant", headers=coord.headers,
                 json={"agency_id": health.agency_id, "application_date": "2026-04-02"})
    assert r.status_code == 200, r.text
    overdue = [t for t in pending_timers() if t.kind is TimerKind.complete_overdue]
    assert [t.due_date for t in overdue] == [date(2026, 3, 31)]  # one ladder, not two


def test_a_complete_by_timer_of_a_paused_step_is_stale() -> None:
    at = kaliningrad(2026, 1, 12, 12)
    route = Route(id="r1", person_id="p1", region="39", template="accompaniment",
                  registered_at=at, status=RouteStatus.active)
    timer = Timer(kind=TimerKind.complete_overdue, step_id="r1-s0", route_id="r1", due_at=at,
                  due_date=at.date(), region="39", working_days=0, anchor_at=at)

    def step(status: StepStatus) -> Step:
        return Step(id="r1-s0", route_id="r1", seq=0, kind="ipra_health", role="health",
                    status=status)

    assert ladder_applies(timer, step(StepStatus.paused), route) == "step is paused"
    assert ladder_applies(timer, step(StepStatus.awaiting), route) is None


def test_a_step_a_replan_adds_during_a_refusal_of_all_waits_for_the_resume(
        api: TestClient, db: Engine, clock: DbClock, cfg: EngineConfig,
        staff: dict[str, Staff]) -> None:
    """004 п.11: while the person refuses every participant's accompaniment nothing goes out
    — a measure the new ИПРА adds is held (paused, linked to the refusal), not sent; the
    resume opens it."""
    coord = staff["coord39"]
    route_id = register(api, coord, [HEALTH, EDUCATION])
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"agency_id": None, "application_date": "2026-01-12"})
    assert r.status_code == 200, r.text
    new = ipra_doc([HEALTH, EDUCATION, SOCIAL], number="1300.5.39/2026",
                   issued_on="2026-01-12")
    assert api.post("/api/ipra", json=new, headers=coord.headers).status_code == 201
    applied = api.post(f"/api/routes/{route_id}/replan", headers=coord.headers)
    assert applied.status_code == 200, applied.text
    added = measure_steps(db, route_id)["social_policy"]
    assert added.status is StepStatus.paused and added.current_request_id is None
    with Session(db) as s:
        assert s.exec(select(AgencyRequest).where(AgencyRequest.step_id == added.id)
                      ).first() is None
        assert s.exec(select(Timer).where(Timer.step_id == added.id,
                                          Timer.status == TimerStatus.pending)).all() == []
    r = api.post(f"/api/routes/{route_id}/resume-participant", headers=coord.headers,
                 json={"agency_id": None, "application_date": "2026-01-12"})
    assert r.status_code == 200, r.text
    after = measure_steps(db, route_id)["social_policy"]
    assert after.status in OPEN and after.current_request_id is not None
    assert after.complete_by_date == date(2026, 6, 30)
