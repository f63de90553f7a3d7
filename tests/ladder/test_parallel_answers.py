"""Two answers of one route applied at once (parallel steps, PostgreSQL).

Each answer holds only its own step's lock; the route's completion (or the step that waits
for both) is decided under the route's row lock (``engine.infra.locks.lock_route``), read
afresh after it. Without it each transaction reads the other's step still open and neither
completes the route: it would wait forever."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from engine.infra.clock import DbClock
from engine.routes.transitions import AnswerIn, EngineConfig, apply_answer, record_answer
from models.agencies import Agency, AnswerOutcome
from models.persons import Person
from models.routes import Route, RouteStatus, Step, StepStatus
from tests.conftest import PG_URL
from tests.ladder.conftest import new_route, receive_inbox

pytestmark = pytest.mark.skipif(not PG_URL, reason="row locks: PostgreSQL "
                                                   "(REHAB_TEST_DATABASE_URL)")

SKIP = {"mse_tsr_selection": "нет ТСР", "sfr_tsr_consulting": "нет ТСР"}


def _store(s: Session, clock: DbClock, step: Step) -> int:
    agency = s.get(Agency, step.agency_id)
    assert agency is not None and step.current_request_id is not None
    ans, _ = record_answer(s, agency=agency, webhook_id=f"wh-{step.id}", now=clock.now(),
                           answer=AnswerIn(task_id=step.current_request_id,
                                           outcome=AnswerOutcome.provided, payload={},
                                           comment=None))
    assert ans.id is not None
    return ans.id


def _open(db: Engine, route_id: str) -> list[Step]:
    with Session(db) as s:
        return list(s.exec(select(Step).where(
            Step.route_id == route_id, Step.status == StepStatus.awaiting).order_by(Step.seq)))


def _waiting_on_a_lock(db: Engine) -> bool:
    with db.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")).scalar_one())


def test_the_last_two_parallel_answers_at_once_complete_the_route(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    route_id = new_route(db, clock, cfg, seeded[0], template="accompaniment",
                         template_version=1, not_applicable=SKIP)
    # МСЭ ‖ the organisation, answered one after the other; then route support ‖
    # situational help open together
    for step in _open(db, route_id):
        with Session(db, expire_on_commit=False) as s:
            apply_answer(s, cfg, _store(s, clock, step), now=clock.now())
            s.commit()
    receive_inbox(db, clock, cfg, route_id)  # their agencies open their inboxes
    support, situational = _open(db, route_id)
    assert (support.kind, situational.kind) == ("route_support", "situational_help")
    with Session(db, expire_on_commit=False) as s:
        a1, a2 = _store(s, clock, support), _store(s, clock, situational)
        s.commit()
    held = Session(db, expire_on_commit=False)
    apply_answer(held, cfg, a1, now=clock.now())  # holds its step and the route: no commit
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with Session(db, expire_on_commit=False) as s:
                apply_answer(s, cfg, a2, now=clock.now())
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    end = time.monotonic() + 5  # real time: the other transaction reaching the route lock
    while t.is_alive() and not _waiting_on_a_lock(db) and time.monotonic() < end:
        time.sleep(0.02)
    held.commit()
    held.close()
    t.join(timeout=30)
    assert not t.is_alive() and errors == []
    with Session(db) as s:
        route = s.get(Route, route_id)
        assert route is not None and route.status is RouteStatus.completed
