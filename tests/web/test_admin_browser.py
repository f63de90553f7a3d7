"""The administrator's pages in a real browser (Debian's chromium driven by Playwright): sign
in as the administrator, add an agency (its secret shown once), rotate its secret, add an
agency user of it who then signs in, read a calendar year and a template version; a
coordinator gets 404 on each; axe-core (WCAG 2.1 AA and best practices) finds no violation
on any of these pages. Screenshots under test-artifacts/pages."""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from models.agencies import Agency
from models.staff import StaffUser
from tests.web.conftest import World
from tests.web.test_pages import axe_clean, sign_in


def _once(page: Any, label: str) -> str:
    """The value shown once under ``label``."""
    dt = page.locator("dl.once dt", has_text=label)
    assert dt.count() == 1, label
    return str(dt.locator("xpath=following-sibling::dd[1]").inner_text()).strip()


def test_admin_adds_an_agency_rotates_its_secret_and_adds_its_user(
        world: World, pages: Any) -> None:
    page = sign_in(pages, "admin")
    page.get_by_role("link", name="Ведомства").click()
    page.wait_for_load_state()
    assert page.url.endswith("/admin/agencies")
    axe_clean(page, "admin-agencies")

    page.get_by_role("link", name="Добавить ведомство").click()
    page.wait_for_load_state()
    axe_clean(page, "admin-agency-new")
    page.get_by_label("Код (латиница, например mz39) (обязательно)").fill("Bad Id")
    page.get_by_role("button", name="Добавить ведомство").click()
    page.wait_for_load_state()
    assert page.locator("#e-id").inner_text().startswith("Код: от 2 до 40 знаков")  # beside it
    assert page.locator("#f-id").get_attribute("aria-invalid") == "true"
    axe_clean(page, "admin-agency-refused")

    page.get_by_label("Код (латиница, например mz39) (обязательно)").fill("culture39")
    page.get_by_label("Полное наименование (обязательно)").fill(
        "Министерство культуры Калининградской области")
    page.get_by_label("Краткое наименование (например, Минздрав) (обязательно)").fill(
        "Минкультуры")
    page.get_by_label("Вид участника (обязательно)").select_option("culture")
    page.get_by_label("во входящие на нашем сайте / на бумаге", exact=False).check()
    page.get_by_role("button", name="Добавить ведомство").click()
    page.wait_for_load_state()
    secret = _once(page, "Секрет подписи")
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]{44}", secret)
    axe_clean(page, "admin-agency-secret")
    with Session(world.db) as s:
        agency = s.get(Agency, "culture39")
        assert agency is not None and agency.secret_current == secret

    page.get_by_role("link", name="Готово, вернуться").click()
    page.wait_for_load_state()
    assert secret not in page.content()  # never shown again
    axe_clean(page, "admin-agency-card")
    page.get_by_role("button", name="Выпустить новый секрет").click()
    page.wait_for_load_state()
    rotated = _once(page, "Секрет подписи")
    assert rotated != secret
    with Session(world.db) as s:
        agency = s.get(Agency, "culture39")
        assert agency is not None
        assert (agency.secret_current, agency.secret_previous) == (rotated, secret)

    page.get_by_role("link", name="Сотрудники").click()
    page.wait_for_load_state()
    axe_clean(page, "admin-staff")
    page.get_by_role("link", name="Добавить сотрудника").click()
    page.wait_for_load_state()
    axe_clean(page, "admin-staff-new")
    page.get_by_label("Учётная запись (латиница", exact=False).fill("culture39-petrova")
    page.get_by_label("Имя, как его видят в системе (обязательно)").fill("Петрова Ольга")
    page.get_by_label("Роль (обязательно)").select_option("agency")
    page.get_by_label("Ведомство (только для сотрудника ведомства)").select_option("culture39")
    page.get_by_role("button", name="Добавить сотрудника").click()
    page.wait_for_load_state()
    password = _once(page, "Пароль для входа")
    axe_clean(page, "admin-staff-added")
    with Session(world.db) as s:
        user = s.get(StaffUser, "culture39-petrova")
        assert user is not None and user.agency_id == "culture39"

    page.get_by_role("link", name="Календари").click()
    page.wait_for_load_state()
    page.locator("#c-year").select_option("2026")
    page.get_by_role("button", name="Показать").click()
    page.wait_for_load_state()
    assert page.locator("td.day.off").count() == 118  # 365 - 247 working days
    axe_clean(page, "admin-calendar")
    page.get_by_role("link", name="Шаблоны").click()
    page.wait_for_load_state()
    axe_clean(page, "admin-templates")
    page.get_by_role("link", name="supported_living v1").click()
    page.wait_for_load_state()
    assert page.locator("tbody tr").count() >= 2
    axe_clean(page, "admin-template")
    page.goto("/admin")
    axe_clean(page, "admin-index")

    # the new agency user signs in with the one-time password and lands in their inbox
    other = pages.browser.new_context(base_url=page.url.split("/admin")[0], locale="ru-RU")
    try:
        p2 = other.new_page()
        p2.goto("/login")
        p2.get_by_label("Учётная запись").fill("culture39-petrova")
        p2.get_by_label("Пароль").fill(password)
        p2.get_by_role("button", name="Войти").click()
        p2.wait_for_load_state()
        assert p2.url.endswith("/inbox")
        assert "Министерство культуры" in p2.content()
    finally:
        other.close()


def test_a_coordinator_gets_404_on_the_admin_pages(world: World, pages: Any) -> None:
    page = sign_in(pages, "coord39")
    assert page.get_by_role("link", name="Ведомства").count() == 0  # not in their menu
    for path in ("/admin", "/admin/agencies", "/admin/staff", "/admin/calendars",
                 "/admin/templates"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        assert "Не найдено" in page.content()
    axe_clean(page, "admin-refused")
