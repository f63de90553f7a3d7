"""The administrator's read-only reference pages: a region's production calendar for a year
(working days, days off marked with their reason, shortened days; from ``calendars/``: Labour
Code art. 95, 111, 112 and the yearly transfer decree; deadlines of 298-п Порядок п.10-12
are counted on it) and the route template versions with their steps and clauses
(``models/template_files.py``; a published version is never edited). There is no override
mechanism for calendars: they change by a data release (docs/calendars.md)."""

from __future__ import annotations

import calendar as month_grid
from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import calendars
from api.web.admin_access import admin_only
from api.web.core import AGENCY_ROLE_RU, DbDep, ViewerDep, page, refuse
from models.template_files import templates

router = APIRouter(include_in_schema=False)
MONTHS_RU = ("Январь", "Февраль", "Март", "Апрель", "Май", "Июнь", "Июль", "Август",
             "Сентябрь", "Октябрь", "Ноябрь", "Декабрь")
WEEKDAYS_RU = (("Пн", "понедельник"), ("Вт", "вторник"), ("Ср", "среда"), ("Чт", "четверг"),
               ("Пт", "пятница"), ("Сб", "суббота"), ("Вс", "воскресенье"))


@dataclass(frozen=True)
class Cell:
    """One day of the year view (None: a blank before the 1st or after the last day)."""

    day: date
    working: bool
    kind: str
    reason: str
    shortened: bool


def year_grid(cal: calendars.RegionCalendar, year: int) -> list[tuple[str, list[list[
        Cell | None]]]]:
    """Twelve months of weeks (Monday first) of ``cal``'s ``year``."""
    out = []
    for month in range(1, 13):
        weeks = []
        for week in month_grid.Calendar(firstweekday=0).monthdatescalendar(year, month):
            row: list[Cell | None] = []
            for d in week:
                if d.month != month:
                    row.append(None)
                    continue
                info = cal.day_info(d)
                row.append(Cell(day=d, working=info.working, kind=info.kind,
                                reason=info.reason, shortened=info.shortened))
            weeks.append(row)
        out.append((MONTHS_RU[month - 1], weeks))
    return out


@router.get("/admin", response_class=HTMLResponse)
def admin_index(request: Request, v: ViewerDep, s: DbDep) -> HTMLResponse:
    """Администрирование: разделы."""
    admin_only(request, v, s)
    return page(request, v, "admin_index.html")


@router.get("/admin/calendars", response_class=HTMLResponse)
def calendar_page(request: Request, v: ViewerDep, s: DbDep, region: str = "",
                  year: str = "") -> HTMLResponse:
    """Производственный календарь региона на год (только просмотр)."""
    now = admin_only(request, v, s)
    regions = calendars.known_regions()
    codes = {r.code for r in regions}
    region = region if region in codes else (v.user.region if v.user.region in codes
                                            else calendars.DEFAULT_REGION)
    this_year = now.year
    years = list(range(calendars.MIN_YEAR, calendars.MAX_YEAR + 1))
    chosen = int(year) if year.isdigit() and int(year) in years else (
        this_year if this_year in years else years[-1])
    cal = calendars.get_calendar(region)
    return page(request, v, "admin_calendar.html", regions=regions, region=cal,
                year=chosen, years=years, grid=year_grid(cal, chosen),
                summary=cal.year_summary(chosen), holidays=cal.holidays(chosen),
                working_saturdays=cal.working_saturdays(chosen), weekdays=WEEKDAYS_RU)


@router.get("/admin/templates", response_class=HTMLResponse)
def template_list(request: Request, v: ViewerDep, s: DbDep) -> HTMLResponse:
    """Версии шаблонов маршрутов (только просмотр)."""
    admin_only(request, v, s)
    rows = [spec for _, versions in sorted(templates().items())
            for _, spec in sorted(versions.items())]
    return page(request, v, "admin_templates.html", rows=rows)


@router.get("/admin/templates/{code}/{version}", response_class=HTMLResponse)
def template_page(request: Request, code: str, version: str, v: ViewerDep,
                  s: DbDep) -> HTMLResponse:
    """Версия шаблона: шаги, их основания, сроки, условия (как ``rehab template show``)."""
    now = admin_only(request, v, s)
    spec = templates().get(code, {}).get(int(version[1:])) if version.startswith("v") \
        and version[1:].isdigit() and len(version) < 6 else None
    if spec is None:
        raise refuse(s, v, now=now, entity="template", entity_id=f"{code}/{version}",
                     why="unknown")
    return page(request, v, "admin_template.html", spec=spec, role_ru=AGENCY_ROLE_RU)
