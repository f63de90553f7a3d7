"""The agency inbox: for an agency user, the open requests addressed to their agency with
deadlines in the agency region's calendar (298-п Порядок п.11: 5 working days) — of an
agency without its own system (298-п Регламент п.13: paper exchange) and of one whose
system takes our webhook alike, so that either can answer by hand — the request's content — the
only place the subject's data is shown to an agency, each read audited (152-ФЗ) — and the
answer form, which goes down the webhook's path (``engine/answers/by_hand.py``); a refusal
is shown beside the form in Russian (``api/web/messages.py``). Staff record a paper answer
received on the route's page (``routes_pages``), down the same path."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.web.core import DbDep, FormViewer, Viewer, ViewerDep, page, refuse
from api.web.messages import refusal_ru
from engine.agencies.reads import agency_by_id
from engine.answers.by_hand import answer_by_hand
from engine.answers.intake import StoredAnswer
from engine.answers.reads import answer_to, open_requests, request_by_id
from engine.errors import EngineError
from engine.persons.reads import get_person, record_read
from engine.routes.reads import get_route, step_by_id
from engine.routes.receipt import confirm_receipt
from models.agencies import AgencyRequest, RequestChannel
from models.routes import Route, Step, StepStatus
from models.staff import StaffRole

router = APIRouter(include_in_schema=False)
WAITING = (StepStatus.awaiting, StepStatus.sending)
DONE_RU = {"accepted": "Ответ сохранён и будет применён к маршруту.",
           "stored_not_applied": "Ответ сохранён, но маршрут он не изменит (запрос уже "
                                 "отвечен или отозван).",
           "duplicate": "Этот ответ уже был сохранён."}


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, v: ViewerDep, s: DbDep,
          done: str = "") -> HTMLResponse:
    """Входящие запросы ведомства."""
    now: datetime = request.app.state.clock.now()
    if v.role is not StaffRole.agency or v.user.agency_id is None:
        raise refuse(s, v, now=now, entity="page", entity_id="/inbox", why="role")
    agency = agency_by_id(s, v.user.agency_id)
    items = open_requests(s, v.user.agency_id, waiting=WAITING)
    return page(request, v, "inbox.html", agency=agency, items=items,
                done=DONE_RU.get(done, ""))


def _own_request(s: Session, v: Viewer, request_id: str, now: datetime
                 ) -> tuple[AgencyRequest, Step, Route]:
    req = request_by_id(s, request_id[:40])
    if req is None or v.role is not StaffRole.agency or req.agency_id != v.user.agency_id:
        raise refuse(s, v, now=now, entity="request", entity_id=request_id,
                     why="unknown" if req is None else "another agency")
    step = step_by_id(s, req.step_id)
    assert step is not None
    route = get_route(s, step.route_id)
    assert route is not None
    return req, step, route


def _request_page(request: Request, v: Viewer, s: Session, request_id: str,
                  answer_error: str = "", code: int = 200) -> HTMLResponse:
    now: datetime = request.app.state.clock.now()
    req, step, route = _own_request(s, v, request_id, now)
    # a paper/inbox request: the first opening is the receipt, the answer period starts
    # (298-п Порядок п.11); a webhook agency's request was received with its delivery (the
    # 2xx), so opening it here records nothing but the read
    received_now = (req.channel is RequestChannel.inbox
                    and confirm_receipt(s, request.app.state.cfg, request_id=req.id, now=now,
                                        actor=v.actor).recorded)
    person = get_person(s, route.person_id)
    record_read(s, actor=v.actor, now=now, person_id=route.person_id, what="agency_request",
                entity="request", entity_id=req.id, route_id=route.id)
    agency = agency_by_id(s, req.agency_id)
    answered = answer_to(s, req.id)
    s.commit()
    return page(request, v, "inbox_request.html", status_code=code, req=req, step=step,
                route=route, person=person, agency=agency, received_now=received_now,
                answered=answered, answer_error=answer_error,
                nonce=secrets.token_urlsafe(16),
                action=f"/inbox/{quote(req.id)}/answer")


@router.get("/inbox/{request_id}", response_class=HTMLResponse)
def inbox_request(request: Request, request_id: str, v: ViewerDep, s: DbDep) -> HTMLResponse:
    """Запрос: содержание, данные заявителя (чтение в журнале), форма ответа."""
    return _request_page(request, v, s, request_id)


AnswerForm = Annotated[str, Form(max_length=4000)]


@router.post("/inbox/{request_id}/answer")
def inbox_answer(request: Request, request_id: str, v: FormViewer, s: DbDep,
                 outcome: AnswerForm = "", information: AnswerForm = "",
                 comment: AnswerForm = "", nonce: AnswerForm = "") -> Response:
    now: datetime = request.app.state.clock.now()
    req, _, _ = _own_request(s, v, request_id, now)
    try:
        stored = answer_by_hand(s, request_id=req.id, outcome=outcome,
                                information=information, comment=comment, nonce=nonce,
                                actor=v.actor, now=now)
    except EngineError as exc:
        s.rollback()
        return _request_page(request, v, s, request_id, answer_error=refusal_ru(exc),
                             code=422)
    s.commit()
    status = ack(stored)
    return RedirectResponse(f"/inbox?done={status}", status_code=303)


def ack(stored: StoredAnswer) -> str:
    """The webhook's acknowledgement of a stored answer (``api/webhooks.py:AnswerAck``)."""
    if not stored.created:
        return "duplicate"
    return "accepted" if stored.not_applied is None else "stored_not_applied"
