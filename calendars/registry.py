"""Loading the data once and handing out cached RegionCalendar objects."""

from __future__ import annotations

import threading
from functools import cache, lru_cache

from calendars.data_files import RegionFile, compute_data_version, federal_files, region_files
from calendars.errors import UnknownRegionError
from calendars.federal import FederalYear
from calendars.region_calendar import RegionCalendar
from calendars.regions import RegionInfo, region_info
from calendars.tables import build_table, federal_years

DEFAULT_REGION = "39"
"""Kaliningrad region: the product's home region (Europe/Kaliningrad, federal days only)."""

_lock = threading.RLock()


@lru_cache(maxsize=1)
def _federal() -> dict[int, FederalYear]:
    return federal_years(federal_files())


@lru_cache(maxsize=1)
def _region_files() -> dict[str, RegionFile]:
    return region_files()


@lru_cache(maxsize=1)
def _regions() -> dict[str, RegionInfo]:
    return {code: region_info(r) for code, r in sorted(_region_files().items())}


@cache
def _calendar(region: str) -> RegionCalendar:
    files = _region_files()
    if region not in files:
        known = ", ".join(sorted(files))
        raise UnknownRegionError(f"region: unknown subject code {region!r} (known: {known})")
    r = files[region]
    return RegionCalendar(region_info(r), build_table(_federal(), r))


def get_calendar(region: str = DEFAULT_REGION) -> RegionCalendar:
    """The (cached) calendar of ``region``, a subject code string such as "39"."""
    if not isinstance(region, str):
        raise UnknownRegionError(f"region: must be a subject code string, got {region!r}")
    with _lock:
        return _calendar(region)


def known_regions() -> list[RegionInfo]:
    """The shipped regions: code, Russian name, IANA time zone and cited sources."""
    with _lock:
        return list(_regions().values())


@lru_cache(maxsize=1)
def _version() -> str:
    return compute_data_version()


def data_version() -> str:
    """Short hash of all data files; it changes when any decree or regional file changes."""
    with _lock:
        return _version()


_generation = 0


def data_generation() -> int:
    """How many times the data were reloaded: part of the keys of results cached elsewhere
    (``calendars.deadline``), so a reload is never answered from a stale cache."""
    return _generation


def reload_data() -> None:
    """Drop every cache so that the next call re-reads the data files."""
    global _generation
    with _lock:
        _generation += 1
        _federal.cache_clear()
        _region_files.cache_clear()
        _regions.cache_clear()
        _calendar.cache_clear()
        _version.cache_clear()
