"""Row locks that serialise everything that changes one step.

An answer being applied, a sweeper firing the step's timers, a delivery being recorded and a
supervisor's action all take the step's row lock first (``SELECT … FOR UPDATE`` on
PostgreSQL) and read the step again after it, so each sees what the other committed and
none overwrites the other's work. On SQLite every write transaction already holds the
database's write lock (``BEGIN IMMEDIATE``, engine/infra/db.py), and ``FOR UPDATE`` is not
rendered there. Steps of one route are always locked in ``seq`` order.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import bindparam
from sqlmodel import Session, SQLModel, col, select

from models.routes import Route, Step

M = TypeVar("M", bound=SQLModel)


def _lock(skip_locked: bool) -> Any:
    return (select(Step).where(Step.id == bindparam("step_id"))
            .with_for_update(skip_locked=skip_locked)
            .execution_options(populate_existing=True))


#: built once (a hot statement: every transition takes a step's lock)
_LOCK_STEP = {False: _lock(False), True: _lock(True)}


def lock_step(session: Session, step_id: str, *, skip_locked: bool = False) -> Step | None:
    """Lock the step's row and return it read afresh (None: no such step, or — with
    ``skip_locked`` — another transaction holds it: the caller comes back later)."""
    step: Step | None = session.exec(_LOCK_STEP[skip_locked],
                                     params={"step_id": step_id}).first()
    return step


#: ``FOR NO KEY UPDATE``: it serialises whoever advances or ends the route, and does not
#: block the ``KEY SHARE`` that a ``route_mirror`` upsert's foreign key takes on the route
#: (with ``FOR UPDATE`` a transition and a route's first mirror record could deadlock)
_LOCK_ROUTE = (select(Route).where(Route.id == bindparam("route_id"))
               .with_for_update(key_share=True)
               .execution_options(populate_existing=True))


def lock_route_steps(session: Session, route_id: str) -> list[Step]:
    """Lock every step of the route, in ``seq`` order, and return them read afresh."""
    stmt = (select(Step).where(Step.route_id == route_id).order_by(col(Step.seq))
            .with_for_update().execution_options(populate_existing=True))
    return list(session.exec(stmt))


def lock_route(session: Session, route_id: str) -> Route | None:
    """Lock the route's row and return it read afresh. Taken after a step's lock by whoever
    decides what opens next or whether the route is done: with parallel steps two answers of
    one route may be applied at once, each holding only its own step; without this each
    would read the other's step still open and neither would start the step that waits for
    both (or complete the route). Nothing takes a step's lock while holding a route's."""
    route: Route | None = session.exec(_LOCK_ROUTE, params={"route_id": route_id}).first()
    return route


def reread(session: Session, model: type[M], key: object) -> M | None:
    """The row read again from the database (after a lock: what others committed)."""
    pk = model.__table__.primary_key.columns.values()[0]  # type: ignore[attr-defined]
    stmt = select(model).where(pk == key).execution_options(populate_existing=True)
    return session.exec(stmt).first()
