"""/docs (Swagger UI) and /redoc (ReDoc): served from our host and clean under axe-core
(WCAG 2.1 AA and best practices), with sections opened by the reader (what the closed page
shows stays on the opened one: one axe run per page, each is long)."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import World
from tests.web.test_pages import axe_clean


def test_swagger_ui_opened_has_no_axe_violations(world: World, pages: Any) -> None:
    page = pages.new_page()
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("main").count() == 1
    # an operation opened, its form in "try it out" mode, and a schema opened
    page.locator(".opblock-summary-control").first.click()
    page.wait_for_selector(".opblock-body")
    page.locator(".opblock-body .try-out__btn").first.click()
    schema = page.locator("section.models .json-schema-2020-12-accordion").first
    schema.click()  # a schema opened
    page.locator("section.models .json-schema-2020-12-body").first.wait_for()
    axe_clean(page, "docs-opened")


def test_redoc_opened_has_no_axe_violations(world: World, pages: Any) -> None:
    page = pages.new_page()
    page.goto("/redoc")
    page.wait_for_selector(".api-content")
    assert page.locator("html").get_attribute("lang") == "en"
    # the first operation's 200 response opened
    page.locator(".api-content button", has_text="200").first.click()
    page.get_by_text("Response Schema:").first.wait_for()
    axe_clean(page, "redoc-opened")
