"""A person's application as staff give it (the API's body, a line of ``rehab import``):
its fields and their rules, pure (no database).

The application (298-п Регламент п.14; 363н п.12) starts the route; its first request is
due within 1 working day of registration (298-п Порядок п.10).
"""

from __future__ import annotations

from datetime import date, datetime

import pendulum
from pydantic import BaseModel, ConfigDict, Field, field_validator

import calendars
from models.persons import SnilsError, normalize_snils
from models.template_files import template_codes, templates

# a full name has at least one Latin or Cyrillic letter
NAME_LETTER_PATTERN = "[A-Za-z\u00c0-\u024f\u0400-\u04ff]"
# 11 digits 0-9, spaces and hyphens around them ignored (models.persons.normalize_snils)
SNILS_INPUT_PATTERN = r"^[ -]*(?:[0-9][ -]*){11}$"


class ApplicationIn(BaseModel):
    """A person's application (the person's data is stored only in our database).

    Unknown fields are refused; text is stripped before its length is checked.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str = Field(min_length=3, max_length=300, pattern=NAME_LETTER_PATTERN,
                           description="3-300 characters with a Latin or Cyrillic letter "
                           "(spaces are trimmed)")
    snils: str = Field(pattern=SNILS_INPUT_PATTERN, max_length=40,
                       description="XXX-XXX-XXX YY with a valid check number (11 digits; "
                       "spaces and hyphens between them are ignored)")
    birth_date: date = Field(description="YYYY-MM-DD, year 1900 or later, before the day of "
                             "registration", json_schema_extra={"pattern": r"^(19|[2-9]\d)\d\d-"})
    region: str = Field(default=calendars.DEFAULT_REGION, max_length=8)
    representative: str | None = Field(default=None, max_length=300)
    template: str = Field(description=f"one of: {', '.join(template_codes())} (the route "
                          "is formed from the newest version of its data file)",
                          json_schema_extra={"enum": [*template_codes()]})
    registered_at: datetime | None = Field(
        default=None, description="when the application was registered, with a time zone; "
        "not later than now (business clock); default: now")
    ipra_deadlines: dict[str, date] | None = Field(
        default=None, description="per step kind of the template, the execution deadline "
        "(«срок исполнения») of the ИПРА measure that step carries out (545н), YYYY-MM-DD, "
        "not before the registration day; the step is overdue when not done by then")

    @field_validator("full_name")
    @classmethod
    def _full_name(cls, v: str) -> str:
        if not any(ch.isalpha() for ch in v):
            raise ValueError("must contain letters")
        return " ".join(v.split())

    @field_validator("representative")
    @classmethod
    def _representative(cls, v: str | None) -> str | None:
        return (" ".join(v.split()) or None) if v is not None else None

    @field_validator("snils")
    @classmethod
    def _snils(cls, v: str) -> str:
        try:
            return normalize_snils(v)
        except SnilsError as exc:
            raise ValueError(str(exc).removeprefix("snils: ")) from None

    @field_validator("template")
    @classmethod
    def _template(cls, v: str) -> str:
        if v not in templates():
            raise ValueError(f"unknown route template; known: {', '.join(sorted(templates()))}")
        return v

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, v: date) -> date:
        # compared with the registration date (business clock) in the handler
        if v.year < 1900:
            raise ValueError("must be a real date (year 1900 or later)")
        return v

    @field_validator("registered_at")
    @classmethod
    def _registered_at(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-01-12T10:00:00+02:00")
        return v


def date_problems(app_in: ApplicationIn, now: datetime, sender_region: str) -> list[
        tuple[str, str]]:
    """The application's date rules against business time ``now``: ``registered_at`` not
    after now and inside the production calendar (the first request's send-by deadline,
    298-п п.10, must be computable); ``birth_date`` before the registration day in the
    region's time zone. Returns (field, rule) pairs; empty: the dates are right."""
    reg = app_in.registered_at or now
    if reg > now:
        return [("registered_at", "must not be later than now (business clock "
                                  f"{now.isoformat()})")]
    try:
        calendars.deadline(reg, 1, sender_region)
        tz = calendars.get_calendar(app_in.region).timezone
    except calendars.CalendarError as exc:
        return [("registered_at", str(exc))]
    reg_day = pendulum.instance(reg).in_timezone(tz).date()
    if app_in.birth_date >= reg_day:
        return [("birth_date", f"must be before the registration date ({reg_day.isoformat()})")]
    return []


def same_name(a: str, b: str) -> bool:
    """Two spellings of one full name (spaces, case and ё/е aside)."""
    return " ".join(a.split()).casefold().replace("ё", "е") == \
        " ".join(b.split()).casefold().replace("ё", "е")
