"""The administrator's pages (issue 12): agencies (add, correct, channel, secret rotation
shown once), staff (add with a one-time password, reset, revoke, give back — the use cases
of ``rehab staff``), a region's calendar for a year and the route template versions (read
only). Every change is audited as the administrator; anyone else gets 404 and an audit
record; a form without the session's CSRF token changes nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

import calendars
from engine.agencies.participants import fingerprint
from models.agencies import Agency
from models.labels import step_kind_ru
from models.staff import StaffUser
from models.template_files import templates
from tests.web.conftest import World, audit_of, csrf_of, sign_in_client

ADMIN_PAGES = ("/admin", "/admin/agencies", "/admin/agencies/new", "/admin/staff",
               "/admin/staff/new", "/admin/calendars", "/admin/templates",
               "/admin/templates/supported_living/v1")
NEW_AGENCY = {"id": "culture39", "name": "Министерство культуры Калининградской области",
              "short_name": "Минкультуры", "role": "culture", "region": "39",
              "email": "", "channel": "inbox", "endpoint_url": ""}



def _shown(html: str, label: str) -> str:
    """The value shown once beside ``label`` on the page (``admin_once.html``)."""
    m = re.search(re.escape(label) + r"[^<]*</dt><dd><code>([^<]+)</code>", html)
    assert m, label
    return m.group(1)


def _post(c: TestClient, form_page: str, action: str, data: dict[str, str]) -> object:
    return c.post(action, data=data | {"csrf_token": csrf_of(c.get(form_page).text)})


@pytest.fixture
def admin(world: World) -> TestClient:
    return sign_in_client(world.app, "admin")


def test_every_admin_page_opens_for_the_administrator(world: World,
                                                       admin: TestClient) -> None:
    for path in ADMIN_PAGES:
        r = admin.get(path)
        assert r.status_code == 200, path
        assert 'href="/admin/staff"' in r.text, path  # the administrator's menu


def test_anyone_else_gets_404_and_an_audit_record(world: World) -> None:
    for account in ("coord39", "sup39", "agency39"):
        c = sign_in_client(world.app, account)
        for path in ADMIN_PAGES:
            assert c.get(path).status_code == 404, (account, path)
        r = c.post("/admin/agencies", data=NEW_AGENCY | {"csrf_token": "forged"})
        assert r.status_code == 403  # the CSRF check comes first
        refused = {a.entity_id for a in audit_of(world, actor=f"staff:{account}",
                                               action="access_refused")}
        assert refused >= set(ADMIN_PAGES), account
    with Session(world.db) as s:
        assert s.get(Agency, "culture39") is None


def test_a_non_admin_with_a_valid_csrf_token_changes_nothing(world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    token = csrf_of(c.get("/applications/new").text)  # a real token of their session
    r = c.post("/admin/agencies", data=NEW_AGENCY | {"csrf_token": token})
    assert r.status_code == 404
    r = c.post("/admin/staff/sup39/revoke", data={"csrf_token": token})
    assert r.status_code == 404
    with Session(world.db) as s:
        assert s.get(Agency, "culture39") is None
        sup = s.get(StaffUser, "sup39")
        assert sup is not None and sup.token_revoked_at is None


def test_admin_adds_an_agency_and_sees_its_secret_once(world: World,
                                                       admin: TestClient) -> None:
    r = _post(admin, "/admin/agencies/new", "/admin/agencies", NEW_AGENCY)
    assert r.status_code == 200  # type: ignore[attr-defined]
    html = r.text  # type: ignore[attr-defined]
    assert r.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    secret = _shown(html, "Секрет подписи")
    assert secret.startswith("whsec_")
    with Session(world.db) as s:
        agency = s.get(Agency, "culture39")
        assert agency is not None
        assert (agency.secret_current, agency.endpoint_url) == (secret, None)
    created = audit_of(world, entity="agency", entity_id="culture39", action="created")
    assert [(a.actor, a.after["secret_fingerprint"]) for a in created] == [  # type: ignore[index]
        ("staff:admin", fingerprint(secret))]
    assert secret not in str([a.after for a in audit_of(world)])
    card = admin.get("/admin/agencies/culture39").text
    assert fingerprint(secret) in card and secret not in card  # never again
    assert "culture39" in admin.get("/admin/agencies").text


def test_a_refused_agency_form_names_the_field_and_stores_nothing(
        world: World, admin: TestClient) -> None:
    for bad, field in (({"id": "Bad Id"}, "id"), ({"role": "bank"}, "role"),
                       ({"channel": "http"}, "endpoint_url"),
                       ({"channel": "http", "endpoint_url": "ftp://x"}, "endpoint_url"),
                       ({"region": "99"}, "region")):
        r = _post(admin, "/admin/agencies/new", "/admin/agencies", NEW_AGENCY | bad)
        assert r.status_code == 422, bad  # type: ignore[attr-defined]
        html = r.text  # type: ignore[attr-defined]
        assert f'id="e-{field}"' in html, (bad, html[:2000])
        assert f'aria-describedby="e-{field}' in html or field == "channel", bad
    with Session(world.db) as s:
        assert s.get(Agency, "culture39") is None
        assert s.get(Agency, "Bad Id") is None


def test_admin_corrects_a_card_and_moves_the_agency_to_its_system(
        world: World, admin: TestClient) -> None:
    agency_id = world.fresh_agency
    form = f"/admin/agencies/{agency_id}"
    with Session(world.db) as s:
        before = s.get(Agency, agency_id)
        assert before is not None and before.endpoint_url is None
        old_name = before.name
    data = {"name": old_name + " (переименовано)", "short_name": before.short_name,
            "role": before.role.value, "region": "39", "email": "mail@example.org",
            "channel": "http", "endpoint_url": "https://agency.example.org/requests"}
    r = _post(admin, form, form, data)
    assert r.status_code == 303  # type: ignore[attr-defined]
    with Session(world.db) as s:
        after = s.get(Agency, agency_id)
        assert after is not None
        assert after.name.endswith("(переименовано)")
        assert after.endpoint_url == "https://agency.example.org/requests"
        assert after.email == "mail@example.org"
    updated = audit_of(world, entity="agency", entity_id=agency_id, action="updated")
    assert [(a.actor, sorted(a.after or {})) for a in updated] == [
        ("staff:admin", ["email", "name"])]
    assert updated[0].before == {"name": old_name, "email": before.email}
    moved = audit_of(world, entity="agency", entity_id=agency_id, action="endpoint_changed")
    assert [a.after for a in moved] == [{"endpoint_url": "https://agency.example.org/requests"}]
    # back to the inbox (paper exchange); the same form unchanged writes nothing more
    r = _post(admin, form, form, data | {"channel": "inbox"})
    assert r.status_code == 303  # type: ignore[attr-defined]
    r = _post(admin, form, form, data | {"channel": "inbox"})
    assert len(audit_of(world, entity="agency", entity_id=agency_id)) == 3
    with Session(world.db) as s:
        agency = s.get(Agency, agency_id)
        assert agency is not None and agency.endpoint_url is None


def test_admin_rotates_a_secret_shown_once_then_retires_the_previous(
        world: World, admin: TestClient) -> None:
    agency_id = world.fresh_agency
    form = f"/admin/agencies/{agency_id}"
    r = _post(admin, form, f"{form}/rotate-secret", {})
    assert r.status_code == 200  # type: ignore[attr-defined]
    first = _shown(r.text, "Секрет подписи")  # type: ignore[attr-defined]
    with Session(world.db) as s:
        agency = s.get(Agency, agency_id)
        assert agency is not None and agency.secret_current == first
        demo_kept = agency.secret_previous is not None
    if not demo_kept:  # the seed's demo secret is public: it is not kept
        r = _post(admin, form, f"{form}/rotate-secret", {})
        second = _shown(r.text, "Секрет подписи")  # type: ignore[attr-defined]
        with Session(world.db) as s:
            agency = s.get(Agency, agency_id)
            assert agency is not None
            assert (agency.secret_current, agency.secret_previous) == (second, first)
    r = _post(admin, form, f"{form}/rotate-secret", {})  # a rotation is in progress
    assert r.status_code == 409  # type: ignore[attr-defined]
    assert "Прежний секрет: смена секрета уже идёт: сначала отзовите прежний секрет." \
        in r.text  # type: ignore[attr-defined]
    r = _post(admin, form, f"{form}/retire-previous", {})
    assert r.status_code == 303  # type: ignore[attr-defined]
    with Session(world.db) as s:
        agency = s.get(Agency, agency_id)
        assert agency is not None and agency.secret_previous is None
    actions = [a.action for a in audit_of(world, entity="agency", entity_id=agency_id,
                                        actor="staff:admin")]
    assert actions[-1] == "secret_previous_retired" and "secret_rotated" in actions


def _sign_in_status(world: World, account: str, password: str) -> int:
    c = TestClient(world.app, follow_redirects=False)
    c.get("/login")
    return c.post("/login", data={"account": account, "password": password,
                                  "csrf_token": c.cookies["rehab_login_csrf"]}).status_code


def test_admin_adds_an_agency_user_who_signs_in_with_the_one_time_password(
        world: World, admin: TestClient) -> None:
    data = {"id": "mz39-ivanova", "display_name": "Иванова Мария", "role": "agency",
            "region": "39", "agency_id": world.fresh_agency, "email": ""}
    r = _post(admin, "/admin/staff/new", "/admin/staff", data)
    assert r.status_code == 200  # type: ignore[attr-defined]
    password = _shown(r.text, "Пароль для входа")  # type: ignore[attr-defined]
    _shown(r.text, "Токен API")  # type: ignore[attr-defined]
    with Session(world.db) as s:
        user = s.get(StaffUser, "mz39-ivanova")
        assert user is not None and user.agency_id == world.fresh_agency
        assert user.password_hash and password not in user.password_hash
    created = audit_of(world, entity="staff", entity_id="mz39-ivanova", action="created")
    assert [(a.actor, (a.after or {}).get("agency_id")) for a in created] == [
        ("staff:admin", world.fresh_agency)]
    user_client = sign_in_client(world.app, "mz39-ivanova", password)
    assert user_client.get("/inbox").status_code == 200
    assert "mz39-ivanova" in admin.get("/admin/staff").text


def test_a_refused_staff_form_names_the_field(world: World, admin: TestClient) -> None:
    base = {"id": "new-user", "display_name": "Новый", "role": "coordinator",
            "region": "39", "agency_id": "", "email": ""}
    for bad, field in (({"role": "agency"}, "agency_id"), ({"id": "x"}, "id"),
                       ({"id": "coord39"}, "id"), ({"display_name": " "}, "display_name"),
                       ({"role": ""}, "role"), ({"email": "nope"}, "email")):
        r = _post(admin, "/admin/staff/new", "/admin/staff", base | bad)
        assert r.status_code == 422, bad  # type: ignore[attr-defined]
        assert f'id="e-{field}"' in r.text, bad  # type: ignore[attr-defined]
    with Session(world.db) as s:
        assert s.get(StaffUser, "new-user") is None


def test_admin_resets_a_password_revokes_and_gives_access_back(
        world: World, admin: TestClient) -> None:
    from tests.web.conftest import PASSWORD

    victim = sign_in_client(world.app, "coord39")
    r = _post(admin, "/admin/staff", "/admin/staff/coord39/password", {})
    new_password = _shown(r.text, "Пароль для входа")  # type: ignore[attr-defined]
    assert victim.get("/routes").status_code == 303  # the old session ended
    assert _sign_in_status(world, "coord39", PASSWORD) == 401
    assert _sign_in_status(world, "coord39", new_password) == 303
    r = _post(admin, "/admin/staff", "/admin/staff/coord39/revoke", {})
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert _sign_in_status(world, "coord39", new_password) == 401
    assert "отозван" in admin.get("/admin/staff").text
    r = _post(admin, "/admin/staff", "/admin/staff/coord39/restore", {})
    assert r.status_code == 200  # type: ignore[attr-defined]
    assert _sign_in_status(world, "coord39", new_password) == 303
    assert [a.action for a in audit_of(world, entity="staff", entity_id="coord39",
                                     actor="staff:admin")] == [
        "password_set", "token_revoked", "token_rotated"]
    r = _post(admin, "/admin/staff", "/admin/staff/admin/revoke", {})  # not oneself
    assert r.status_code == 409  # type: ignore[attr-defined]
    r = _post(admin, "/admin/staff", "/admin/staff/nobody/password", {})
    assert r.status_code == 404  # type: ignore[attr-defined]


def test_csrf_is_checked_on_the_admin_forms(world: World, admin: TestClient) -> None:
    r = admin.post("/admin/agencies", data=NEW_AGENCY)
    assert r.status_code == 403
    r = admin.post(f"/admin/agencies/{world.fresh_agency}/rotate-secret",
                   data={"csrf_token": "forged"})
    assert r.status_code == 403
    with Session(world.db) as s:
        assert s.get(Agency, "culture39") is None
    assert not audit_of(world, action="secret_rotated")


def test_the_calendar_year_shows_each_day_off_of_the_region(admin: TestClient) -> None:
    cal = calendars.get_calendar("39")
    html = admin.get("/admin/calendars?region=39&year=2026").text
    summary = cal.year_summary(2026)
    assert summary.working_days == 247
    assert f"<dd>{summary.working_days}</dd>" in html
    assert html.count('<td class="day off"') == summary.days_off
    assert "01.01.2026" in html and "12.06.2026" in html
    tatarstan = admin.get("/admin/calendars?region=16&year=2026").text
    assert tatarstan.count('<td class="day off"') == calendars.get_calendar("16").year_summary(
        2026).days_off
    assert tatarstan.count('<td class="day off"') > summary.days_off  # its own holidays
    assert admin.get("/admin/calendars?region=zz&year=abc").status_code == 200  # defaults


def test_template_versions_list_and_show_steps_with_clauses(admin: TestClient) -> None:
    listing = admin.get("/admin/templates").text
    for code, versions in templates().items():
        for version, spec in versions.items():
            assert f"/admin/templates/{code}/v{version}" in listing
            shown = admin.get(f"/admin/templates/{code}/v{version}").text
            for step in spec.steps:
                assert f'<td data-kind="{step.kind}">{step_kind_ru(step.kind)}</td>' in shown
                assert step.basis in shown
            # a term the region's act sets is said so, not printed as a number (or None)
            assert "первый запрос — по акту региона от регистрации, следующие — 1 р.д." in shown
            assert "None" not in shown
    assert admin.get("/admin/templates/supported_living/v99").status_code == 404
    assert admin.get("/admin/templates/nope/v1").status_code == 404
