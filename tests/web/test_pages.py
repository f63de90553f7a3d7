"""The people's pages in a real browser (Debian's chromium driven by Playwright): each
role's daily work, only what the role may see, and axe-core (WCAG 2.1 AA and best
practices) with no violation on every page; screenshots under test-artifacts/pages."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlmodel import Session, col, select

from engine.infra.settings import Settings
from engine.runtime.worker import Worker
from models.agencies import AgencyAnswer, AgencyRequest
from models.person_file import ApplicationRecord
from models.persons import Person
from models.routes import Route, Step, StepStatus
from models.snils import format_snils
from models.timers import Escalation
from tests.web.conftest import ARTIFACTS, AXE, PASSWORD, World, audit_of

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def sign_in(ctx: Any, account: str) -> Any:
    page = ctx.new_page()
    page.goto("/login")
    page.get_by_label("Учётная запись").fill(account)
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.wait_for_load_state()
    return page


def axe_clean(page: Any, name: str) -> None:
    """axe-core finds no violation on the page as it is; a screenshot is kept."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
    violations = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                  for v in result["violations"]]
    assert violations == [], f"{name}: {json.dumps(violations, ensure_ascii=False)}"
    assert result["passes"], name  # axe did run its rules



def test_coordinator_sees_own_region_overdue_first_and_the_route_timeline(
        world: World, pages: Any) -> None:
    anon = pages.new_page()
    anon.goto("/")
    assert anon.locator("meta[name=viewport]").count() == 1
    axe_clean(anon, "overview")
    anon.goto("/login")
    axe_clean(anon, "login")
    anon.keyboard.press("Tab")  # the first stop is the skip link
    assert anon.evaluate("document.activeElement.className") == "skip"

    page = sign_in(pages, "coord39")
    assert page.url.endswith("/routes")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    assert world.escalated_route in rows.nth(0).inner_text()  # overdue first
    assert world.other_region_route not in page.content()
    assert "Просрочено по ведомствам" in page.content()
    assert page.locator("section[aria-labelledby=late-h] li").count() == 1
    axe_clean(page, "routes")
    page.get_by_role("checkbox", name="просрочен").check()
    page.get_by_role("button", name="Показать").click()
    page.wait_for_load_state()
    assert page.locator("tbody tr").count() == 1
    assert "overdue=1" in page.url

    page.get_by_role("link", name=world.escalated_route).click()
    page.wait_for_load_state()
    svg = page.locator(".timeline svg[role=img]")
    assert svg.count() == 1
    assert svg.locator("rect").count() >= 2  # the step's waiting bar and its lateness
    assert svg.locator("polygon").count() >= 1  # the escalations
    assert "просрочка" in svg.inner_html()
    person = world.persons[0]
    assert person.full_name in page.content()
    reads = audit_of(world, actor="staff:coord39", action="read", entity="person")
    assert [r.after for r in reads] == [{"person_id": person.id, "what": "route_page"}]
    assert "/runs" in page.get_by_role("link", name=f"route-{world.escalated_route}",
                                       exact=False).get_attribute("href")
    axe_clean(page, "route")


def test_agency_answers_from_its_inbox_and_the_route_moves(world: World, pages: Any) -> None:
    page = sign_in(pages, "agency39")
    assert page.url.endswith("/inbox")
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == world.fresh_route,
                                         Step.seq == 0)).one()
        request_id = step.current_request_id
        others = [r.id for r in s.exec(select(AgencyRequest).where(
            AgencyRequest.agency_id != world.fresh_agency))]
    assert request_id is not None
    assert page.get_by_role("link", name=request_id).count() == 1
    assert not any(o in page.content() for o in others)  # only its own agency's requests
    axe_clean(page, "inbox")

    page.get_by_role("link", name=request_id).click()
    page.wait_for_load_state()
    assert world.persons[1].full_name in page.content()  # the subject, here only
    assert audit_of(world, entity="request", entity_id=request_id, action="received_by_agency")
    page.reload()  # a second opening is no second receipt
    assert len(audit_of(world, entity="request", entity_id=request_id,
                      action="received_by_agency")) == 1
    axe_clean(page, "inbox-request")

    page.get_by_label("отказ: запрос требует уточнения").check()
    page.get_by_role("button", name="Отправить ответ").click()
    page.wait_for_load_state()
    error = page.locator("#a-error")
    assert error.inner_text() == "Комментарий: при отказе укажите, что нужно уточнить."
    with Session(world.db) as s:
        assert not list(s.exec(select(AgencyAnswer)))
    axe_clean(page, "inbox-request-error")

    page.get_by_label("сведения предоставлены").check()
    page.get_by_label("Сведения (для ответа «предоставлены»)").fill("Справка № 12 от 13.03")
    page.get_by_role("button", name="Отправить ответ").click()
    page.wait_for_load_state()
    assert page.url.endswith("/inbox?done=accepted")
    assert request_id not in page.locator("tbody").inner_text()
    with Session(world.db) as s:
        answer = s.exec(select(AgencyAnswer)).one()
        assert (answer.request_id, answer.channel.value) == (request_id, "inbox")
        assert answer.payload["information"] == "Справка № 12 от 13.03"

    async def one_pass() -> int:
        async with Worker(world.db, world.clock, world.cfg, Settings(prefect_mirror=False),
                          worker_id="t") as w:
            return await w.run_once()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's loop
        assert pool.submit(asyncio.run, one_pass()).result() >= 1
    with Session(world.db) as s:
        steps = list(s.exec(select(Step).where(Step.route_id == world.fresh_route)
                            .order_by(col(Step.seq))))
        assert steps[0].status is StepStatus.answered
        assert steps[1].status in (StepStatus.awaiting, StepStatus.sending)


def test_supervisor_acts_on_an_escalation_and_is_refused_as_the_api_refuses(
        world: World, pages: Any) -> None:
    page = sign_in(pages, "sup39")
    assert page.url.endswith("/escalations")
    with Session(world.db) as s:
        top = s.exec(select(Escalation).where(Escalation.route_id == world.escalated_route)
                     .order_by(col(Escalation.level).desc())).first()
        assert top is not None
        due_before = top.due_date
    first = page.locator("tbody tr").first.inner_text()
    assert "эскалация" in first  # level 2 first
    axe_clean(page, "escalations")
    page.get_by_role("link", name=f"эскалация {top.id}").click()
    page.wait_for_load_state()
    axe_clean(page, "escalation")

    page.get_by_label("На сколько рабочих дней (1–250)").fill("3")
    page.locator("#ext-reason").fill("   ")
    page.get_by_role("button", name="Продлить").click()
    page.wait_for_load_state()
    assert page.locator("#err-extend-reason").inner_text() == \
        "Причина: нужно заполнить (видимыми символами)."
    axe_clean(page, "escalation-refused")
    assert not audit_of(world, action="deadline_extended")

    page.get_by_label("На сколько рабочих дней (1–250)").fill("3")
    page.locator("#ext-reason").fill("Ведомство просит три дня: архив закрыт")
    page.get_by_role("button", name="Продлить").click()
    page.wait_for_load_state()
    assert "Срок продлён" in page.content()
    done = audit_of(world, action="deadline_extended")
    assert [(a.actor, a.reason) for a in done] == [
        ("staff:sup39", "Ведомство просит три дня: архив закрыт")]
    with Session(world.db) as s:
        step = s.get(Step, top.step_id)
        assert step is not None and step.answer_by_date is not None
        assert step.answer_by_date > due_before
    page.goto(f"/routes/{world.escalated_route}")  # the action is marked on the timeline
    assert "срок продлён (сотрудник sup39)" in page.locator(".timeline svg").inner_html()
    assert world.persons[0].full_name not in page.content()  # a supervisor sees no person
    axe_clean(page, "route-supervisor")


def test_paper_application_with_errors_then_without(world: World, pages: Any) -> None:
    page = sign_in(pages, "coord39")
    page.goto("/applications/new")
    axe_clean(page, "application")
    page.get_by_label("Фамилия (обязательно)").fill("Петрова")
    bad_snils = "112-233-445 00"  # a wrong check number
    page.get_by_label("СНИЛС (XXX-XXX-XXX YY) (обязательно)").fill(bad_snils)

    def counts() -> tuple[int, int, int]:
        with Session(world.db) as s:
            return (len(list(s.exec(select(Route)))), len(list(s.exec(select(Person)))),
                    len(list(s.exec(select(ApplicationRecord)))))

    before = counts()
    page.get_by_role("button", name="Зарегистрировать").click()
    page.wait_for_load_state()
    assert counts() == before  # refused: nothing stored
    for path in ("request.kind", "person.full_name.first_name", "person.snils",
                 "person.birth_date", "person.sex"):
        fid = path.replace(".", "-")
        message = page.locator(f"#e-{fid}")
        assert message.count() == 1, path
        assert message.inner_text().strip(), path
        described = page.locator(f"#f-{fid}").get_attribute("aria-describedby") or ""
        assert f"e-{fid}" == described, path
    snils_message = page.locator("#e-person-snils").inner_text()
    assert "Контрольное число СНИЛС" in snils_message and "person.snils" not in snils_message
    # what was typed is kept for correction
    assert page.get_by_label("Фамилия (обязательно)").input_value() == "Петрова"
    axe_clean(page, "application-errors")

    fill = {"Кому адресовано (организация) (обязательно)": "ГБУ КО «Реабилитационный центр»",
            "Имя (обязательно)": "Анна", "Отчество (при наличии)": "Сергеевна",
            "СНИЛС (XXX-XXX-XXX YY) (обязательно)": format_snils("112233445"),
            "Дата рождения (обязательно)": "1980-05-17", "Серия": "2710",
            "Номер (обязательно)": "123456", "Дата выдачи (обязательно)": "2010-06-01",
            "Кем выдан (обязательно)": "УФМС России", "Код подразделения": "390-001",
            "Индекс": "236000", "Субъект РФ (обязательно)": "Калининградская область",
            "Населённый пункт (обязательно)": "Калининград", "Улица": "ул. Примерная",
            "Дом (обязательно)": "1", "Телефон": "+7 911 123-45-67",
            "Оператор: наименование": "Министерство социальной политики Калининградской "
                                      "области",
            "Оператор: ИНН": "3906000000", "Оператор: адрес": "г. Калининград"}
    for label, value in fill.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Вид заявления (обязательно)").select_option("accompaniment")
    page.get_by_label("Сопровождение: что просит заявитель").select_option("provide")
    page.get_by_label("Сопровождение: участник").select_option("rehabilitation_organisation")
    page.get_by_label("Пол (обязательно)").select_option("female")
    page.get_by_label("Как сообщать о ходе (обязательно)").select_option("phone")
    page.get_by_label("Группа").select_option("II")
    page.get_by_label("Причина").fill("общее заболевание")
    page.get_by_label("Дата установления").fill("2020-03-01")
    page.get_by_label("Бессрочно").check()
    page.get_by_label("Заявитель подтвердил согласие в заявлении").check()
    page.get_by_role("button", name="Зарегистрировать").click()
    page.wait_for_load_state()
    assert page.locator(".alert").count() == 0, page.locator(".alert").inner_text()
    with Session(world.db) as s:
        person = s.exec(select(Person).where(Person.snils == format_snils("112233445"))).one()
        assert person.full_name.startswith("Петрова Анна")
        record = s.exec(select(ApplicationRecord)
                        .where(ApplicationRecord.person_id == person.id)).one()
    # no ИПРА on file: registered, no route, the decision's explanation shown (004 п.7)
    assert record.route_id is None and counts() == (before[0], before[1] + 1, before[2] + 1)
    assert "нет ИПРА" in page.locator("[role=status]").inner_text()
    axe_clean(page, "application-registered")


def test_docs_and_redoc_load_with_no_request_leaving_the_host(
        world: World, pages: Any, server: str) -> None:
    """Every asset comes from us; ReDoc's link to its CDN logo is blocked by our CSP."""
    loaded: list[str] = []
    page = pages.new_page()
    local = (server, "data:", f"blob:{server}")
    page.on("requestfinished",
            lambda r: None if r.url.startswith(local) else loaded.append(r.url))
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .info")
    response = page.goto("/redoc")
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".api-content")
    assert loaded == []
