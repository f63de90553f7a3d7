"""Sign-out when the session has already ended (idle or expired): the form still leads to
the sign-in page, and signing in again never lands on the sign-out's address (a GET of it
was a 405 JSON); a form POSTed after the session ended is not where sign-in returns."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from engine.staff.sessions import IDLE_TTL
from models.staff import StaffSession
from models.types import utcnow
from tests.web.conftest import PASSWORD, World, csrf_of, sign_in_client


def _expire(world: World, account: str) -> None:
    with Session(world.db) as s:
        for row in s.exec(select(StaffSession).where(StaffSession.staff_id == account)):
            row.last_seen_at = utcnow() - IDLE_TTL - timedelta(minutes=1)
            s.add(row)
        s.commit()


def _sign_in_again(c: TestClient, login_url: str) -> str:
    form = c.get(login_url)
    assert form.status_code == 200
    marker = 'name="next" value="'
    nxt = form.text[form.text.index(marker) + len(marker):].split('"')[0] \
        if marker in form.text else ""
    r = c.post("/login", data={"account": "coord39", "password": PASSWORD, "next": nxt,
                               "csrf_token": c.cookies["rehab_login_csrf"]})
    assert r.status_code == 303
    return str(r.headers["location"])


def test_sign_out_after_the_session_expired_goes_to_sign_in_and_then_home(
        world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    token = csrf_of(c.get("/routes").text)
    _expire(world, "coord39")
    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert 'rehab_session=""' in r.headers["set-cookie"]  # the dead cookie is dropped
    assert _sign_in_again(c, r.headers["location"]) == "/routes"


def test_sign_in_never_lands_on_the_sign_out(world: World) -> None:
    c = TestClient(world.app, follow_redirects=False)
    assert _sign_in_again(c, "/login?next=/logout") == "/routes"
    c = TestClient(world.app, follow_redirects=False)
    c.get("/login")
    r = c.post("/login", data={"account": "coord39", "password": PASSWORD,
                               "next": "/logout?x=1",
                               "csrf_token": c.cookies["rehab_login_csrf"]})
    assert r.headers["location"] == "/routes"


def test_get_of_the_sign_out_goes_home_and_signs_no_one_out(world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    r = c.get("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert c.get("/routes").status_code == 200  # still signed in (a GET changes nothing)
    anon = TestClient(world.app, follow_redirects=False)
    r = anon.get("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_a_form_posted_after_the_session_ended_returns_to_no_form_address(
        world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    page = c.get(f"/routes/{world.escalated_route}")
    _expire(world, "coord39")
    r = c.post(f"/routes/{world.escalated_route}/life",
               data={"csrf_token": csrf_of(page.text), "act": "terminate",
                     "application_date": "2025-03-13"})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert _sign_in_again(c, "/login") == "/routes"
