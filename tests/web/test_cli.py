"""The operators' CLI beside the pages: ``rehab routes list|show``, ``rehab escalations
list`` (identifiers only), and ``rehab staff add|passwd|revoke`` for people who sign in."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app
from engine.infra.settings import get_settings
from engine.staff import passwords
from models.staff import StaffSession, StaffUser
from tests.web.conftest import World

runner = CliRunner()


@pytest.fixture
def cli_world(world: World, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("REHAB_DATABASE_URL", db_url)
    monkeypatch.setenv("REHAB_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield world
    get_settings.cache_clear()


def rehab(*args: str, stdin: str | None = None) -> tuple[int, str]:
    r = runner.invoke(app, list(args), input=stdin)
    return r.exit_code, r.output


def test_routes_list_overdue_first_filters_and_json(cli_world: World) -> None:
    code, out = rehab("routes", "list", "--json")
    assert code == 0, out
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows][0] == cli_world.escalated_route
    assert rows[0]["overdue"] and rows[0]["late_working_days"] == 3
    assert rows[0]["escalation_level"] == 2
    assert {r["id"] for r in rows} == {cli_world.escalated_route, cli_world.fresh_route,
                                       cli_world.other_region_route}
    code, out = rehab("routes", "list", "--overdue", "--json")
    assert [json.loads(x)["id"] for x in out.splitlines()] == [cli_world.escalated_route]
    code, out = rehab("routes", "list", "--kind", "social_employment")
    assert code == 0 and out.strip() == "0 route(s)"
    assert cli_world.persons[0].full_name not in out


def test_routes_show_and_escalations_list(cli_world: World) -> None:
    code, out = rehab("routes", "show", cli_world.escalated_route)
    assert code == 0, out
    shown = json.loads(out)
    assert shown["prefect_flow_run_name"] == f"route-{cli_world.escalated_route}"
    assert shown["steps"][0]["late_working_days"] == 3
    assert sorted(e["level"] for e in shown["escalations"]) == [0, 1, 2]
    code, out = rehab("routes", "show", "rt_nope")
    assert code == 2 and "route_id: no route" in out
    code, out = rehab("escalations", "list", "--json")
    assert code == 0, out
    levels = [json.loads(x)["level"] for x in out.splitlines()]
    assert levels == [2, 1, 0]
    code, out = rehab("escalations", "list", "--region", "16")
    assert out.strip() == "0 escalation(s)"


def test_staff_add_with_password_stdin_passwd_and_revoke(cli_world: World, db: Engine) -> None:
    code, out = rehab("staff", "add", "--id", "mse39-petrov", "--name", "Петров",
                      "--role", "agency", "--agency", cli_world.fresh_agency,
                      "--password-stdin", stdin="first password 123\n")
    assert code == 0, out
    with Session(db) as s:
        user = s.get(StaffUser, "mse39-petrov")
        assert user is not None and user.agency_id == cli_world.fresh_agency
        assert passwords.verify(user.password_hash, "first password 123")
    code, out = rehab("staff", "add", "--id", "x39", "--name", "X", "--role", "agency")
    assert code == 2 and "agency_id: required for an agency user" in out
    code, out = rehab("staff", "passwd", "--id", "mse39-petrov", "--password-stdin",
                      stdin="short\n")
    assert code == 2 and "password: at least 12 characters" in out
    from engine.staff.sessions import sign_in

    with Session(db) as s:
        sign_in(s, account="mse39-petrov", password="first password 123", client="t")
        s.commit()
    code, out = rehab("staff", "passwd", "--id", "mse39-petrov", "--password-stdin",
                      stdin="second password 456\n")
    assert code == 0, out
    with Session(db) as s:
        user = s.get(StaffUser, "mse39-petrov")
        assert user is not None
        assert passwords.verify(user.password_hash, "second password 456")
        assert not passwords.verify(user.password_hash, "first password 123")
        from sqlmodel import select

        sessions = list(s.exec(select(StaffSession)
                               .where(StaffSession.staff_id == "mse39-petrov")))
        assert sessions and all(x.ended_at is not None for x in sessions)
    code, out = rehab("staff", "revoke", "--id", "mse39-petrov")
    assert code == 0, out


def test_demo_accounts_one_per_role_can_sign_in(world: World) -> None:
    from fastapi.testclient import TestClient

    from sim.demo_accounts import create_demo_accounts

    accounts = create_demo_accounts(world.db)
    assert sorted(a.role.value for a in accounts) == ["admin", "agency", "coordinator",
                                                       "supervisor"]
    homes = {"coordinator": "/routes", "supervisor": "/escalations", "agency": "/inbox",
             "admin": "/routes"}
    for acc in accounts:
        c = TestClient(world.app, follow_redirects=False)
        c.get("/login")
        r = c.post("/login", data={"account": acc.id, "password": acc.password,
                                   "csrf_token": c.cookies["rehab_login_csrf"]})
        assert r.headers["location"] == homes[acc.role.value], acc.id
        page = c.get(homes[acc.role.value])
        assert page.status_code == 200
        if acc.role.value == "agency":  # the busiest agency: it has requests to answer
            assert "/inbox/tk_" in page.text
    again = create_demo_accounts(world.db)  # a re-run sets new passwords
    assert {a.id for a in again} == {a.id for a in accounts}
    assert all(a.password != b.password for a, b in zip(accounts, again, strict=True))
