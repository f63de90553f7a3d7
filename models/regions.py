"""A region's acts and terms of interagency interaction: that region's configuration.

298-п is the Kaliningrad region's act (001 in ../shared/seeds): a request is prepared and
sent within 1 working day of the application's registration (Порядок п.10) and answered
within 5 working days of its receipt (Порядок п.11, Регламент п.12). Another region works
under its own act, with its own terms and its own calendar of working days, so each region
is one data file ``models/region_rules/<code>.toml``::

    code = "39"
    name = "Калининградская область"
    calendar = "39"          # a calendar of calendars/data/regions/
    acts = ["Постановление Правительства Калининградской области от 11.08.2025 № 298-п"]
    send_days = 1
    send_basis = "298-п Порядок п.10"
    answer_days = 5
    answer_basis = "298-п Порядок п.11, Регламент п.12"

A region without a file works under the default region's (Kaliningrad's) rules; its send
term is counted in the sender's calendar (``settings.sender_region``) as before. A route
counts by the rules of its own region (``Route.region``):

- a term the template leaves to the region (``"region"`` in its file, or not stated) is
  the region's: ``send_days`` counted in the region's ``calendar``, ``answer_days`` in the
  agency's calendar;
- a term the template states as a number is the template's own (with its basis) and is
  kept in every region — whatever its value (``send_days``/``answer_days`` below).

The environment variable ``REHAB_REGION_RULES_DIR`` may point at another directory of such
files (it must hold the default region's ``39.toml``); a bad
file is refused at load with the file, the field and the rule.
"""

from __future__ import annotations

import os
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_REGION = "39"
"""Kaliningrad region: its act (298-п) is the product's default."""

RULES_DIR = Path(__file__).parent / "region_rules"
ENV_DIR = "REHAB_REGION_RULES_DIR"


class RegionRulesError(ValueError):
    """A region file breaks a rule (the message names the file, the field and the rule)."""


@dataclass(frozen=True)
class RegionRules:
    """One region's acts and terms (working days)."""

    code: str
    name: str
    calendar: str
    acts: tuple[str, ...]
    send_days: int
    send_basis: str
    answer_days: int
    answer_basis: str


_FIELDS: dict[str, type] = {"code": str, "name": str, "calendar": str, "acts": list,
                            "send_days": int, "send_basis": str, "answer_days": int,
                            "answer_basis": str}


def parse_rules(data: dict[str, Any], *, source: str) -> RegionRules:
    """Validate one region file's contents; RegionRulesError naming the field otherwise."""
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise RegionRulesError(f"{source}: {unknown[0]}: unknown field")
    for name, kind in _FIELDS.items():
        if name not in data:
            raise RegionRulesError(f"{source}: {name}: required")
        value = data[name]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)
                            or value < 1):
            raise RegionRulesError(f"{source}: {name}: must be a whole number of working "
                                   f"days >= 1 (got {value!r})")
        if kind is str and (not isinstance(value, str) or not value.strip()):
            raise RegionRulesError(f"{source}: {name}: must be a non-empty string")
    acts = data["acts"]
    if not acts or not all(isinstance(a, str) and a.strip() for a in acts):
        raise RegionRulesError(f"{source}: acts: must list at least one act, as text")
    return RegionRules(code=data["code"], name=data["name"], calendar=data["calendar"],
                       acts=tuple(acts), send_days=data["send_days"],
                       send_basis=data["send_basis"], answer_days=data["answer_days"],
                       answer_basis=data["answer_basis"])


def load_rules(directory: Path) -> dict[str, RegionRules]:
    """Every ``<code>.toml`` of ``directory``; the file's name is its region's code."""
    out: dict[str, RegionRules] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise RegionRulesError(f"{path.name}: not valid TOML: {exc}") from None
        rules = parse_rules(data, source=path.name)
        if rules.code != path.stem:
            raise RegionRulesError(f"{path.name}: code: must be the file's name "
                                   f"({path.stem!r}), got {rules.code!r}")
        out[rules.code] = rules
    if DEFAULT_REGION not in out:
        raise RegionRulesError(f"{directory}: {DEFAULT_REGION}.toml: the default region's "
                               "rules are required")
    return out


_lock = threading.Lock()
_loaded: dict[str, RegionRules] | None = None


def all_rules() -> dict[str, RegionRules]:
    """The region rules in force (loaded once: ``REHAB_REGION_RULES_DIR`` or the shipped
    ``models/region_rules``)."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_rules(Path(os.environ.get(ENV_DIR) or RULES_DIR))
        return _loaded


def reload_rules() -> None:
    """Read the files again on the next use (after ``REHAB_REGION_RULES_DIR`` changed)."""
    global _loaded
    with _lock:
        _loaded = None


def rules_for(region: str) -> RegionRules:
    """The rules of ``region``: its own file, else the default region's."""
    rules = all_rules()
    return rules.get(region) or rules[DEFAULT_REGION]


def has_own_rules(region: str) -> bool:
    return region in all_rules()


def send_days(region: str, template_days: int | None) -> int:
    """The send term of a step of a route in ``region``, by an explicit precedence:

    1. the template's own term (a number in its file: ``first_send_days``,
       ``later_send_days`` or the step's ``send_days``) — kept in every region: the template
       states it and its basis (``terms.basis``), e.g. a later step's term, which no act sets;
    2. otherwise (``"region"``, or not stated: ``None``) the act of the route's region — its
       file's ``send_days``, else the default region's (298-п Порядок п.10: 1 working day).

    Never inferred from a value: a template term equal to the default region's is the
    template's all the same."""
    return template_days if template_days is not None else rules_for(region).send_days


def answer_days(region: str, template_days: int | None) -> int:
    """The answer term of a step of a route in ``region``: the template's own
    (``answer_days`` as a number), else the region's act's (298-п Порядок п.11, Регламент
    п.12: 5 working days from receipt) — the precedence of ``send_days``."""
    return template_days if template_days is not None else rules_for(region).answer_days


def send_calendar(region: str, sender_region: str) -> str:
    """The calendar the send term of a route in ``region`` is counted in: its own rules'
    calendar, else the sender's (the ministry's region, ``settings.sender_region``)."""
    rules = all_rules()
    return rules[region].calendar if region in rules else sender_region
