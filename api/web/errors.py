"""The pages' misses in Russian HTML (issue 12: pages in Russian), while the machines' paths
keep their JSON contract (``api/errors.py``): an unknown page is the 404 page, an unknown
query parameter or a value over its limit on a page is a 422 page naming the field and the
rule — the input itself is never echoed (152-ФЗ: it may be personal data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import HTMLResponse

from api.web.core import render
from api.web.messages import FIELD_RU, refusal_ru
from engine.errors import EngineError, NotFoundError

# the machines' paths: their refusals stay JSON ``{"detail": "<field>: <rule>"}``
MACHINE_PREFIXES = ("/api", "/webhooks", "/health", "/metrics", "/docs", "/redoc",
                    "/openapi.json", "/static", "/static-docs")


def is_page_path(path: str) -> bool:
    """Whether ``path`` is one of the people's pages (or would be one): not the API, the
    agencies' webhooks, health, metrics, the API docs or static assets."""
    return not any(path == p or path.startswith(p + "/") for p in MACHINE_PREFIXES)


def message(heading: str, text: str, code: int, items: Sequence[str] = (),
            headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """A message page in the site's layout (no menu: the page may be no one's)."""
    resp = render("message.html", status_code=code, viewer=None, csrf="", now=None,
                  heading=heading, text=text, items=list(items))
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def not_found() -> HTMLResponse:
    return message("Не найдено", "Такой страницы нет или у вас нет к ней доступа.", 404)


def http_error(code: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """FastAPI's own refusal of a page request (no such page, a method it does not take,
    a body it cannot read), in Russian."""
    if code == 404:
        return not_found()
    if code == 405:
        return message("Так эту страницу открыть нельзя",
                       "Этот адрес принимает только отправку формы со страницы. Вернитесь "
                       "на предыдущую страницу.", 405, headers=headers)
    if code == 400:
        return message("Запрос не прочитан", "Форма пришла в виде, который нельзя прочитать. "
                       "Откройте страницу заново и повторите.", 400)
    return message("Запрос не выполнен", f"Сервер не смог выполнить запрос (код {code}).",
                   code, headers=headers)


def unknown_parameter(field: str) -> HTMLResponse:
    """A query parameter the page does not take (a misspelt filter must not silently show
    everything)."""
    return message("Адрес страницы не принят",
                   "В адресе есть параметр, которого эта страница не знает. Уберите его "
                   "или откройте страницу из меню.", 422,
                   items=[f"«{field[:40]}»: такого параметра у страницы нет."])


def _rule_ru(e: Mapping[str, Any]) -> str:
    kind = str(e.get("type", ""))
    ctx = e.get("ctx") or {}
    if kind == "string_too_long":
        return f"не длиннее {ctx.get('max_length')} символов"
    if kind == "string_too_short":
        return f"не короче {ctx.get('min_length')} символов"
    if kind == "missing":
        return "нужно заполнить"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "нужно целое число"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        limit = next(iter(ctx.values()), "")
        sign = {"greater_than_equal": "не меньше", "greater_than": "больше",
                "less_than_equal": "не больше", "less_than": "меньше"}[kind]
        return f"{sign} {limit}"
    if kind in ("bool_parsing", "bool_type"):
        return "нужно «да» или «нет»"
    return "значение не принято"


def validation_error(errors: Sequence[Mapping[str, Any]]) -> HTMLResponse:
    """A page's query or form value refused by its declared rule: 422 naming each field
    (its parameter name) and the rule, never the value."""
    items = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        where = loc[0] if loc else ""
        name = ".".join(loc[1:]) if where in ("query", "body", "path", "header", "cookie") \
            else ".".join(loc)
        place = {"query": "параметр адреса", "body": "поле формы", "path": "адрес"}.get(
            where, "значение")
        label = FIELD_RU.get(name, name[:60] or where)
        items.append(f"{place} «{label}»: {_rule_ru(e)}.")
    return message("Данные не приняты",
                   "Страница не приняла отправленные данные; ничего не изменено. "
                   "Исправьте и повторите.", 422, items=items)


def engine_error(exc: EngineError) -> HTMLResponse:
    """An engine refusal no page caught: the rule in Russian, nothing changed (the
    transaction of the request was not committed)."""
    if isinstance(exc, NotFoundError):
        return not_found()
    return message("Действие не выполнено", "Ничего не изменено.", 422,
                   items=[refusal_ru(exc)])
