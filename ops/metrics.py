"""Prometheus metrics (``GET /metrics``, issue 13).

Two sources:
- this process's own counters (answers received by outcome and result, the webhook's latency);
  with several API processes they are merged through ``PROMETHEUS_MULTIPROC_DIR``
  (prometheus-client's multiprocess mode, set by ``rehab api --workers N``);
- the system of record, read at each scrape (``DatabaseCollector``): jobs pending by kind and
  the oldest one's age, dead jobs, timers due and overdue, open escalations by level, the
  Prefect mirror's lag, each process's heartbeat and counters.

No label carries a route, person or request id: labels are kinds, levels, outcomes, HTTP
codes and process ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, select

from engine.infra.clock import Clock
from engine.infra.heartbeats import read_beats
from models.jobs import Job, JobKind
from models.timers import Escalation, EscalationLevel, EscalationStatus, Timer, TimerStatus
from models.types import utcnow

#: a due timer unfired for longer than this (business time) is overdue: the sweeper is behind
TIMER_OVERDUE = timedelta(minutes=5)

ANSWERS = Counter("rehab_answers_received", "Agency answers received at the webhook, by the "
                  "answer's outcome and what we did with it", ["outcome", "result"])
WEBHOOK_SECONDS = Histogram(
    "rehab_webhook_seconds", "Latency of the agencies' webhook (until the answer is stored)",
    ["code"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
WEBHOOK_SECONDS.labels(code="200")  # exported from the start (an alert's rate() needs it)

JOB = Job.__table__  # type: ignore[attr-defined]
TIMER = Timer.__table__  # type: ignore[attr-defined]
ESCALATION = Escalation.__table__  # type: ignore[attr-defined]

#: worker counters exported as transitions (each is one state change of a step)
TRANSITION_COUNTERS = {"sent": "request_sent", "answers_applied": "answer_applied"}


class DatabaseCollector(Collector):
    """Gauges read from the system of record at each scrape (a handful of indexed queries)."""

    def __init__(self, engine: Engine, clock: Clock, heartbeat_seconds: float) -> None:
        self.engine = engine
        self.clock = clock
        self.heartbeat_seconds = heartbeat_seconds

    def collect(self) -> Iterator[Any]:
        now = utcnow()
        business_now = self.clock.now()
        job, timer, esc = JOB.c, TIMER.c, ESCALATION.c
        with self.engine.connect() as conn:
            pending = conn.execute(select(job.kind, func.count(), func.min(job.due_at))
                                   .where(job.dead_at.is_(None)).group_by(job.kind)).all()
            dead = conn.execute(select(job.kind, func.count())
                                .where(job.dead_at.is_not(None)).group_by(job.kind)).all()
            timers = conn.execute(select(
                func.count(),
                func.coalesce(func.sum(case((timer.due_at < business_now - TIMER_OVERDUE, 1),
                                            else_=0)), 0))
                .where(timer.status == TimerStatus.pending, timer.due_at <= business_now)).one()
            escalations = conn.execute(
                select(esc.level, func.count())
                .where(esc.status.in_([EscalationStatus.open, EscalationStatus.acknowledged]))
                .group_by(esc.level)).all()
        g = GaugeMetricFamily("rehab_jobs_pending", "Jobs waiting or running, by kind",
                              labels=["kind"])
        age = GaugeMetricFamily("rehab_jobs_oldest_due_seconds", "How long the oldest due job "
                                "of each kind has been due (0: none due)", labels=["kind"])
        counts = {k.value: (0, 0.0) for k in JobKind}  # every kind, 0 when none: an alert
        for kind, count, oldest in pending:            # tells "0" from "not measured"
            due_for = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
            counts[str(kind)] = (int(count), due_for)
        for kind, (count, due_for) in sorted(counts.items()):
            g.add_metric([kind], count)
            age.add_metric([kind], due_for)
        lag = counts[JobKind.mirror_route.value][1]
        yield g
        yield age
        d = GaugeMetricFamily("rehab_jobs_dead", "Jobs retried past their maximum (a "
                              "supervisor's page and `rehab jobs` show them)", labels=["kind"])
        dead_counts = {k.value: 0 for k in JobKind} | {str(k): int(c) for k, c in dead}
        for kind, count in sorted(dead_counts.items()):
            d.add_metric([kind], count)
        yield d
        yield GaugeMetricFamily("rehab_mirror_lag_seconds", "How long the oldest pending "
                                "Prefect mirror update has been due", value=lag)
        yield GaugeMetricFamily("rehab_timers_due", "Pending timers whose business time has "
                                "come", value=int(timers[0] or 0))
        yield GaugeMetricFamily("rehab_timers_overdue", "Due timers unfired for more than 5 "
                                "minutes of business time (the sweeper is behind or silent)",
                                value=int(timers[1] or 0))
        e = GaugeMetricFamily("rehab_escalations_open", "Open and acknowledged escalations, "
                              "by level", labels=["level"])
        by_level = {int(lv): 0 for lv in EscalationLevel} | {int(lv): int(c)
                                                              for lv, c in escalations}
        for level, count in sorted(by_level.items()):
            e.add_metric([str(level)], count)
        yield e
        yield from self._processes(now)

    def _processes(self, now: Any) -> Iterator[Any]:
        beat = GaugeMetricFamily("rehab_process_last_beat_seconds", "Seconds since each "
                                 "running process's last heartbeat", labels=["kind", "process"])
        holding = GaugeMetricFamily("rehab_process_holding_jobs", "Jobs under each process's "
                                    "lease at its last beat", labels=["kind", "process"])
        transitions = CounterMetricFamily("rehab_transitions", "Step transitions done by each "
                                          "worker since it started", labels=["process", "kind"])
        fired = CounterMetricFamily("rehab_timers_fired", "Timers fired by each sweeper since "
                                    "it started", labels=["process"])
        for b in read_beats(self.engine):
            beat.add_metric([b.kind, b.process_id], b.silent_seconds)
            holding.add_metric([b.kind, b.process_id], b.holding)
            for key, kind in TRANSITION_COUNTERS.items():
                if key in b.counters:
                    transitions.add_metric([b.process_id, kind], float(b.counters[key]))
            if "fired" in b.counters:
                fired.add_metric([b.process_id], float(b.counters["fired"]))
        yield beat
        yield holding
        yield transitions
        yield fired


def exposition(engine: Engine, clock: Clock, heartbeat_seconds: float) -> tuple[bytes, str]:
    """The text a scrape gets: this process's (or every API process's) counters and the
    database's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own = CollectorRegistry()
        MultiProcessCollector(own)  # type: ignore[no-untyped-call]
    else:
        own = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector(engine, clock, heartbeat_seconds))
    return generate_latest(own) + generate_latest(database), CONTENT_TYPE_LATEST
