"""The branch decision of a supported-living route from the route page (000 п.10, п.13–15):
a coordinator of the route's region records the person's choice with the need assessment's
conclusion once the assessment is answered (before: a note, no form); employment and social
employment are alternatives (refused in Russian beside the form, 422, nothing stored); a
coordinator of another region gets 404 and an access_refused record; the page passes axe."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from engine.routes.forming import form_route
from models.routes import Route, Step, StepStatus
from tests.web.conftest import (
    World,
    answer_step,
    audit_of,
    csrf_of,
    opened_in_inbox,
    sign_in_client,
)
from tests.web.test_pages import axe_clean, sign_in

CONCLUSION = "Нуждается в сопровождаемом проживании; готов к обучению и трудоустройству"


def _v2_route(world: World) -> str:
    """A supported_living v2 route of region 39 (the newest data template), its first
    request received by the inbox agency."""
    with Session(world.db, expire_on_commit=False) as s:
        route = form_route(s, world.cfg, now=world.clock.now(), person_id=world.persons[1].id,
                           template_code="supported_living", region="39", ipra=None)
        s.commit()
        assert route.template_version == 2
        step = s.exec(select(Step).where(Step.route_id == route.id,
                                         Step.kind == "need_assessment")).one()
        opened_in_inbox(s, world.cfg, world.clock, step.current_request_id)
        return route.id


def _answer_assessment(world: World, route_id: str) -> None:
    answer_step(world, route_id, Step.kind == "need_assessment")


def _steps(world: World, route_id: str) -> dict[str, Step]:
    with Session(world.db) as s:
        return {x.kind: x for x in s.exec(select(Step).where(Step.route_id == route_id))}


def _plan(world: World, route_id: str) -> dict[str, Any]:
    with Session(world.db) as s:
        route = s.get(Route, route_id)
        assert route is not None
        return dict(route.plan or {})


def test_a_coordinator_records_education_and_employment_from_the_route_page(
        world: World) -> None:
    route_id = _v2_route(world)
    c = sign_in_client(world.app, "coord39")
    page = c.get(f"/routes/{route_id}").text
    # before the assessment is answered: a note, no form (the engine would refuse it)
    assert "Решение о направлениях" in page and "ещё не завершён" in page
    assert f'action="/routes/{route_id}/branches"' not in page
    _answer_assessment(world, route_id)
    page = c.get(f"/routes/{route_id}").text
    assert f'action="/routes/{route_id}/branches"' in page
    assert "взаимоисключающие" in page and "социальная занятость" in page
    r = c.post(f"/routes/{route_id}/branches", data={
        "csrf_token": csrf_of(page), "chosen": ["education", "employment"],
        "assessment": CONCLUSION})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/routes/{route_id}?notice=branches"
    decision = _plan(world, route_id)["branches"]
    assert decision["chosen"] == ["education", "employment"]
    assert decision["assessment"] == CONCLUSION and decision["by"] == "staff:coord39"
    steps = _steps(world, route_id)
    assert steps["social_employment"].status is StepStatus.cancelled  # not chosen: closed
    assert steps["education"].status is not StepStatus.cancelled
    assert steps["employment"].status is not StepStatus.cancelled
    [event] = audit_of(world, route_id=route_id, action="branches_decided")
    assert event.actor == "staff:coord39"
    assert event.after is not None and event.after["closed"] == ["social_employment"]
    assert len(audit_of(world, route_id=route_id, action="closed_not_chosen")) == 1
    # the page tells what was done and shows the decision, in Russian; no form any more
    shown = c.get(r.headers["location"]).text
    assert "Решение о направлениях записано" in shown
    assert "образование, трудоустройство" in shown and CONCLUSION in shown
    assert "записано решение о направлениях" in shown  # the history's label
    assert f'action="/routes/{route_id}/branches"' not in shown


def test_both_alternatives_are_refused_in_russian_and_nothing_is_stored(world: World) -> None:
    route_id = _v2_route(world)
    _answer_assessment(world, route_id)
    c = sign_in_client(world.app, "coord39")
    page = c.get(f"/routes/{route_id}").text
    before = _steps(world, route_id)
    r = c.post(f"/routes/{route_id}/branches", data={
        "csrf_token": csrf_of(page), "chosen": ["employment", "social_employment"],
        "assessment": CONCLUSION})
    assert r.status_code == 422, r.text
    assert ("Направления: «трудоустройство», «социальная занятость» — взаимоисключающие "
            "направления: выберите не более одного") in r.text
    assert "alternatives" not in r.text  # nothing of the English message
    assert CONCLUSION in r.text  # the form keeps what was typed
    assert "branches" not in _plan(world, route_id)
    assert {k: s.status for k, s in _steps(world, route_id).items()} == \
        {k: s.status for k, s in before.items()}
    assert audit_of(world, route_id=route_id, action="branches_decided") == []
    # an empty conclusion: refused naming the field, in Russian
    r = c.post(f"/routes/{route_id}/branches", data={
        "csrf_token": csrf_of(page), "chosen": ["education"], "assessment": "   "})
    assert r.status_code == 422
    assert "Заключение оценки нуждаемости: нужно заполнить" in r.text
    assert "branches" not in _plan(world, route_id)


def test_a_coordinator_of_another_region_gets_404_and_an_audit_record(world: World) -> None:
    route_id = _v2_route(world)
    _answer_assessment(world, route_id)
    own = sign_in_client(world.app, "coord39")
    token_page = own.get(f"/routes/{route_id}").text
    assert f'action="/routes/{route_id}/branches"' in token_page
    other = sign_in_client(world.app, "coord16")
    r = other.post(f"/routes/{route_id}/branches", data={
        "csrf_token": csrf_of(other.get("/routes").text), "chosen": ["education"],
        "assessment": CONCLUSION})
    assert r.status_code == 404
    refused = audit_of(world, entity="route", entity_id=route_id, action="access_refused")
    assert [a.actor for a in refused] == ["staff:coord16"]
    assert "branches" not in _plan(world, route_id)
    # a supervisor of the region may read the page but not record the decision
    sup = sign_in_client(world.app, "sup39")
    r = sup.post(f"/routes/{route_id}/branches", data={
        "csrf_token": csrf_of(sup.get(f"/routes/{route_id}").text),
        "chosen": ["education"], "assessment": CONCLUSION})
    assert r.status_code == 404
    assert "branches" not in _plan(world, route_id)


def test_the_route_page_with_the_branch_form_passes_axe(world: World, pages: Any) -> None:
    route_id = _v2_route(world)
    _answer_assessment(world, route_id)
    page = sign_in(pages, "coord39")
    page.goto(f"/routes/{route_id}")
    assert page.get_by_role("heading", name="Решение о направлениях").count() == 1
    assert page.get_by_label("образование").count() == 1
    axe_clean(page, "route-branch-form")
    page.get_by_label("трудоустройство", exact=True).check()
    page.get_by_label("социальная занятость").check()
    page.get_by_label("Заключение оценки нуждаемости (обязательно)").fill(CONCLUSION)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Записать решение о направлениях").click()
    response = nav.value
    assert response is not None and response.status == 422
    assert "взаимоисключающие" in page.locator("#branch-error").inner_text()
    axe_clean(page, "route-branch-error")
