"""The coordinator's pages, checked on what they show: each filter of /routes (route kind,
state, waiting on which agency, overdue, escalated) narrows the list to the right routes;
the late counts name the agency and count right; the route page links the real Prefect flow
run once mirrored, tells times in the route's region's time zone, draws the answer of an
answered step and lists the route's audit records in Russian; the agency's inbox tells the
answer-by day in its region's calendar (298-п Порядок п.11: 5 working days from receipt;
holidays are not working days)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from api.web.routes_pages import prefect_ui_base
from engine.routes.transitions import (
    register_application,
)
from models import labels
from models.agencies import Agency
from models.audit import AuditEvent
from models.mirror import RouteMirror
from models.persons import Person
from models.routes import Route, Step
from tests.conftest import kaliningrad
from tests.web.conftest import World, answer_step, csrf_of, opened_in_inbox, sign_in_client
from tests.web.test_russian_labels import visible_text


@dataclass
class Board:
    world: World
    social: str  # a social employment route, waiting on time
    moved: str  # its first answer in: waits on the second step's agency
    ended: str  # terminated on the person's application (004 п.13 б)
    first_agency: str  # the social policy agency (the first step of every route)
    second_agency: str  # the health agency (the second step of supported living)


def _new_route(world: World, person: Person, template: str) -> str:
    with Session(world.db, expire_on_commit=False) as s:
        p = s.get(Person, person.id)
        assert p is not None
        if p.region != "39":
            p.region = "39"
            s.add(p)
            s.commit()
        # the built-in three-step shape (version 0): the filters' mechanics need a second
        # step at another agency than the first (the data templates' second step may not be)
        route = register_application(s, world.cfg, now=world.clock.now(), person_id=person.id,
                                     template_code=template, region="39",
                                     coordinator_id=None, template_version=0)
        s.commit()
        step = s.exec(select(Step).where(Step.route_id == route.id, Step.seq == 0)).one()
        opened_in_inbox(s, world.cfg, world.clock, step.current_request_id)
        return route.id


def _answer_first_step(world: World, route_id: str) -> None:
    answer_step(world, route_id, Step.seq == 0)
    with Session(world.db) as s:
        nxt = s.exec(select(Step).where(Step.route_id == route_id, Step.seq == 1)).one()
        if nxt.current_request_id:
            opened_in_inbox(s, world.cfg, world.clock, nxt.current_request_id)


@pytest.fixture
def board(world: World) -> Board:
    """Five routes of region 39 (and one of region 16 that coord39 never sees)."""
    persons = world.persons
    social = _new_route(world, persons[0], "social_employment")
    moved = _new_route(world, persons[1], "supported_living")
    _answer_first_step(world, moved)
    ended = _new_route(world, persons[2], "supported_living")
    with Session(world.db) as s:
        first = s.exec(select(Step).where(Step.route_id == moved, Step.seq == 0)).one()
        second = s.exec(select(Step).where(Step.route_id == moved, Step.seq == 1)).one()
        assert first.agency_id and second.agency_id and first.agency_id != second.agency_id
    c = sign_in_client(world.app, "coord39")
    page = c.get(f"/routes/{ended}").text
    r = c.post(f"/routes/{ended}/life", data={
        "csrf_token": csrf_of(page), "act": "terminate", "agency_id": "",
        "application_date": "2025-03-13"})
    assert r.status_code == 303, r.text
    return Board(world, social, moved, ended, first.agency_id, second.agency_id)


def listed(c: TestClient, query: str = "") -> list[str]:
    """The route ids of the list, in its order."""
    r = c.get("/routes" + query)
    assert r.status_code == 200
    table = r.text[r.text.index('id="list-h"'):]
    return re.findall(r'<td><a href="/routes/([^"]+)">', table)


def test_each_filter_narrows_the_list_to_the_right_routes(board: Board) -> None:
    w = board.world
    c = sign_in_client(w.app, "coord39")
    everything = listed(c)
    assert set(everything) == {w.escalated_route, w.fresh_route, board.social, board.moved,
                               board.ended}
    assert w.other_region_route not in everything  # region 16: not coord39's
    assert everything[0] == w.escalated_route  # overdue first
    assert listed(c, "?kind=social_employment") == [board.social]
    assert set(listed(c, "?kind=supported_living")) == set(everything) - {board.social}
    assert listed(c, "?state=terminated") == [board.ended]
    assert set(listed(c, "?state=active")) == set(everything) - {board.ended}
    assert listed(c, f"?agency={board.second_agency}") == [board.moved]
    waiting_first = set(listed(c, f"?agency={board.first_agency}"))
    assert {w.escalated_route, board.social} <= waiting_first
    assert not waiting_first & {board.moved, board.ended}
    assert listed(c, "?overdue=1") == [w.escalated_route]
    assert listed(c, "?escalated=1") == [w.escalated_route]
    assert listed(c, "?kind=social_employment&overdue=1") == []
    # the filters' form keeps what was chosen
    page = c.get("/routes?kind=social_employment&state=active").text
    assert '<option value="social_employment" selected>' in page
    assert '<option value="active" selected>' in page


def test_late_counts_name_the_agency_and_count_its_late_routes(board: Board) -> None:
    w = board.world
    with Session(w.db) as s:
        agency = s.get(Agency, board.first_agency)
        assert agency is not None
    page = sign_in_client(w.app, "coord39").get("/routes").text
    late = page[page.index('id="late-h"'):page.index('id="list-h"')]
    items = re.findall(r'<li><a href="/routes\?agency=([^&]+)&amp;overdue=1">([^<]+)</a>: '
                       r'(\d+)</li>', late)
    assert items == [(board.first_agency, agency.short_name, "1")]


def test_the_route_page_links_the_mirrored_flow_run_and_tells_local_times(
        board: Board) -> None:
    w = board.world
    run_id = str(uuid.uuid4())
    with Session(w.db) as s:  # as the mirror records a route's flow run
        route = s.get(Route, w.escalated_route)
        assert route is not None
        route.prefect_flow_run_id = run_id
        s.add(route)
        s.add(RouteMirror(route_id=route.id))
        s.commit()
    c = sign_in_client(w.app, "coord39")
    page = c.get(f"/routes/{w.escalated_route}").text
    assert f'href="{prefect_ui_base()}/runs/flow-run/{run_id}"' in page
    assert "ещё не отражён" not in page
    unmirrored = c.get(f"/routes/{board.social}").text
    assert f'href="{prefect_ui_base()}/runs"' in unmirrored and "ещё не отражён" in unmirrored
    # registered on Monday 03.03.2025 at 10:00 in Kaliningrad (08:00 UTC)
    text = visible_text(page)
    assert "03.03.2025 10:00 (калининградское время (МСК−1))" in text
    # region 16's route, registered at 10:00 Kaliningrad time, is 11:00 in Moscow
    admin = visible_text(sign_in_client(w.app, "admin").get(
        f"/routes/{w.other_region_route}").text)
    assert "13.03.2025 11:00 (московское время)" in admin
    assert "Республика Татарстан" in admin


def test_the_timeline_marks_an_answered_step(board: Board) -> None:
    w = board.world
    page = sign_in_client(w.app, "coord39").get(f"/routes/{board.moved}").text
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert re.search(r'<circle [^>]*fill="#1d5e20"><title>ответ 13\.03\.2025</title>', svg)
    assert svg.count("<circle") == 1  # only the answered step
    assert "0. оценка нуждаемости" in svg and "1. сведения о здоровье" in svg
    waiting = sign_in_client(w.app, "coord39").get(f"/routes/{w.escalated_route}").text
    assert "<circle" not in waiting[waiting.index("<svg"):waiting.index("</svg>")]


def test_the_history_lists_the_routes_audit_records_in_russian(board: Board) -> None:
    w = board.world
    with Session(w.db) as s:
        records = list(s.exec(select(AuditEvent).where(AuditEvent.route_id == board.moved)
                              .order_by(col(AuditEvent.id))))
    page = sign_in_client(w.app, "coord39").get(f"/routes/{board.moved}").text
    table = page[page.index('id="hist-h"'):]
    table = table[table.index("<tbody>"):table.index("</tbody>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    assert len(rows) == len(records) > 5
    for row, rec in zip(rows, records, strict=True):
        cells = [visible_text(c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        assert cells[1] == labels.actor_ru(rec.actor, _short_names(w))
        assert cells[2] == f"{labels.entity_ru(rec.entity)} {rec.entity_id}"
        assert cells[3] == labels.action_ru(rec.action)
        assert re.search(r"[а-яё]", cells[3]), rec.action
    actions = [visible_text(r) for r in rows]
    assert any("получен ответ" in a for a in actions)  # step 0's answer
    assert any("зарегистрировано" in a for a in actions)


def _short_names(world: World) -> dict[str, str]:
    with Session(world.db) as s:
        return {a.id: a.short_name for a in s.exec(select(Agency))}


def test_the_inbox_tells_the_answer_by_day_in_the_agency_regions_calendar(
        world: World) -> None:
    """Received on Wednesday 30.04.2025: 1–4 May and 8–11 May are days off (the federal
    production calendar of 2025), so five working days are 5, 6, 7, 12 and 13 May — the
    answer is due on 13.05.2025 (a naive count of weekdays would say 08.05)."""
    world.clock.freeze(kaliningrad(2025, 4, 30, 10, 0))
    rid = _new_route(world, world.persons[0], "supported_living")
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == rid, Step.seq == 0)).one()
        assert step.agency_id == world.fresh_agency
        assert step.answer_by_date == date(2025, 5, 13)
    page = sign_in_client(world.app, "agency39").get("/inbox").text
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S)
               if step.current_request_id in r)
    cells = [visible_text(c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
    assert cells[1] == "оценка нуждаемости"
    assert cells[2] == "30.04.2025 10:00"  # received, Kaliningrad time
    assert cells[3] == "13.05.2025"
