"""A phone's width (375 × 800): every page, opened by each role that may see it, fits the
screen — the page itself never scrolls sideways (``scrollWidth <= innerWidth``); a wide
table scrolls inside its own labelled wrapper — and axe-core still finds no violation
there (WCAG 2.1 AA 1.4.10 Reflow)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models.agencies import Agency
from models.routes import Step
from models.timers import Escalation
from tests.web.conftest import World
from tests.web.test_pages import axe_clean, sign_in

PHONE = {"width": 375, "height": 800}


def _phone(browser: Any, server: str) -> Any:
    return browser.new_context(base_url=server, viewport=PHONE, locale="ru-RU")


def _fits(page: Any, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[1] == 375
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                     && !e.closest('.table-wrap'))
        .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)""")
    assert width[0] <= width[1], f"{url}: page {width[0]} px wide at 375 px: {wide}"
    for wrap in page.locator(".table-wrap").all():  # a table scrolls in a named region
        assert wrap.get_attribute("role") == "region" and wrap.get_attribute("tabindex") == "0"
        label = page.locator(f"#{wrap.get_attribute('aria-labelledby')}")
        assert label.inner_text().strip(), url


def test_every_page_fits_a_phone_for_each_role(world: World, browser: Any,
                                               server: str) -> None:
    with Session(world.db) as s:
        esc = s.exec(select(Escalation).where(
            Escalation.route_id == world.escalated_route)).first()
        fresh = s.exec(select(Step).where(Step.route_id == world.fresh_route,
                                          Step.seq == 0)).one()
        agency = s.exec(select(Agency)).first()
    assert esc is not None and agency is not None
    routes = ["/routes", f"/routes/{world.escalated_route}", f"/routes/{world.fresh_route}",
              "/routes?overdue=1"]
    pages = {
        "coord39": [*routes, "/applications/new"],
        "sup39": [*routes, "/escalations", f"/escalations/{esc.id}"],
        "agency39": ["/inbox", f"/inbox/{fresh.current_request_id}"],
        "admin": [*routes, "/escalations", f"/escalations/{esc.id}", "/applications/new",
                  "/admin", "/admin/agencies", "/admin/agencies/new",
                  f"/admin/agencies/{agency.id}", "/admin/staff", "/admin/staff/new",
                  "/admin/calendars", "/admin/calendars?region=02&year=2025",
                  "/admin/templates", "/admin/templates/accompaniment/v2",
                  "/admin/templates/supported_living/v1"],
    }
    anon_ctx = _phone(browser, server)
    try:
        anon = anon_ctx.new_page()
        for url in ("/", "/login"):
            _fits(anon, url)
    finally:
        anon_ctx.close()
    for account, urls in pages.items():
        ctx = _phone(browser, server)
        try:
            page = sign_in(ctx, account)
            for url in urls:
                _fits(page, url)
            axe_clean(page, f"phone-{account}")  # the last page of each role, at 375 px
        finally:
            ctx.close()


def test_the_route_page_on_a_phone_passes_axe(world: World, browser: Any,
                                              server: str) -> None:
    ctx = _phone(browser, server)
    try:
        page = sign_in(ctx, "coord39")
        _fits(page, f"/routes/{world.escalated_route}")
        axe_clean(page, "phone-route")
        _fits(page, "/routes")
        axe_clean(page, "phone-routes")
    finally:
        ctx.close()
