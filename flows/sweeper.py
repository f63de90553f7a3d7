"""The timer sweeper as a scheduled Prefect deployment (orchestration only).

The work is ``engine.sweeper.sweep_due_timers`` (298-п Порядок п.10, п.11, п.13; 363н
п.10б). Flow run names, parameters and logs carry counts and identifiers only, never
personal data (152-ФЗ).
"""

from __future__ import annotations

import logging
import os
import socket

from prefect import flow
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from engine.clock import DbClock
from engine.db import make_engine
from engine.routes import EngineConfig
from engine.settings import get_settings
from engine.sweeper import sweep_due_timers


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("rehab.sweeper")


@flow(name="timer-sweeper", flow_run_name="timer-sweeper", log_prints=False)
def timer_sweeper(batch_size: int = 200) -> dict[str, int]:
    """Fire the due working-day timers of the installation's database, in batches."""
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        result = sweep_due_timers(
            engine, DbClock(engine), EngineConfig.from_settings(settings),
            sweeper_id=f"{socket.gethostname()}-{os.getpid()}", batch_size=batch_size,
        )
    finally:
        engine.dispose()
    counts = result.as_dict()
    _logger().info("timer sweep: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def serve_sweeper(interval_seconds: int = 60) -> None:
    """Serve the sweeper as a deployment that runs every ``interval_seconds`` (blocks)."""
    timer_sweeper.serve(name="timer-sweeper", interval=interval_seconds)
