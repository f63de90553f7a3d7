"""Sign-in and sign-out pages, the public overview, and the offline API docs."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated

import fastapi_offline
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api.web.core import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    ROUTE_STATUS_RU,
    DbDep,
    FormViewer,
    env,
    page,
    render,
)
from engine.routes.reads import overview_counts
from engine.staff.sessions import SESSION_TTL, SigninRefused, TooManyAttempts, sign_in, sign_out
from models.routes import RouteStatus
from models.timers import EscalationLevel

router = APIRouter(include_in_schema=False)
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"
DOCS_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
            "connect-src 'self'")
HOME = {"coordinator": "/routes", "supervisor": "/escalations", "agency": "/inbox",
        "admin": "/routes"}
_LEVEL_RU = {EscalationLevel.reminder: "напоминания", EscalationLevel.overdue: "просрочки",
             EscalationLevel.escalated: "эскалации"}


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """Маршруты: сколько их в каждом статусе, сколько шагов просрочено (только числа).

    Public: no route, region, agency or person — the lists are behind sign-in (152-ФЗ)."""
    state = request.app.state
    with Session(state.read_engine) as s:
        counts = overview_counts(s, state.clock.now())
    routes = ", ".join(f"{ROUTE_STATUS_RU[st.value]}: {counts['routes'].get(st.value, 0)}"
                       for st in RouteStatus)
    escalations = ", ".join(f"{_LEVEL_RU[lv]}: {counts['escalations'].get(lv.name, 0)}"
                            for lv in EscalationLevel)
    return page(request, None, "overview.html", routes=routes,
                overdue=counts["steps"]["overdue"], escalations=escalations)


def _safe_next(url: str) -> str:
    """Only a path of ours (no scheme, no other host; browsers read ``/\\`` as ``//``),
    and never the sign-out (signing in to land on it would be absurd)."""
    return url if url.startswith("/") and not url.startswith(("//", "/\\")) \
        and "\n" not in url and "\r" not in url \
        and url.split("?")[0].rstrip("/") != "/logout" else ""


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    resp = page(request, None, "login.html", login_csrf=token, next=_safe_next(next),
                account="", error=None)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", max_age=3600)
    return resp


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, s: DbDep, account: Annotated[str, Form(max_length=80)] = "",
          password: Annotated[str, Form(max_length=256)] = "",
          csrf_token: Annotated[str, Form(max_length=100)] = "",
          next: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Sign in (rate-limited per account and per address, ``engine/staff/sessions.py``)."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    fresh = secrets.token_urlsafe(24)

    def again(error: str, code: int) -> Response:
        resp = page(request, None, "login.html", status_code=code, login_csrf=fresh,
                    next=_safe_next(next), account=account, error=error)
        resp.set_cookie(LOGIN_CSRF_COOKIE, fresh, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=3600)
        return resp

    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        return again("Форма устарела: введите данные ещё раз.", 400)
    client = request.client.host if request.client else "unknown"
    try:
        done = sign_in(s, account=account, password=password, client=client)
    except TooManyAttempts:
        s.commit()
        return again("Слишком много неудачных попыток входа. Повторите через 15 минут.", 429)
    except SigninRefused:
        s.commit()
        return again("Неверная учётная запись или пароль.", 401)
    s.commit()
    target = _safe_next(next) or HOME[done.user.role.value]
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(COOKIE, done.token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https",
                    max_age=int(SESSION_TTL.total_seconds()))
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


@router.get("/logout")
def logout_page() -> Response:
    """Sign-out is a form (POST with the CSRF token, the «Выйти» button of every signed-in
    page); its address opened in the browser goes to the home page instead of a 405."""
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, v: FormViewer, s: DbDep) -> Response:
    sign_out(s, request.cookies.get(COOKIE, ""))
    s.commit()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/docs", response_class=HTMLResponse)
def swagger(request: Request) -> HTMLResponse:
    """The API reference in Swagger UI, its assets from our own host (fastapi-offline's
    vendored bundle) and our page around it: a language, a main landmark, deep links off and
    colours that pass WCAG 2.1 AA (api/web/static/docs-*.{css,js})."""
    return _docs_page("docs_swagger.html", "API — Swagger UI")


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    """The API reference in ReDoc, vendored like /docs, with a theme that passes contrast."""
    # ReDoc's "powered by" logo points at its CDN: the browser is told to load nothing
    # from any other host
    return _docs_page("docs_redoc.html", "API — ReDoc")


def _docs_page(template: str, title: str) -> HTMLResponse:
    resp = HTMLResponse(env.get_template(template).render(title=title))
    resp.headers["Content-Security-Policy"] = DOCS_CSP
    return resp


def message(heading: str, text: str, code: int) -> HTMLResponse:
    return render("message.html", status_code=code, viewer=None, csrf="", now=None,
                  heading=heading, text=text)
