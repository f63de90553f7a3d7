"""Reading and validating the TOML data files in ``calendars/data`` (read with tomllib).

Federal files are ``data/<year>.toml``; regional files are ``data/regions/*.toml``.
The directory can be overridden with the ``REHAB_CALENDARS_DATA_DIR`` environment variable
(tests use it to add a year without touching the shipped data).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from calendars.errors import CalendarError

DATA_DIR_ENV = "REHAB_CALENDARS_DATA_DIR"
_PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def data_dir() -> Path:
    """The directory holding the federal year files and ``regions/``."""
    override = os.environ.get(DATA_DIR_ENV)
    return Path(override) if override else _PACKAGE_DATA


@dataclass(frozen=True, slots=True)
class Decree:
    number: str
    date: date
    title: str
    source: str


@dataclass(frozen=True, slots=True)
class NamedDay:
    date: date
    name: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """A day off moved ``from`` one date ``to`` another; ``basis`` is "decree" or "art112"."""

    from_day: date
    to_day: date
    basis: str


@dataclass(frozen=True, slots=True)
class FederalYearFile:
    year: int
    status: str
    working_days: int
    decree: Decree | None
    holidays: tuple[NamedDay, ...]
    transfers: tuple[Transfer, ...]
    working_saturdays: tuple[date, ...]
    shortened: tuple[date, ...]
    path: str


@dataclass(frozen=True, slots=True)
class FixedHoliday:
    month: int
    day: int
    name: str


@dataclass(frozen=True, slots=True)
class RegionYear:
    year: int
    status: str
    source: str
    days: tuple[NamedDay, ...]


@dataclass(frozen=True, slots=True)
class RegionFile:
    code: str
    name: str
    timezone: str
    weekend_transfer: bool
    dated_yearly: tuple[str, ...]
    sources: tuple[str, ...]
    fixed: tuple[FixedHoliday, ...]
    years: dict[int, RegionYear]
    path: str


_STATUSES = ("approved", "provisional")


def _err(path: Path | str, field: str, rule: str) -> CalendarError:
    return CalendarError(f"{Path(path).name}: {field}: {rule}")


def _get(table: dict[str, Any], key: str, kind: type, path: Path, ctx: str = "") -> Any:
    field = f"{ctx}{key}"
    if key not in table:
        raise _err(path, field, "is required")
    value = table[key]
    if kind is date and isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if kind is int and isinstance(value, bool):
        raise _err(path, field, "must be an integer")
    if kind is not date and isinstance(value, kind):
        return value
    raise _err(path, field, f"must be a {kind.__name__}")


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise _err(path, "file", f"is not valid TOML ({exc})") from exc


def _only(table: dict[str, Any], allowed: set[str], path: Path, ctx: str = "") -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _err(path, f"{ctx}{unknown[0]}", f"is not a known key (allowed: {sorted(allowed)})")


_FEDERAL_KEYS = {
    "year", "status", "working_days", "decree", "holidays", "transfers",
    "working_saturdays", "shortened",
}
_REGION_KEYS = {
    "code", "name", "timezone", "weekend_transfer", "dated_yearly", "sources", "fixed", "years",
}


def _named_days(items: Any, path: Path, field: str) -> tuple[NamedDay, ...]:
    if not isinstance(items, list):
        raise _err(path, field, "must be a list of {date, name} tables")
    out = []
    for i, item in enumerate(items):
        ctx = f"{field}[{i}]."
        if not isinstance(item, dict):
            raise _err(path, f"{field}[{i}]", "must be a {date, name} table")
        day = _get(item, "date", date, path, ctx)
        out.append(NamedDay(day, _get(item, "name", str, path, ctx)))
    return tuple(out)


def _dates(items: Any, path: Path, field: str) -> tuple[date, ...]:
    if not isinstance(items, list) or not all(
        isinstance(d, date) and not hasattr(d, "hour") for d in items
    ):
        raise _err(path, field, "must be a list of dates (YYYY-MM-DD)")
    return tuple(items)


def load_federal_file(path: Path) -> FederalYearFile:
    """Parse one ``data/<year>.toml`` file (structure only; consistency is checked later)."""
    raw = _load(path)
    _only(raw, _FEDERAL_KEYS, path)
    year = _get(raw, "year", int, path)
    if path.stem != str(year):
        raise _err(path, "year", f"must match the file name ({path.stem}.toml)")
    status = _get(raw, "status", str, path)
    if status not in _STATUSES:
        raise _err(path, "status", f"must be one of {_STATUSES}")
    decree = None
    if "decree" in raw:
        d = raw["decree"]
        if not isinstance(d, dict):
            raise _err(path, "decree", "must be a table")
        _only(d, {"number", "date", "title", "source"}, path, "decree.")
        decree = Decree(
            number=str(_get(d, "number", str, path, "decree.")),
            date=_get(d, "date", date, path, "decree."),
            title=_get(d, "title", str, path, "decree."),
            source=_get(d, "source", str, path, "decree."),
        )
    if status == "approved" and decree is None:
        raise _err(path, "decree", "is required when status = 'approved'")
    transfers = []
    raw_tr = raw.get("transfers", [])
    if not isinstance(raw_tr, list):
        raise _err(path, "transfers", "must be a list of {from, to, basis} tables")
    for i, t in enumerate(raw_tr):
        ctx = f"transfers[{i}]."
        if not isinstance(t, dict):
            raise _err(path, f"transfers[{i}]", "must be a {from, to, basis} table")
        _only(t, {"from", "to", "basis"}, path, ctx)
        basis = _get(t, "basis", str, path, ctx)
        if basis not in ("decree", "art112"):
            raise _err(path, f"{ctx}basis", "must be 'decree' or 'art112'")
        transfers.append(
            Transfer(_get(t, "from", date, path, ctx), _get(t, "to", date, path, ctx), basis)
        )
    return FederalYearFile(
        year=year,
        status=status,
        working_days=_get(raw, "working_days", int, path),
        decree=decree,
        holidays=_named_days(raw.get("holidays", []), path, "holidays"),
        transfers=tuple(transfers),
        working_saturdays=_dates(raw.get("working_saturdays", []), path, "working_saturdays"),
        shortened=_dates(raw.get("shortened", []), path, "shortened"),
        path=str(path),
    )


def load_region_file(path: Path) -> RegionFile:
    """Parse one ``data/regions/*.toml`` file."""
    raw = _load(path)
    _only(raw, _REGION_KEYS, path)
    code = _get(raw, "code", str, path)
    if not (len(code) == 2 and code.isdigit()):
        raise _err(path, "code", "must be a two-digit subject code string such as '39'")
    fixed = []
    for i, f in enumerate(raw.get("fixed", [])):
        ctx = f"fixed[{i}]."
        fh = FixedHoliday(
            _get(f, "month", int, path, ctx),
            _get(f, "day", int, path, ctx),
            _get(f, "name", str, path, ctx),
        )
        try:
            date(2024, fh.month, fh.day)
        except ValueError as exc:
            raise _err(path, f"{ctx}month/day", "must form a valid date") from exc
        fixed.append(fh)
    years: dict[int, RegionYear] = {}
    raw_years = raw.get("years", {})
    if not isinstance(raw_years, dict):
        raise _err(path, "years", "must be a table keyed by year")
    for key, y in raw_years.items():
        ctx = f"years.{key}."
        if not isinstance(y, dict):
            raise _err(path, f"years.{key}", "must be a table")
        _only(y, {"status", "source", "days"}, path, ctx)
        if not key.isdigit():
            raise _err(path, f"years.{key}", "key must be a year")
        status = _get(y, "status", str, path, ctx)
        if status not in _STATUSES:
            raise _err(path, f"{ctx}status", f"must be one of {_STATUSES}")
        days = _named_days(y.get("days", []), path, f"{ctx}days")
        for nd in days:
            if nd.date.year != int(key):
                raise _err(path, f"{ctx}days", f"date {nd.date} is not in year {key}")
        years[int(key)] = RegionYear(int(key), status, _get(y, "source", str, path, ctx), days)
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not sources:
        raise _err(path, "sources", "must be a non-empty list citing the regional law")
    dated_yearly = raw.get("dated_yearly", [])
    if not isinstance(dated_yearly, list):
        raise _err(path, "dated_yearly", "must be a list of holiday names")
    return RegionFile(
        code=code,
        name=_get(raw, "name", str, path),
        timezone=_get(raw, "timezone", str, path),
        weekend_transfer=_get(raw, "weekend_transfer", bool, path),
        dated_yearly=tuple(str(x) for x in dated_yearly),
        sources=tuple(str(s) for s in sources),
        fixed=tuple(fixed),
        years=years,
        path=str(path),
    )


def federal_files() -> dict[int, FederalYearFile]:
    """All federal year files, keyed by year."""
    out: dict[int, FederalYearFile] = {}
    for path in sorted(data_dir().glob("*.toml")):
        f = load_federal_file(path)
        out[f.year] = f
    return out


def region_files() -> dict[str, RegionFile]:
    """All regional files, keyed by subject code."""
    out: dict[str, RegionFile] = {}
    for path in sorted((data_dir() / "regions").glob("*.toml")):
        r = load_region_file(path)
        if r.code in out:
            raise _err(path, "code", f"region {r.code} is defined twice")
        out[r.code] = r
    return out


def compute_data_version() -> str:
    """Short sha256 over every data file's relative name and bytes."""
    root = data_dir()
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.toml")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]
