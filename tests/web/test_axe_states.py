"""axe-core (WCAG 2.1 AA and best practices) finds no violation on the pages' refusals and
error states too: the 404 and 422 pages, the sign-in form with its error, the CSRF-refused
403 page, the route page with a form's error and the admin's staff form with errors."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import PASSWORD, World
from tests.web.test_pages import axe_clean, sign_in


def test_the_unknown_page_and_the_refused_address_pass_axe(world: World, pages: Any) -> None:
    page = pages.new_page()
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.get_by_role("heading", name="Не найдено").count() == 1
    axe_clean(page, "error-404")

    page = sign_in(pages, "coord39")
    response = page.goto("/routes?kindd=x")
    assert response is not None and response.status == 422
    assert "«kindd»" in page.locator("main").inner_text()
    axe_clean(page, "error-422-parameter")
    response = page.goto(f"/routes/{world.escalated_route}?notice={'x' * 301}")
    assert response is not None and response.status == 422
    assert "«notice»" in page.locator("main").inner_text()
    axe_clean(page, "error-422-length")


def test_the_sign_in_error_passes_axe(world: World, pages: Any) -> None:
    page = pages.new_page()
    page.goto("/login")
    page.get_by_label("Учётная запись").fill("coord39")
    page.get_by_label("Пароль").fill(PASSWORD + "x")
    page.get_by_role("button", name="Войти").click()
    page.wait_for_load_state()
    assert "Неверная учётная запись или пароль" in page.content()
    axe_clean(page, "login-error")


def test_the_csrf_refused_page_passes_axe(world: World, pages: Any) -> None:
    page = sign_in(pages, "coord39")
    page.evaluate("document.querySelector('form[action=\"/logout\"] "
                  "input[name=csrf_token]').value = 'forged'")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Выйти").click()
    response = nav.value
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", name="Форма отклонена").count() == 1
    axe_clean(page, "csrf-refused")


def test_the_route_page_with_a_form_error_passes_axe(world: World, pages: Any) -> None:
    page = sign_in(pages, "coord39")
    page.goto(f"/routes/{world.escalated_route}")
    with page.expect_navigation() as nav:  # the date left empty (the browser's check off)
        page.evaluate("""() => { const f = document.querySelector('form[action$="/life"]');
            f.querySelector('[name=application_date]').value = ''; f.submit(); }""")
    response = nav.value
    assert response is not None and response.status == 422
    assert page.locator("#life-error").inner_text().startswith("«Дата заявления»")
    axe_clean(page, "route-life-error")


def test_the_admin_staff_form_with_errors_passes_axe(world: World, pages: Any) -> None:
    page = sign_in(pages, "admin")
    page.goto("/admin/staff/new")
    with page.expect_navigation() as nav:
        page.evaluate("document.querySelector('form[action=\"/admin/staff\"]').submit()")
    response = nav.value
    assert response is not None and response.status == 422
    assert page.locator(".error").count() >= 1
    axe_clean(page, "admin-staff-errors")
