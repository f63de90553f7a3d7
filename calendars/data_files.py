"""Reading and validating the TOML data files in ``calendars/data`` (read with tomllib).

Federal files are ``data/<year>.toml``; regional files are ``data/regions/*.toml``.
The directory can be overridden with the ``REHAB_CALENDARS_DATA_DIR`` environment variable
(tests use it to add a year without touching the shipped data).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
import zoneinfo
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
    """The government decree transferring days off for a year (Labour Code art. 112 part 5).

    ``number`` and ``date`` identify it (e.g. № 1335 of 04.10.2024), ``title`` is its full
    Russian title and ``source`` where it was read (a URL).
    """

    number: str
    date: date
    title: str
    source: str


@dataclass(frozen=True, slots=True)
class NamedDay:
    """A dated day with its Russian name (a holiday, or a regional holiday of a given year)."""

    date: date
    name: str


@dataclass(frozen=True, slots=True)
class Art112Exception:
    """A date where a federal file knowingly departs from the Labour Code art. 112 checks.

    ``date`` is an art. 112 part 1 holiday of the file's year that the file either does not
    list as a holiday or, falling on a weekend, does not move (art. 112 part 2); ``reason``
    says why (e.g. a federal law that changed the list). Without such an entry the loader
    refuses the file.
    """

    date: date
    reason: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """A day off moved ``from`` one date ``to`` another; ``basis`` is "decree" or "art112"."""

    from_day: date
    to_day: date
    basis: str


@dataclass(frozen=True, slots=True)
class FederalYearFile:
    """One parsed ``data/<year>.toml``: the federal production calendar of ``year``.

    ``status`` is "approved" (a decree exists, ``decree`` is set) or "provisional";
    ``working_days`` is the official control total; ``holidays`` the art. 112 part 1 holidays;
    ``transfers`` the days off moved; ``working_saturdays`` the weekend days made working;
    ``shortened`` the pre-holiday days (art. 95); ``art112_exceptions`` the deliberate
    departures from the art. 112 checks; ``path`` the file read.
    """

    year: int
    status: str
    working_days: int
    decree: Decree | None
    holidays: tuple[NamedDay, ...]
    transfers: tuple[Transfer, ...]
    working_saturdays: tuple[date, ...]
    shortened: tuple[date, ...]
    path: str
    art112_exceptions: tuple[Art112Exception, ...] = ()


@dataclass(frozen=True, slots=True)
class FixedHoliday:
    """A regional holiday on the same date every year (``month``, ``day``), set by regional law."""

    month: int
    day: int
    name: str


@dataclass(frozen=True, slots=True)
class RegionYear:
    """The ``[years.<YEAR>]`` table of a region file: its holidays dated for that year.

    ``status`` is "approved" (dated by the regional act named in ``source``) or "provisional"
    (estimated dates; ``source`` says how they were estimated); ``days`` are the dated holidays.
    """

    year: int
    status: str
    source: str
    days: tuple[NamedDay, ...]


@dataclass(frozen=True, slots=True)
class RegionFile:
    """One parsed ``data/regions/*.toml``: a region's own non-working days and time zone.

    ``code`` is the two-digit subject code; ``timezone`` an IANA zone checked with zoneinfo;
    ``weekend_transfer`` whether a regional holiday on a day off moves to the next working
    day (the regional law's choice); ``dated_yearly`` the names of holidays dated every year
    (Uraza Bayram, Kurban Bayram); ``sources`` the regional law and documents cited;
    ``fixed`` the fixed-date holidays; ``years`` the holidays dated for each year.
    """

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
    "working_saturdays", "shortened", "art112_exceptions",
}
_REGION_KEYS = {
    "code", "name", "timezone", "weekend_transfer", "dated_yearly", "sources", "fixed", "years",
}


def _tables(items: Any, path: Path, field: str, keys: tuple[str, ...], *,
            closed: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """A TOML list of tables with these ``keys``: each as (its field prefix, the table).
    ``closed``: a key not in ``keys`` is an error."""
    shape = "{" + ", ".join(keys) + "}"
    if not isinstance(items, list):
        raise _err(path, field, f"must be a list of {shape} tables")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _err(path, f"{field}[{i}]", f"must be a {shape} table")
        ctx = f"{field}[{i}]."
        if closed:
            _only(item, set(keys), path, ctx)
        out.append((ctx, item))
    return out


def _named_days(items: Any, path: Path, field: str) -> tuple[NamedDay, ...]:
    return tuple(NamedDay(_get(t, "date", date, path, ctx), _get(t, "name", str, path, ctx))
                 for ctx, t in _tables(items, path, field, ("date", "name"), closed=False))


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
    for ctx, t in _tables(raw.get("transfers", []), path, "transfers", ("from", "to", "basis")):
        basis = _get(t, "basis", str, path, ctx)
        if basis not in ("decree", "art112"):
            raise _err(path, f"{ctx}basis", "must be 'decree' or 'art112'")
        transfers.append(
            Transfer(_get(t, "from", date, path, ctx), _get(t, "to", date, path, ctx), basis)
        )
    exceptions = []
    for ctx, e in _tables(raw.get("art112_exceptions", []), path, "art112_exceptions",
                          ("date", "reason")):
        reason = _get(e, "reason", str, path, ctx)
        if not reason.strip():
            raise _err(path, f"{ctx}reason", "must say why the file departs from art. 112")
        exceptions.append(Art112Exception(_get(e, "date", date, path, ctx), reason))
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
        art112_exceptions=tuple(exceptions),
    )


def _timezone(raw: dict[str, Any], path: Path) -> str:
    tz: str = _get(raw, "timezone", str, path)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise _err(
            path, "timezone", f"{tz!r} is not a known IANA time zone (e.g. 'Europe/Moscow')"
        ) from exc
    return tz


def _strings(raw: dict[str, Any], key: str, path: Path, rule: str) -> tuple[str, ...]:
    items = raw.get(key, [])
    if not isinstance(items, list) or not all(isinstance(x, str) and x.strip() for x in items):
        raise _err(path, key, rule)
    return tuple(items)


def load_region_file(path: Path) -> RegionFile:
    """Parse and check one ``data/regions/*.toml`` file.

    Checks (each CalendarError names the file and the field): known keys only; ``code`` is a
    two-digit string; ``timezone`` is a zone zoneinfo knows; ``fixed`` is a list of
    ``{month, day, name}`` tables forming valid dates; each ``[years.<YEAR>]`` has a status,
    a source and days inside that year; ``sources`` is a non-empty list of strings.
    """
    raw = _load(path)
    _only(raw, _REGION_KEYS, path)
    code = _get(raw, "code", str, path)
    if not (len(code) == 2 and code.isdigit()):
        raise _err(path, "code", "must be a two-digit subject code string such as '39'")
    timezone = _timezone(raw, path)
    fixed = []
    for ctx, f in _tables(raw.get("fixed", []), path, "fixed", ("month", "day", "name")):
        fh = FixedHoliday(
            _get(f, "month", int, path, ctx),
            _get(f, "day", int, path, ctx),
            _get(f, "name", str, path, ctx),
        )
        try:
            date(2023, fh.month, fh.day)  # a common year: 29 February is not a yearly date
        except ValueError as exc:
            raise _err(
                path, f"{ctx}month/day", "must form a valid date in every year (not 29 Feb)"
            ) from exc
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
    sources = _strings(
        raw, "sources", path, "must be a non-empty list of strings citing the regional law"
    )
    if not sources:
        raise _err(path, "sources", "must be a non-empty list of strings citing the regional law")
    dated_yearly = _strings(raw, "dated_yearly", path, "must be a list of holiday names")
    return RegionFile(
        code=code,
        name=_get(raw, "name", str, path),
        timezone=timezone,
        weekend_transfer=_get(raw, "weekend_transfer", bool, path),
        dated_yearly=dated_yearly,
        sources=sources,
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
