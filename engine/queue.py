"""The durable job queue: enqueue in the caller's transaction, claim with a lease, finish.

Claiming is one statement: on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several workers
claim side by side; on SQLite the write lock serialises claimers. A job whose worker died is
claimed again when its lease runs out (or at once by the same worker after a restart).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from models.jobs import Job, JobKind
from models.types import utcnow


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: JobKind
    ref: str
    generation: int
    attempts: int


def _upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (kind, ref) DO UPDATE: a job that is queued already gets a new
    generation (and the new due time) instead of a second row."""
    table = Job.__table__  # type: ignore[attr-defined]
    ins: Any = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    return ins.on_conflict_do_update(
        index_elements=["kind", "ref"],
        set_={"generation": table.c.generation + 1, "due_at": ins.excluded.due_at})


_UPSERTS = {"postgresql": _upsert("postgresql"), "sqlite": _upsert("sqlite")}


def enqueue(session: Session, kind: JobKind, ref: str, *, due_at: datetime | None = None) -> None:
    """Add a job in the caller's transaction; if (kind, ref) is queued already, bump its
    generation so that a worker finishing the old one leaves it for another pass."""
    enqueue_many(session, kind, [ref], due_at=due_at)


def enqueue_many(session: Session, kind: JobKind, refs: list[str], *,
                 due_at: datetime | None = None) -> None:
    """``enqueue`` for several refs in one statement (inside ``buffered``: kept for one
    statement at its end)."""
    if not refs:
        return
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {"kind": kind.value, "ref": ref, "due_at": due_at or now, "generation": 0,
         "attempts": 0, "created_at": now} for ref in refs]
    pending: dict[tuple[str, str], dict[str, Any]] | None = session.info.get(_BUFFER)
    if pending is not None:
        for row in rows:  # a second enqueue of (kind, ref) in one use case: one job
            pending.setdefault((row["kind"], row["ref"]), row)
        return
    conn = session.connection()  # job rows reference nothing pending in the session
    conn.execute(_UPSERTS[conn.dialect.name], rows)


_BUFFER = "rehab.queue.buffer"


@contextmanager
def buffered(session: Session) -> Iterator[None]:
    """Collect the jobs one use case enqueues (a transition asks for its request's send and
    its route's mirror) and write them with one statement at its end, in its transaction;
    the same (kind, ref) twice is one job (one upsert: a queued one gets a new generation,
    as ``enqueue`` does). An exception drops them with the rest of the use case's work.
    Nested uses write once, at the outermost end."""
    if session.info.get(_BUFFER) is not None:
        yield
        return
    pending: dict[tuple[str, str], dict[str, Any]] = {}
    session.info[_BUFFER] = pending
    try:
        yield
    finally:
        session.info.pop(_BUFFER, None)
    if pending:
        conn = session.connection()
        conn.execute(_UPSERTS[conn.dialect.name], list(pending.values()))


def claim(engine: Engine, worker: str, *, kinds: list[JobKind], limit: int,
          lease_seconds: float, refs: list[str] | None = None) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs of ``kinds`` (and of ``refs``, if given)."""
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds)
    kind_list = ", ".join(f"'{k.value}'" for k in kinds)
    skip = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
    params: dict[str, object] = {"worker": worker, "limit": limit}
    ref_clause = ""
    if refs is not None:
        if not refs:
            return []
        names = [f"r{i}" for i in range(len(refs))]
        ref_clause = f" AND ref IN ({', '.join(':' + n for n in names)})"
        params.update(dict(zip(names, refs, strict=True)))
    sql = text(
        f"""
        UPDATE job SET locked_by = :worker, locked_until = :until, attempts = attempts + 1
        WHERE id IN (
            SELECT id FROM job
            WHERE kind IN ({kind_list}) AND due_at <= :now{ref_clause}
              AND (locked_until IS NULL OR locked_until < :now)
            ORDER BY due_at, id LIMIT :limit{skip}
        )
        RETURNING id, kind, ref, generation, attempts
        """
    )
    pg = engine.dialect.name == "postgresql"
    params["now"] = now if pg else now.replace(tzinfo=None)
    params["until"] = until if pg else until.replace(tzinfo=None)
    with engine.begin() as conn:
        rows = conn.execute(sql, params).all()
    return [ClaimedJob(r[0], JobKind(r[1]), r[2], r[3], r[4]) for r in rows]


def release_worker(engine: Engine, worker: str) -> int:
    """Free the leases of ``worker`` (called when a worker with that name restarts)."""
    with engine.begin() as conn:
        res = conn.execute(
            text("UPDATE job SET locked_by = NULL, locked_until = NULL WHERE locked_by = :w"),
            {"w": worker},
        )
    return int(res.rowcount or 0)


def finish(session: Session, job: ClaimedJob) -> None:
    """Remove the job in the caller's transaction, unless it was re-enqueued meanwhile
    (then unlock it for another pass)."""
    with session.no_autoflush:  # the job row is independent of pending ORM changes
        res = session.execute(
            text("DELETE FROM job WHERE id = :id AND generation = :g"),
            {"id": job.id, "g": job.generation},
        )
        if not res.rowcount:  # type: ignore[attr-defined]
            session.execute(
                text("UPDATE job SET locked_by = NULL, locked_until = NULL WHERE id = :id"),
                {"id": job.id},
            )


def retry_later(engine: Engine, job: ClaimedJob, *, delay_seconds: float, error: str) -> None:
    """Unlock the job and make it due again after ``delay_seconds`` of real time."""
    due = utcnow() + timedelta(seconds=delay_seconds)
    bind_due = due if engine.dialect.name == "postgresql" else due.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE job SET locked_by = NULL, locked_until = NULL, due_at = :due, "
                "last_error = :err WHERE id = :id"
            ),
            {"due": bind_due, "err": error[:500], "id": job.id},
        )


def pending_count(engine: Engine, kinds: list[JobKind] | None = None) -> int:
    with engine.connect() as conn:
        if kinds:
            kind_list = ", ".join(f"'{k.value}'" for k in kinds)
            q = f"SELECT count(*) FROM job WHERE kind IN ({kind_list})"
        else:
            q = "SELECT count(*) FROM job"
        return int(conn.execute(text(q)).scalar_one())
