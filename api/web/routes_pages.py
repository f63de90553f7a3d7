"""The coordinator's pages: the region's routes (filters, overdue first, late counts by
agency) and a route's page — its timeline in business dates, steps, escalations, the
audit history, the person's data for a coordinator or administrator (each read audited,
152-ФЗ), a paper answer received, and the link to its Prefect flow run. The
rehabilitation organisation ensures the route's deadlines (363н п.10б)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.web.core import LEVEL_RU, DbDep, FormViewer, Viewer, ViewerDep, allowed, page, refuse
from api.web.inbox_pages import DONE_RU, ack
from api.web.messages import refusal_ru
from api.web.timeline import Bar, Mark, local_date, svg
from engine.agencies.reads import short_names
from engine.answers.by_hand import answer_by_hand
from engine.answers.reads import request_by_id
from engine.errors import EngineError
from engine.escalations.reads import escalations_of_route
from engine.persons.reads import get_person, record_read
from engine.routes.board import Filters, board, late_by_agency, matching, step_due, step_late
from engine.routes.branches import branches_of, decision_of, decision_readiness
from engine.routes.reads import get_route, step_by_id, steps_of
from engine.routes.receipt import steps_awaiting_receipt
from engine.supervisor import actions as sv
from engine.supervisor.reads import staff_actions_on_route
from models.agencies import RequestChannel
from models.labels import actor_ru, step_kind_ru
from models.routes import Route, RouteStatus, Step
from models.staff import StaffRole
from models.template_files import TemplateSpec, latest, templates
from models.templates import get_template

router = APIRouter(include_in_schema=False)
READERS = (StaffRole.coordinator, StaffRole.supervisor, StaffRole.admin)
PERSON_READERS = (StaffRole.coordinator, StaffRole.admin)
#: what a route life form did (``api.web.route_life_pages``), shown on the route page
LIFE_DONE_RU = {"refuse": "Отказ от сопровождения записан: шаги приостановлены.",
                "resume": "Сопровождение возобновлено с оставшимися рабочими днями.",
                "terminate": "Сопровождение прекращено по заявлению.",
                "receipt": "Получение запроса отмечено: срок ответа считается с этого дня.",
                "branches": "Решение о направлениях записано: невыбранные направления "
                            "закрыты как неприменимые."}
NOTICE_RU = DONE_RU | LIFE_DONE_RU
# supervisors' actions as the audit names them (engine/supervisor/actions.py)
ACTION_RU = {"acknowledged": "принято в работу", "deadline_extended": "срок продлён",
             "reassigned": "передано другому ведомству", "closed": "шаг закрыт"}


@dataclass(frozen=True)
class BranchForm:
    """The branch decision form as the coordinator sent it, with its refusal in Russian."""

    chosen: tuple[str, ...] = ()
    assessment: str = ""
    error: str = ""


@dataclass(frozen=True)
class BranchSection:
    """The route page's «Решение о направлениях» (000 п.10, п.13–15): the form when a
    decision can be accepted now (``engine.routes.branches.decision_readiness``), a note
    when the route waits for the need assessment, or the decision recorded."""

    state: str | None
    """``decision_readiness``: ready / assessment_pending / branch_opened, or None."""
    branches: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]
    after: str
    decision: dict[str, Any] | None
    decided_at: datetime | None
    closed: tuple[str, ...]
    form: BranchForm


def branch_section(route: Route, steps: list[Step], form: BranchForm | None
                   ) -> BranchSection | None:
    """What the route page shows of the branch decision (None: the route has no branches)."""
    spec = branches_of(route)
    if spec is None or spec.branching is None:
        return None
    decision = decision_of(route)
    decided_at = None
    chosen: tuple[str, ...] = ()
    if decision is not None:
        chosen = tuple(decision.get("chosen", ()))
        try:
            decided_at = datetime.fromisoformat(str(decision.get("decided_at", "")))
        except ValueError:
            decided_at = None
    return BranchSection(
        state=decision_readiness(route, steps), branches=spec.branches,
        alternatives=spec.branching.alternatives, after=spec.branching.after,
        decision=decision, decided_at=decided_at,
        closed=tuple(b for b in spec.branches if b not in chosen) if decision else (),
        form=form or BranchForm())


def prefect_ui_base() -> str:
    """Where Prefect's UI is: PREFECT_UI_URL, else PREFECT_API_URL without ``/api``."""
    ui = os.environ.get("PREFECT_UI_URL", "")
    if not ui:
        api = os.environ.get("PREFECT_API_URL", "") or os.environ.get("REHAB_PREFECT_API_URL", "")
        ui = api.removesuffix("/").removesuffix("/api") if api else "http://127.0.0.1:4200"
    return ui.rstrip("/")


def route_kinds() -> dict[str, TemplateSpec]:
    """The route kinds a filter offers: each data template's code and its newest version's
    title (``models/route_templates``; the built-in version 0 forms no new route)."""
    return {code: latest(code) for code in sorted(templates())}


@router.get("/routes", response_class=HTMLResponse)
def routes_list(
    request: Request, v: ViewerDep, s: DbDep,
    kind: Annotated[str, Query(max_length=40)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    agency: Annotated[str, Query(max_length=40)] = "",
    overdue: Annotated[str, Query(max_length=3)] = "",
    escalated: Annotated[str, Query(max_length=3)] = "",
) -> HTMLResponse:
    """Маршруты региона: фильтры, просроченные первыми, просрочки по ведомствам."""
    now: datetime = request.app.state.clock.now()
    if not allowed(v, *READERS):
        raise refuse(s, v, now=now, entity="page", entity_id="/routes", why="role")
    region = None if v.role is StaffRole.admin else v.user.region
    st = RouteStatus(state) if state in {x.value for x in RouteStatus} else None
    kinds = route_kinds()
    filters = Filters(kind=kind if kind in kinds else None, state=st,
                      agency_id=agency or None, overdue=bool(overdue), escalated=bool(escalated))
    rows = board(s, region=region, now=now, filters=filters)
    agencies = sorted({(r.agency_id, r.agency_name or r.agency_id) for r in rows
                       if r.agency_id})
    return page(request, v, "routes.html", rows=matching(rows, filters), late=late_by_agency(rows),
                filters=filters, templates=kinds, agencies=agencies,
                statuses=list(RouteStatus))


def _marks(s: Session, route_id: str, steps: list[Step], region: str) -> list[Mark]:
    """Escalations (on the day they opened) and supervisors' actions (on the day they were
    taken) on their step's row."""
    row_of = {st.id: i for i, st in enumerate(steps)}
    escalations = {e.id: e for e in escalations_of_route(s, route_id)}
    marks = [Mark(row=row_of[e.step_id], day=local_date(e.opened_at, region) or e.due_date,
                  kind="escalation", label=f"{LEVEL_RU[int(e.level)]}")
             for e in escalations.values() if e.step_id in row_of]
    for a in staff_actions_on_route(s, route_id, ACTION_RU):
        step_id = a.entity_id if a.entity == "step" else None
        if a.entity == "escalation" and a.entity_id.isdigit():
            esc = escalations.get(int(a.entity_id))
            step_id = esc.step_id if esc else None
        day = local_date(a.at, region)
        if step_id in row_of and day is not None:
            marks.append(Mark(row=row_of[step_id], day=day, kind="action",
                              label=f"{ACTION_RU[a.action]} ({actor_ru(a.actor)})"))
    return marks


@router.get("/routes/{route_id}", response_class=HTMLResponse)
def route_page(request: Request, route_id: str, v: ViewerDep, s: DbDep,
               notice: Annotated[str, Query(max_length=300)] = "") -> HTMLResponse:
    """Маршрут: шкала сроков, шаги, эскалации, история, данные заявителя."""
    return route_page_view(request, v, s, route_id, notice=notice)


def route_page_view(request: Request, v: Viewer, s: Session, route_id: str, *,
                    notice: str = "", answer_error: str = "", life_error: str = "",
                    receipt_error: str = "", branch_form: BranchForm | None = None,
                    code: int = 200) -> HTMLResponse:
    """The route page; a refused form comes back to it with its Russian message beside it
    (``answer_error``: the paper answer; ``life_error``: refusal / resumption / termination;
    ``receipt_error``: a paper request's receipt; ``branch_form``: the branch decision as
    sent, with its refusal) and ``code``."""
    now: datetime = request.app.state.clock.now()
    route = get_route(s, route_id[:40])
    if route is None or not allowed(v, *READERS, region=route.region):
        raise refuse(s, v, now=now, entity="route", entity_id=route_id,
                     why="unknown" if route is None else "role or region")
    steps = sorted(steps_of(s, route.id), key=lambda st: st.seq)
    region = route.region
    names = short_names(s)
    bars = []
    rows = []
    for st in steps:
        due_date = step_due(st)[0] or st.answer_by_date
        late = step_late(st, region, now)
        label = f"{st.seq}. {step_kind_ru(st.kind)}"
        bars.append(Bar(label=label if len(label) <= 26 else label[:25] + "…",
                        sent=local_date(st.sent_at, region),
                        due=due_date, answered=local_date(st.answered_at, region),
                        late_days=late))
        rows.append((st, names.get(st.agency_id or "", st.agency_id or "—"), due_date, late))
    today = local_date(now, region) or now.date()
    chart = svg(bars, _marks(s, route.id, steps, region), today=today)
    escalations = escalations_of_route(s, route.id)
    history = sv.route_history(s, staff=v.user, route_id=route.id, now=now)
    person = None
    if allowed(v, *PERSON_READERS, region=region):
        person = get_person(s, route.person_id)
        record_read(s, actor=v.actor, now=now, person_id=route.person_id, what="route_page",
                    route_id=route.id)
    paper = None
    current = next((st for st in steps if st.current_request_id and st.status.value in
                    ("awaiting", "needs_clarification")), None)
    if current is not None and current.current_request_id:
        req = request_by_id(s, current.current_request_id)
        if req is not None and req.channel is RequestChannel.inbox and \
                v.role in (StaffRole.coordinator, StaffRole.admin):
            paper = req
    coordinator = v.role in (StaffRole.coordinator, StaffRole.admin)
    unreceived = steps_awaiting_receipt(s, [st.id for st in steps])
    receipts = [(st, st.current_request_id) for st in steps
                if st.id in unreceived and coordinator]
    participants = sorted({(st.agency_id, names.get(st.agency_id, st.agency_id))
                           for st in steps if st.agency_id})
    s.commit()
    template = get_template(route.template, route.template_version)  # the route's version
    return page(request, v, "route.html", status_code=code, route=route, rows=rows, chart=chart,
                unreceived=unreceived, receipts=receipts, participants=participants,
                life_form=coordinator and route.status is RouteStatus.active,
                today=today, life_error=life_error, receipt_error=receipt_error,
                escalations=escalations, history=history, person=person, paper=paper,
                template_title=template.title,
                branch=branch_section(route, steps, branch_form),
                prefect_ui=prefect_ui_base(), notice=NOTICE_RU.get(notice, ""),
                answer_error=answer_error,
                nonce=secrets.token_urlsafe(16), action=None, names=names)


AnswerForm = Annotated[str, Form(max_length=4000)]


@router.post("/routes/{route_id}/paper-answer/{request_id}")
def route_paper_answer(request: Request, route_id: str, request_id: str, v: FormViewer,
                       s: DbDep, outcome: AnswerForm = "", information: AnswerForm = "",
                       comment: AnswerForm = "", nonce: AnswerForm = "") -> Response:
    """Внести бумажный ответ ведомства (тот же путь, что и ответ по webhook): staff record a
    paper answer received (298-п Регламент п.13: paper exchange); a refusal is shown beside
    the form in Russian, nothing stored."""
    now: datetime = request.app.state.clock.now()
    req = request_by_id(s, request_id[:40])
    step = step_by_id(s, req.step_id) if req else None
    route = get_route(s, step.route_id) if step else None
    if req is None or route is None or route.id != route_id or not allowed(
            v, StaffRole.coordinator, StaffRole.admin, region=route.region):
        raise refuse(s, v, now=now, entity="request", entity_id=request_id,
                     why="unknown or role or region")
    try:
        stored = answer_by_hand(s, request_id=req.id, outcome=outcome, information=information,
                                comment=comment, nonce=nonce, actor=v.actor, now=now)
    except EngineError as exc:
        s.rollback()
        return route_page_view(request, v, s, route.id, answer_error=refusal_ru(exc), code=422)
    s.commit()
    return RedirectResponse(f"/routes/{route.id}?notice={ack(stored)}", status_code=303)
