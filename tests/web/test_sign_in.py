"""Sign-in of people (issue 12): argon2 passwords, server-side sessions that end, CSRF on
every form, rate limits per account and per address held in the database, sign-out; every
object read checked against role, region and agency (a miss: 404 and an audit record)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from engine.staff.sessions import IDLE_TTL, session_user, sign_in
from models.audit import AuditEvent
from models.staff import SigninAttempt, StaffSession, StaffUser
from models.types import utcnow
from tests.web.conftest import PASSWORD, World, csrf_of, sign_in_client


def _audit(world: World, action: str) -> list[AuditEvent]:
    with Session(world.db) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)
                           .order_by(col(AuditEvent.id))))


def test_password_is_stored_as_argon2id_and_a_wrong_one_is_refused(world: World) -> None:
    with Session(world.db) as s:
        user = s.get(StaffUser, "coord39")
        assert user is not None and user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
    c = TestClient(world.app, follow_redirects=False)
    c.get("/login")
    r = c.post("/login", data={"account": "coord39", "password": "wrong password 1",
                               "csrf_token": c.cookies["rehab_login_csrf"]})
    assert r.status_code == 401
    assert "Неверная учётная запись или пароль" in r.text
    assert "rehab_session" not in c.cookies


def test_pages_need_sign_in_and_send_each_role_home(world: World) -> None:
    anon = TestClient(world.app, follow_redirects=False)
    r = anon.get("/routes")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/routes"
    for account, home in (("coord39", "/routes"), ("sup39", "/escalations"),
                          ("agency39", "/inbox"), ("admin", "/routes")):
        c = TestClient(world.app, follow_redirects=False)
        c.get("/login")
        r = c.post("/login", data={"account": account, "password": PASSWORD,
                                   "csrf_token": c.cookies["rehab_login_csrf"]})
        assert r.status_code == 303 and r.headers["location"] == home, account
        assert c.get(home).status_code == 200


def test_login_form_without_its_csrf_token_is_refused(world: World) -> None:
    c = TestClient(world.app, follow_redirects=False)
    c.get("/login")
    r = c.post("/login", data={"account": "coord39", "password": PASSWORD,
                               "csrf_token": "forged"})
    assert r.status_code == 400 and "rehab_session" not in c.cookies


def test_every_form_post_needs_the_sessions_csrf_token(world: World) -> None:
    c = sign_in_client(world.app, "sup39")
    esc_page = c.get("/escalations")
    assert esc_page.status_code == 200
    with Session(world.db) as s:
        from models.timers import Escalation

        esc = s.exec(select(Escalation).where(Escalation.route_id == world.escalated_route)
                     ).first()
        assert esc is not None
    before = len(_audit(world, "acknowledged"))
    r = c.post(f"/escalations/{esc.id}/acknowledge", data={"reason": "беру"})
    assert r.status_code == 403 and "Форма устарела" in r.text
    r = c.post(f"/escalations/{esc.id}/acknowledge",
               data={"reason": "беру", "csrf_token": "x" * 43})
    assert r.status_code == 403
    assert len(_audit(world, "acknowledged")) == before
    token = csrf_of(c.get(f"/escalations/{esc.id}").text)
    r = c.post(f"/escalations/{esc.id}/acknowledge", data={"reason": "беру",
                                                           "csrf_token": token})
    assert r.status_code == 303
    assert len(_audit(world, "acknowledged")) == before + 1


def test_sign_out_ends_the_session_on_the_server(world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    cookie = c.cookies["rehab_session"]
    token = csrf_of(c.get("/routes").text)
    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303
    replay = TestClient(world.app, follow_redirects=False, cookies={"rehab_session": cookie})
    assert replay.get("/routes").status_code == 303  # the old cookie is dead
    assert _audit(world, "signed_out")


def test_a_session_expires_when_idle(world: World) -> None:
    with Session(world.db) as s:
        done = sign_in(s, account="coord39", password=PASSWORD, client="t")
        s.commit()
        assert session_user(s, done.token) is not None
        assert session_user(s, done.token, now=utcnow() + IDLE_TTL + timedelta(seconds=1)) \
            is None
        assert session_user(s, done.token, now=utcnow() + timedelta(hours=9)) is None


def test_sign_in_is_rate_limited_per_account_in_the_database(world: World) -> None:
    for i in range(5):
        c = TestClient(world.app, follow_redirects=False)
        c.get("/login")
        r = c.post("/login", data={"account": "coord39", "password": f"wrong {i} password",
                                   "csrf_token": c.cookies["rehab_login_csrf"]})
        assert r.status_code == 401
    c = TestClient(world.app, follow_redirects=False)
    c.get("/login")
    r = c.post("/login", data={"account": "coord39", "password": PASSWORD,
                               "csrf_token": c.cookies["rehab_login_csrf"]})
    assert r.status_code == 429  # even the right password, until the window passes
    with Session(world.db) as s:  # counted in the table: another process sees the same
        n = len(list(s.exec(select(SigninAttempt).where(SigninAttempt.account == "coord39"))))
        assert n == 6
        assert not list(s.exec(select(StaffSession).where(StaffSession.staff_id == "coord39")))
    # another account from the same address is not locked by one account's failures
    assert sign_in_client(world.app, "sup39").get("/escalations").status_code == 200


def test_sign_in_is_rate_limited_per_client_address(world: World) -> None:
    from engine.staff.sessions import MAX_FAILED_PER_CLIENT, TooManyAttempts

    with Session(world.db) as s:
        for i in range(MAX_FAILED_PER_CLIENT):
            s.add(SigninAttempt(account=f"guess{i}", client="10.0.0.9", at=utcnow(), ok=False))
        s.commit()
        try:
            sign_in(s, account="sup39", password=PASSWORD, client="10.0.0.9")
            raise AssertionError("not refused")
        except TooManyAttempts as exc:
            assert str(exc).startswith("account: too many failed sign-ins")
        s.commit()
        done = sign_in(s, account="sup39", password=PASSWORD, client="10.0.0.10")
        assert done.user.id == "sup39"


def test_objects_outside_role_region_or_agency_are_404_and_audited(world: World) -> None:
    coord16 = sign_in_client(world.app, "coord16")
    assert coord16.get(f"/routes/{world.other_region_route}").status_code == 200
    r = coord16.get(f"/routes/{world.escalated_route}")
    assert r.status_code == 404
    assert world.escalated_route not in coord16.get("/routes").text
    agency = sign_in_client(world.app, "agency39")
    assert agency.get(f"/routes/{world.fresh_route}").status_code == 404
    assert agency.get("/escalations").status_code == 404
    coord = sign_in_client(world.app, "coord39")
    assert coord.get("/inbox").status_code == 404
    assert coord.get("/escalations/1").status_code == 404
    refused = _audit(world, "access_refused")
    assert {(a.actor, a.entity) for a in refused} >= {
        ("staff:coord16", "route"), ("staff:agency39", "route"), ("staff:agency39", "page"),
        ("staff:coord39", "page"), ("staff:coord39", "escalation")}


def test_revocation_ends_sessions_and_refuses_sign_in(world: World) -> None:
    from engine.staff.accounts import revoke_token

    c = sign_in_client(world.app, "coord39")
    with Session(world.db) as s:
        revoke_token(s, id="coord39", actor="t")
        s.commit()
    assert c.get("/routes").status_code == 303
    c2 = TestClient(world.app, follow_redirects=False)
    c2.get("/login")
    r = c2.post("/login", data={"account": "coord39", "password": PASSWORD,
                                "csrf_token": c2.cookies["rehab_login_csrf"]})
    assert r.status_code == 401


def test_after_sign_in_only_a_path_of_ours_is_followed() -> None:
    from api.web.sign_in import _safe_next

    assert _safe_next("/routes/rt_1") == "/routes/rt_1"
    for outside in ("//evil.example", "/\\evil.example", "https://evil.example",
                    "/a\r\nSet-Cookie: x=1", "routes"):
        assert _safe_next(outside) == "", outside


def test_sign_in_redirects_back_to_the_page_asked_for(world: World) -> None:
    c = TestClient(world.app, follow_redirects=False)
    r = c.get(f"/routes/{world.escalated_route}")
    assert r.headers["location"] == f"/login?next=/routes/{world.escalated_route}"
    c.get(r.headers["location"])
    r = c.post("/login", data={"account": "coord39", "password": PASSWORD,
                               "next": f"/routes/{world.escalated_route}",
                               "csrf_token": c.cookies["rehab_login_csrf"]})
    assert r.headers["location"] == f"/routes/{world.escalated_route}"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
