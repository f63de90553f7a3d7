"""A page's miss is a Russian HTML page in the site's layout — an unknown page (404), an
unknown query parameter or a value over its limit (422 naming the field and the rule) —
while the API keeps its JSON contract (``{"detail": "<field>: <rule>"}``)."""

from __future__ import annotations

import secrets

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from models.agencies import AgencyAnswer
from models.routes import Step
from tests.web.conftest import World, csrf_of, sign_in_client


def _russian_page(r: httpx.Response, code: int) -> str:
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("text/html")
    text = r.text
    assert '<html lang="ru">' in text
    for landmark in ("<header", "<nav", "<main"):
        assert landmark in text, landmark
    return text


@pytest.mark.parametrize("path", ["/no-such-page", "/routes/x/y/z", "/inbox/a/b",
                                  "/admin/nothing", "/apix", "/webhooks-old"])
def test_an_unknown_page_is_the_russian_404_page(world: World, path: str) -> None:
    for c in (TestClient(world.app, follow_redirects=False),
              sign_in_client(world.app, "coord39")):
        text = _russian_page(c.get(path), 404)
        assert "Не найдено" in text and "detail" not in text


@pytest.mark.parametrize("path", ["/api/no-such", "/webhooks/nothing", "/health/x",
                                  "/metrics/x"])
def test_an_unknown_machine_path_keeps_the_json_404(world: World, path: str) -> None:
    r = TestClient(world.app).get(path)
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_an_unknown_query_parameter_on_a_page_is_a_russian_422_naming_it(
        world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    text = _russian_page(c.get("/routes?overdue=1&kindd=x"), 422)
    assert "«kindd»: такого параметра у страницы нет." in text
    text = _russian_page(c.get("/login?foo=1"), 422)
    assert "«foo»" in text
    # the API's contract is unchanged
    r = TestClient(world.app).get("/api/clock?foo=1")
    assert r.status_code == 422
    assert r.json() == {"detail": "foo: unknown query parameter (not permitted)"}


def test_an_over_long_query_value_on_a_page_is_a_russian_422_naming_the_field(
        world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    text = _russian_page(c.get(f"/routes/{world.escalated_route}?notice={'x' * 301}"), 422)
    assert "параметр адреса «notice»: не длиннее 300 символов." in text
    assert "x" * 301 not in text  # the value is never echoed
    text = _russian_page(c.get(f"/routes?kind={'k' * 41}"), 422)
    assert "параметр адреса «kind»: не длиннее 40 символов." in text


def test_an_over_long_form_value_on_a_page_is_a_russian_422_and_stores_nothing(
        world: World) -> None:
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == world.fresh_route,
                                         Step.seq == 0)).one()
        request_id = step.current_request_id
    c = sign_in_client(world.app, "agency39")
    opened = c.get(f"/inbox/{request_id}")
    r = c.post(f"/inbox/{request_id}/answer", data={
        "csrf_token": csrf_of(opened.text), "nonce": secrets.token_urlsafe(12),
        "outcome": "provided", "information": "я" * 4001})
    text = _russian_page(r, 422)
    assert "поле формы «Сведения»: не длиннее 4000 символов." in text
    with Session(world.db) as s:
        assert not list(s.exec(select(AgencyAnswer)))


def test_a_get_of_a_form_only_page_address_is_a_russian_page(world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    r = c.get(f"/routes/{world.escalated_route}/life")
    text = _russian_page(r, 405)
    assert "Так эту страницу открыть нельзя" in text
    assert r.headers["allow"] == "POST"
