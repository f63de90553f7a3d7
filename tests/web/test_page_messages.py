"""Every refusal a page shows is in Russian, naming the field and the rule
(``api/web/messages.py``), while the API keeps its English ``detail`` for the same rule:
the administrator's agency and staff forms, the supervisor's four actions, the agency
inbox's answer form and the route page's paper answer form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

import calendars
from api.web.messages import GENERIC, refusal_ru
from engine.errors import EngineError
from engine.staff.accounts import create_staff
from models.agencies import Agency, AgencyAnswer
from models.audit import AuditEvent
from models.routes import Step
from models.timers import Escalation
from tests.web.conftest import World, csrf_of, sign_in_client

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
#: Two Latin words in a row: an English sentence (identifiers such as mz39 are single words).
ENGLISH = re.compile(r"[A-Za-z]{2,}[\s,;:'()]+[A-Za-z]{2,}")


def _russian(text: str) -> None:
    assert CYRILLIC.search(text), text
    assert not ENGLISH.search(text), text


def _error_spans(html: str) -> dict[str, str]:
    """The refusals beside fields: ``id`` of the span (``""`` for one without) → its text."""
    return dict(re.findall(r'<span class="error"(?: id="([^"]+)")?>([^<]*)</span>', html))


def _post(c: TestClient, form_page: str, action: str, data: dict[str, str]) -> Any:
    return c.post(action, data=data | {"csrf_token": csrf_of(c.get(form_page).text)})


# ---------------------------------------------------------------------------- the mechanism
def test_a_known_rule_is_named_in_russian_with_its_field_and_values() -> None:
    exc = EngineError("reason: at most 2000 characters", rule="max_length",
                      params={"max": 2000})
    assert (exc.field, exc.rule, str(exc)) == ("reason", "max_length",
                                               "reason: at most 2000 characters")
    assert refusal_ru(exc) == "Причина: не более 2000 знаков."
    assert refusal_ru(exc, fields={"reason": "Примечание"}) == "Примечание: не более 2000 знаков."


def test_an_unknown_rule_or_field_falls_back_to_a_generic_russian_sentence() -> None:
    assert EngineError("comment: something new").field == "comment"  # as before: no rule
    assert refusal_ru(EngineError("comment: something new")) == \
        "Действие не выполнено: проверьте поле «Комментарий»."
    assert refusal_ru(EngineError("wobble: odd", rule="max_length")) == GENERIC
    assert refusal_ru(ValueError("no field here at all")) == GENERIC
    missing = EngineError("reason: at most", rule="max_length")  # a value the text needs
    assert refusal_ru(missing) == "Действие не выполнено: проверьте поле «Причина»."
    for text in (GENERIC, refusal_ru(missing)):
        _russian(text)


def test_a_calendar_refusal_names_the_region() -> None:
    with pytest.raises(calendars.CalendarError) as caught:
        calendars.get_calendar("99")
    assert refusal_ru(caught.value) == \
        "Регион: такого региона нет среди календарей системы."


# --------------------------------------------------------------------- the administrator
@pytest.fixture
def admin(world: World) -> TestClient:
    return sign_in_client(world.app, "admin")


AGENCY = {"id": "culture39", "name": "Министерство культуры Калининградской области",
          "short_name": "Минкультуры", "role": "culture", "region": "39", "email": "",
          "channel": "inbox", "endpoint_url": ""}


def test_a_refused_agency_form_speaks_russian_beside_the_field(world: World,
                                                             admin: TestClient) -> None:
    for bad, field, said in (
            ({"id": "Bad Id"}, "id", "Код: от 2 до 40 знаков"),
            ({"role": "bank"}, "role", "Вид участника: выберите одно"),
            ({"channel": "http"}, "endpoint_url", "Адрес системы ведомства: нужно указать"),
            ({"channel": "http", "endpoint_url": "ftp://x"}, "endpoint_url",
             "Адрес системы ведомства: нужен адрес http:// или https://"),
            ({"region": "99"}, "region", "Регион: такого региона нет"),
            ({"name": " "}, "name", "Полное наименование: от 1 до 300 знаков"),
            ({"email": "nope"}, "email", "Эл. почта для напоминаний: нужен адрес")):
        r = _post(admin, "/admin/agencies/new", "/admin/agencies", AGENCY | bad)
        assert r.status_code == 422, bad
        text = _error_spans(r.text)[f"e-{field}"]
        assert text.startswith(said), (bad, text)
        _russian(text)
    # the card's correction and the rotation's refusal too
    card = f"/admin/agencies/{world.fresh_agency}"
    with Session(world.db) as s:
        agency = s.get(Agency, world.fresh_agency)
        assert agency is not None
        data = {"name": agency.name, "short_name": " ", "role": agency.role.value,
                "region": agency.region, "email": "", "channel": "inbox", "endpoint_url": ""}
    r = _post(admin, card, card, data)
    assert r.status_code == 422
    _russian(_error_spans(r.text)["e-short_name"])
    for _ in range(2):  # the demo secret is not kept; the second rotation keeps the first
        assert _post(admin, card, f"{card}/rotate-secret", {}).status_code == 200
    r = _post(admin, card, f"{card}/rotate-secret", {})
    assert r.status_code == 409
    said = re.search(r'<p class="error" id="e-secret">([^<]*)</p>', r.text)
    assert said, r.text[-3000:]
    _russian(said.group(1))
    assert said.group(1).startswith("Прежний секрет: смена секрета уже идёт")


def test_a_refused_staff_form_speaks_russian_beside_the_field(world: World,
                                                            admin: TestClient) -> None:
    base = {"id": "new-user", "display_name": "Новый", "role": "coordinator",
            "region": "39", "agency_id": "", "email": ""}
    for bad, field, said in (
            ({"role": "agency"}, "agency_id", "Ведомство: выбирается для сотрудника"),
            ({"id": "x"}, "id", "Учётная запись: от 2 до 40 знаков"),
            ({"id": "coord39"}, "id", "Учётная запись: такая запись уже есть"),
            ({"display_name": " "}, "display_name", "Имя: нужно заполнить"),
            ({"role": ""}, "role", "Роль: нужно выбрать"),
            ({"email": "nope"}, "email", "Эл. почта: нужен адрес")):
        r = _post(admin, "/admin/staff/new", "/admin/staff", base | bad)
        assert r.status_code == 422, bad
        text = _error_spans(r.text)[f"e-{field}"]
        assert text.startswith(said), (bad, text)
        _russian(text)
    r = _post(admin, "/admin/staff", "/admin/staff/admin/revoke", {})  # not oneself
    assert r.status_code == 409
    alert = re.search(r'<p class="alert" role="alert">([^<]*)</p>', r.text)
    assert alert and alert.group(1).startswith("Учётная запись: нельзя отозвать")
    _russian(alert.group(1))


# ---------------------------------------------------------------------------- the supervisor
def _escalation(world: World) -> Escalation:
    with Session(world.db) as s:
        esc = s.exec(select(Escalation).where(Escalation.route_id == world.escalated_route)
                     .order_by(Escalation.level.desc())).first()  # type: ignore[attr-defined]
        assert esc is not None
        return esc


def test_the_supervisors_refusals_are_the_apis_rules_in_russian(world: World) -> None:
    esc = _escalation(world)
    page_url = f"/escalations/{esc.id}"
    sup = sign_in_client(world.app, "sup39")
    with Session(world.db) as s:
        step = s.get(Step, esc.step_id)
        assert step is not None and step.agency_id is not None
        _, token = create_staff(s, id="sup39-api", display_name="Куратор API",
                                role="supervisor", region="39")
        s.commit()
        same_agency = step.agency_id
    api = TestClient(world.app)
    bearer = {"Authorization": f"Bearer {token}"}
    cases: list[tuple[str, dict[str, str], str, dict[str, Any], int, str]] = [
        # page action, form, API path, API body, status, the page's words beside the field
        ("extend", {"days": "3", "reason": "   "}, f"steps/{esc.step_id}/extend",
         {"days": 3, "reason": "   "}, 422, "Причина: нужно заполнить (видимыми символами)."),
        ("reassign", {"agency_id": same_agency, "reason": "другое"},
         f"steps/{esc.step_id}/reassign", {"agency_id": same_agency, "reason": "другое"},
         422, "Ведомство: шаг уже назначен этому ведомству."),
        ("acknowledge", {"reason": " "}, f"escalations/{esc.id}/acknowledge",
         {"reason": " "}, 422, "Причина: нужно заполнить (видимыми символами)."),
        ("close", {"reason": "не нужен"}, f"steps/{esc.step_id}/close",
         {"reason": "не нужен"}, 409, "Шаг: обязателен по шаблону маршрута: закрыть его"),
    ]
    for action, form, path, body, status, said in cases:
        r = _post(sup, page_url, f"{page_url}/{action}", form)
        assert r.status_code == status, (action, r.status_code)
        spans = _error_spans(r.text)
        assert any(t.startswith(said) for t in spans.values()), (action, spans)
        for text in spans.values():
            _russian(text)
        refused = api.post(f"/api/supervisor/{path}", json=body, headers=bearer)
        assert refused.status_code == status, (action, refused.text)
        detail = refused.json()["detail"]  # the API keeps its English message
        assert not CYRILLIC.search(detail) and ENGLISH.search(detail), detail
    r = _post(sup, page_url, f"{page_url}/extend", {"days": "0", "reason": "три дня"})
    assert r.status_code == 422
    assert _error_spans(r.text)["err-extend-days"] == \
        "На сколько рабочих дней: целое число от 1 до 250."
    assert _post(sup, page_url, f"{page_url}/acknowledge",
                 {"reason": "Беру в работу"}).status_code == 303
    r = _post(sup, page_url, f"{page_url}/acknowledge", {"reason": "ещё раз"})  # once only
    assert r.status_code == 409
    said = next(iter(_error_spans(r.text).values()))
    assert said == "Эскалация: принять в работу можно только открытую эскалацию " \
        "(сейчас: принята в работу)."
    with Session(world.db) as s:  # each refusal changed nothing
        actions = {a.action for a in s.exec(select(AuditEvent).where(
            AuditEvent.actor == "staff:sup39"))}
    assert not actions & {"deadline_extended", "reassigned", "closed"}


# ------------------------------------------------------------------- the answer forms
def _request_id(world: World) -> str:
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == world.fresh_route,
                                         Step.seq == 0)).one()
        assert step.current_request_id is not None
        return step.current_request_id


def test_the_inbox_answer_form_refuses_in_russian(world: World) -> None:
    agency = sign_in_client(world.app, "agency39")
    request_id = _request_id(world)
    form = f"/inbox/{request_id}"
    for data, said in (({"outcome": "rejected", "comment": " "},
                        "Комментарий: при отказе укажите, что нужно уточнить."),
                       ({"outcome": "maybe"},
                        "Результат: выберите одно из предложенных значений."),
                       ({"outcome": "provided", "information": "x" * 4001},
                        None)):  # the form's own length limit (FastAPI) refuses it first
        r = _post(agency, form, f"{form}/answer", data | {"nonce": "n" * 16})
        if said is None:
            assert r.status_code == 422
            continue
        assert r.status_code == 422, data
        assert _error_spans(r.text)["a-error"] == said
        _russian(said)
    r = _post(agency, form, f"{form}/answer", {"outcome": "provided", "nonce": "short"})
    assert _error_spans(r.text)["a-error"] == "Форма: форма устарела: откройте её ещё раз."
    with Session(world.db) as s:
        assert not list(s.exec(select(AgencyAnswer)))


def test_the_paper_answer_form_refuses_in_russian_beside_it(world: World) -> None:
    coord = sign_in_client(world.app, "coord39")
    request_id = _request_id(world)
    route_page = f"/routes/{world.fresh_route}"
    # a paper request is answered after its receipt (298-п Порядок п.11): staff record it
    r = _post(coord, route_page, f"{route_page}/receipt/{request_id}", {"received_at": ""})
    assert r.status_code == 303, r.text
    assert "paper-answer" in coord.get(route_page).text
    action = f"{route_page}/paper-answer/{request_id}"
    r = _post(coord, route_page, action, {"outcome": "rejected", "comment": "",
                                         "nonce": "n" * 16})
    assert r.status_code == 422
    assert _error_spans(r.text)["a-error"] == \
        "Комментарий: при отказе укажите, что нужно уточнить."
    assert 'aria-describedby="a-error"' in r.text
    with Session(world.db) as s:
        assert not list(s.exec(select(AgencyAnswer)))
    r = _post(coord, route_page, action, {"outcome": "absent", "nonce": "n" * 16})
    assert (r.status_code, r.headers["location"]) == (303, f"{route_page}?notice=accepted")
    assert "Ответ сохранён" in coord.get(r.headers["location"]).text
    # a notice that is not ours shows nothing (a page shows only its own Russian words)
    assert "hello world" not in coord.get(f"{route_page}?notice=hello world").text
