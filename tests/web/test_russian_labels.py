"""Pages speak Russian: every identifier a page shows — a step's kind, an audit record's
action, entity and actor, a deadline's and a timer's kind, an ИПРА direction, a region and
its time zone — has its Russian label (``models/labels.py``), and the pages show the labels,
never the codes (the handbook: user-facing text in Russian; identifiers stay in code and the
API)."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from models import labels
from models.agencies import AnswerOutcome
from models.ipra import MeasureDirection
from models.notifications import NotificationStatus
from models.routes import Step
from models.template_files import templates as data_templates
from models.templates import TEMPLATES
from models.timers import DeadlineKind, Escalation, TimerKind
from tests.web.conftest import World, sign_in_client

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("engine", "flows", "tasks", "api", "cli", "sim", "ops")


def _every_template_kind() -> set[str]:
    kinds = {st.kind for t in TEMPLATES.values() for st in t.steps}
    for versions in data_templates().values():
        for spec in versions.values():
            kinds |= {st.kind for st in spec.steps}
    return kinds


def test_every_step_kind_of_every_template_has_a_russian_name() -> None:
    kinds = _every_template_kind()
    assert len(kinds) > 20  # the built-in templates and the data files were both read
    missing = sorted(k for k in kinds if k not in labels.STEP_KIND_RU)
    assert not missing, f"step kinds without a Russian name: {missing}"
    for kind in kinds:
        assert re.search(r"[а-яё]", labels.step_kind_ru(kind)), kind


def test_an_ipra_measure_step_is_named_by_its_direction() -> None:
    assert labels.step_kind_ru("ipra_technical_aids_0a1b2c3d") == \
        "мероприятие ИПРА: технические средства реабилитации"
    assert labels.step_kind_ru("ipra_medical_0a1b2c3d_2") == \
        "мероприятие ИПРА: медицинская реабилитация"
    assert labels.step_kind_ru("need_assessment") == "оценка нуждаемости"


def _module_constants() -> dict[str, str]:
    """``NAME = "text"`` at the top of every product module (an action passed by name)."""
    out: dict[str, str] = {}
    for pkg in PRODUCT:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.parse(path.read_text("utf-8")).body:
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                        and isinstance(node.value.value, str):
                    for t in node.targets:
                        if isinstance(t, ast.Name):
                            out[t.id] = node.value.value
    return out


def _written_actions() -> set[str]:
    """Every audit action the product writes: each ``action=`` given as text or as a
    module constant, plus those built at run time (an answer's outcome, a notification's
    status)."""
    consts = _module_constants()
    found: set[str] = set()
    for pkg in PRODUCT:
        for path in (ROOT / pkg).rglob("*.py"):
            if path.parent.name == "web" and path.name.endswith("_pages.py"):
                continue  # a form's action="/url" (the pages' own audit goes through core)
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                for kw in node.keywords:
                    if kw.arg != "action":
                        continue
                    v = kw.value
                    if isinstance(v, ast.Constant) and isinstance(v.value, str):
                        found.add(v.value)
                    elif isinstance(v, ast.Name) and v.id in consts and v.id.isupper():
                        found.add(consts[v.id])
    found |= {f"answer_{o.value}" for o in AnswerOutcome}  # engine/routes/transitions.py
    found |= {s.value for s in NotificationStatus} | {"failed", "attempt_failed"}  # outbox
    found.add("access_refused")  # api/web/core.py refuse
    return found


def test_every_audit_action_the_product_writes_has_a_russian_label() -> None:
    actions = _written_actions()
    assert {"registered", "placed_in_inbox", "received_by_agency", "awaiting_answer",
            "fired", "opened", "answer_provided"} <= actions  # the scan sees them
    missing = sorted(a for a in actions if a not in labels.AUDIT_ACTION_RU)
    assert not missing, f"audit actions without a Russian label: {missing}"


def test_every_system_actor_and_entity_has_a_russian_label() -> None:
    parts: set[str] = set()
    entities: set[str] = set()
    for pkg in PRODUCT:
        for path in (ROOT / pkg).rglob("*.py"):
            text = path.read_text("utf-8")
            parts |= set(re.findall(r'"system:([a-z_]+)"', text))
            entities |= set(re.findall(r'\bentity="([a-z_]+)"', text))
    assert {"engine", "ladder"} <= parts and {"route", "step", "timer"} <= entities
    assert not sorted(parts - set(labels.SYSTEM_PART_RU))
    assert not sorted(entities - set(labels.AUDIT_ENTITY_RU))
    assert labels.actor_ru("system:engine") == "система: движок маршрутов"
    assert labels.actor_ru("staff:coord39") != "staff:coord39"
    assert labels.actor_ru("agency:msp39", {"msp39": "Минсоцполитики"}) == \
        "ведомство Минсоцполитики"


def test_deadline_timer_direction_region_and_time_zone_labels() -> None:
    assert set(labels.DEADLINE_KIND_RU) == set(DeadlineKind)
    assert set(labels.TIMER_KIND_RU) == set(TimerKind)
    assert set(labels.DIRECTION_SHORT_RU) == set(MeasureDirection)
    assert labels.cause_ru("timer answer_escalation due 2025-03-12") == \
        "эскалация: ответ так и не получен (срок 12.03.2025)"
    assert labels.region_name("39") == "Калининградская область"
    assert labels.region_timezone_ru("39") == "калининградское время (МСК−1)"
    for code in ("02", "16", "77"):
        assert re.search(r"[а-яё]", labels.region_timezone_ru(code)), code


# ---------------------------------------------------------------------------- the pages
_CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def visible_text(page: str) -> str:
    """The page's text as a person sees it (no tags, attributes, scripts or styles)."""
    body = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", page)
    body = re.sub(r"(?s)<[^>]+>", " ", body)
    return html.unescape(body)


def codes_shown(page: str, *ids: str) -> list[str]:
    """snake_case identifiers in the page's text (the objects' own ids removed)."""
    text = visible_text(page)
    for i in ids:
        text = text.replace(i, " ")
    return sorted(set(_CODE.findall(text)))


def _ids(world: World) -> list[str]:
    with Session(world.db) as s:
        steps = list(s.exec(select(Step)))
        escs = list(s.exec(select(Escalation)))
    return [*(st.id for st in steps), *(st.current_request_id or "" for st in steps),
            *(f"{e.id}" for e in escs), world.escalated_route, world.fresh_route,
            world.other_region_route]


def test_the_route_page_shows_russian_labels_and_no_codes(world: World) -> None:
    c = sign_in_client(world.app, "coord39")
    r = c.get(f"/routes/{world.escalated_route}")
    assert r.status_code == 200
    assert codes_shown(r.text, *_ids(world)) == []
    text = visible_text(r.text)
    for raw in ("need_assessment", "system:engine", "placed_in_inbox", "Europe/Kaliningrad",
                "часовой пояс региона 39"):
        assert raw not in text, raw
    assert "0. оценка нуждаемости" in text  # the steps' table and the timeline's label
    assert "Калининградская область" in text
    assert "калининградское время (МСК−1)" in text  # registration time and the footer
    assert "система: движок маршрутов" in text and "зарегистрировано" in text
    assert "запрос помещён во входящие ведомства" in text
    assert "request delivered" not in text and "запрос доставлен" in text
    assert "эскалация: ответ так и не получен (срок 12.03.2025)" in text  # the reason
    assert "система: проверка таймеров" in text  # system:sweeper:<id>


def test_the_escalation_page_names_its_deadline_cause_and_agency(world: World) -> None:
    with Session(world.db) as s:
        esc = next((e for e in s.exec(select(Escalation).where(
            Escalation.route_id == world.escalated_route)) if int(e.level) == 2), None)
        assert esc is not None
        step = s.get(Step, esc.step_id)
        assert step is not None and step.agency_id
    c = sign_in_client(world.app, "sup39")
    r = c.get(f"/escalations/{esc.id}")
    assert r.status_code == 200
    text = visible_text(r.text)
    assert codes_shown(r.text, *_ids(world)) == []
    assert "(answer_by)" not in text and "timer answer_escalation" not in text
    assert "(срок ответа)" in text
    assert "эскалация: ответ так и не получен (срок" in text
    assert f"Ведомство {step.agency_id} " not in text.replace("\n", " ")
    assert "шаг: запрос доставлен, ожидается ответ" in text or "таймер: сработал" in text
    for raw in ("step: awaiting_answer", "timer: fired", "escalation: opened"):
        assert raw not in text, raw


def test_lists_inbox_and_admin_template_show_no_codes(world: World) -> None:
    ids = _ids(world)
    coord = sign_in_client(world.app, "coord39")
    routes = coord.get("/routes")
    assert codes_shown(routes.text, *ids) == [] and "оценка нуждаемости" in routes.text
    sup = sign_in_client(world.app, "sup39")
    escs = sup.get("/escalations")
    assert codes_shown(escs.text, *ids) == [] and "оценка нуждаемости" in escs.text
    agency = sign_in_client(world.app, "agency39")
    inbox = agency.get("/inbox")
    assert codes_shown(inbox.text, *ids) == [] and "оценка нуждаемости" in inbox.text
    with Session(world.db) as s:
        step = s.exec(select(Step).where(Step.route_id == world.fresh_route,
                                         Step.seq == 0)).one()
    req = agency.get(f"/inbox/{step.current_request_id}")
    assert req.status_code == 200
    assert codes_shown(req.text, *ids) == [] and "оценка нуждаемости" in req.text
    admin: TestClient = sign_in_client(world.app, "admin")
    tpl = admin.get("/admin/templates/accompaniment/v2")
    assert tpl.status_code == 200, tpl.text[:300]
    text = visible_text(tpl.text)
    assert "technical_aids" not in text and "mse_informing" not in text
    assert "технические средства реабилитации" in text and "информирование в бюро МСЭ" in text


def test_reasons_and_resolutions_the_engine_writes_read_in_russian() -> None:
    assert labels.reason_ru("answer received 3 working day(s) late") == \
        "ответ получен с опозданием 3 раб. дн."
    assert labels.reason_ru("request delivered on time") == "запрос доставлен в срок"
    assert labels.reason_ru("step closed by supervisor") == "шаг закрыт куратором"
    assert labels.reason_ru("request delivered") == "запрос доставлен"
    assert labels.reason_ru("answer 12 received") == "получен ответ № 12"
    assert labels.reason_ru("timer answer_overdue due 2025-03-10") == \
        "ответ просрочен (срок 10.03.2025)"
    assert labels.reason_ru("Ведомство не отвечает") == "Ведомство не отвечает"  # a person's
