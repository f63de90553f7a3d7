"""The people's pages (issue 12), server-rendered in Russian with Jinja2, every asset served
by us: sign-in, the coordinator's routes, the supervisor's escalations, the agency inbox,
registration of a paper application, the administrator's pages (agencies, staff,
calendars, template versions), and /docs and /redoc from vendored assets."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.web import (
    admin_agencies,
    admin_reference,
    admin_staff,
    application_pages,
    inbox_pages,
    route_life_pages,
    routes_pages,
    sign_in,
    supervisor_pages,
)
from api.web.core import COOKIE, HERE, CsrfRefused, PageNotFound, SignInRequired


def install(app: FastAPI) -> None:
    """Mount the pages, their static assets and the offline docs on ``app`` (created with
    ``docs_url=None, redoc_url=None``)."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/static-docs", StaticFiles(directory=sign_in.DOCS_STATIC), name="static-docs")
    for module in (sign_in, routes_pages, route_life_pages, supervisor_pages, inbox_pages,
                   application_pages, admin_agencies, admin_staff, admin_reference):
        app.include_router(module.router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.url.path == "/logout":  # signed out already (the session ended)
            resp = RedirectResponse("/login", status_code=303)
            resp.delete_cookie(COOKIE)
            return resp
        target = f"/login?next={exc.next_url}" if exc.next_url else "/login"
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PageNotFound)
    async def _not_found(_: Request, exc: PageNotFound) -> HTMLResponse:
        return sign_in.message("Не найдено", "Такой страницы нет или у вас нет к ней доступа.",
                               404)

    @app.exception_handler(CsrfRefused)
    async def _csrf(_: Request, exc: CsrfRefused) -> HTMLResponse:
        return sign_in.message("Форма отклонена", "Форма устарела или отправлена не с нашей "
                               "страницы. Откройте страницу заново и повторите.", 403)
