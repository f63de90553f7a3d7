"""The durable job queue: enqueue in the caller's transaction, claim with a lease, finish.

Claiming is one statement: on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several workers
claim side by side; on SQLite the write lock serialises claimers. A job whose worker died is
claimed again when its lease runs out — never earlier: a restarted worker does not free
leases, because nothing proves that the holder under that name is dead.

Leases are *fenced*: every claim writes a fresh random ``lease_token`` and ``finish``,
``retry_later`` and ``renew`` act only while the row still carries the caller's
``locked_by`` and token (a WHERE clause, no extra query). A worker that lost its lease —
it hung past the lease and another worker took the job — changes nothing. A long piece of
work renews its lease (``renew``, the worker's heartbeat).

A job retried ``max_attempts`` times goes ``dead`` (``dead_at`` set): it is no longer
claimed, ``rehab jobs`` and ``GET /supervisor/jobs/dead`` show it, and ``revive`` makes it
due again. No job is retried for ever in silence.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text
from sqlmodel import Session, col, select

from engine.infra.write_buffer import collected
from models.jobs import Job, JobKind
from models.types import utcnow

log = logging.getLogger("rehab.queue")

#: Attempts after which a failing job goes dead unless the caller says otherwise.
DEFAULT_MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: JobKind
    ref: str
    generation: int
    attempts: int
    #: who holds the lease and its fencing token (set by ``claim``)
    worker: str = ""
    token: str = ""


def _bind(engine_or_dialect: str, at: datetime) -> datetime:
    """A datetime bound in raw SQL: aware on PostgreSQL, naive UTC on SQLite."""
    return at if engine_or_dialect == "postgresql" else at.replace(tzinfo=None)


def _upsert() -> Any:
    """INSERT … ON CONFLICT (kind, ref) DO UPDATE: a job that is queued already gets a new
    generation (and the new due time) instead of a second row. The same text on PostgreSQL
    and SQLite, its values bound with the columns' types: SQLAlchemy compiles the dialects'
    ``on_conflict_do_update`` anew on every execution (no cache key), a text once."""
    table = Job.__table__  # type: ignore[attr-defined]
    columns = ("kind", "ref", "due_at", "generation", "attempts", "created_at")
    return text(
        f"INSERT INTO job ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        "ON CONFLICT (kind, ref) DO UPDATE "
        "SET due_at = excluded.due_at, generation = job.generation + 1"
    ).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


_UPSERT = _upsert()


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
    rows.sort(key=lock_order)
    conn = session.connection()  # job rows reference nothing pending in the session
    conn.execute(_UPSERT, rows)


_BUFFER = "rehab.queue.buffer"


def lock_order(row: dict[str, Any]) -> tuple[str, str]:
    """The order in which a statement of several jobs locks their rows: by (kind, ref), as
    ``finish_many(lock_in_order=True)`` does — a transition's upsert of its routes' mirror
    jobs and a mirror finishing a batch of them never wait for each other in a circle."""
    return row["kind"], row["ref"]


def _upsert_jobs(conn: Connection, pending: dict[tuple[str, str], dict[str, Any]]) -> None:
    rows: list[dict[str, Any]] = sorted(pending.values(), key=lock_order)
    conn.execute(_UPSERT, rows)


def buffered(session: Session) -> AbstractContextManager[None]:
    """Collect the jobs one use case enqueues (a transition asks for its request's send and
    its route's mirror) and write them with one statement at its end, in its transaction
    (``engine.infra.write_buffer``); the same (kind, ref) twice is one job (one upsert: a
    queued one gets a new generation, as ``enqueue`` does)."""
    return collected(session, _BUFFER, {}, _upsert_jobs)


def claim(engine: Engine, worker: str, *, kinds: list[JobKind], limit: int,
          lease_seconds: float, refs: list[str] | None = None,
          due_for_seconds: float = 0.0) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs of ``kinds`` (and of ``refs``, if given);
    ``due_for_seconds``: only jobs due at least that long already."""
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds)
    kind_list = ", ".join(f"'{k.value}'" for k in kinds)
    skip = " FOR UPDATE SKIP LOCKED" if engine.dialect.name == "postgresql" else ""
    token = secrets.token_hex(8)  # one per claim: a later claim of the same job differs
    params: dict[str, object] = {"worker": worker, "limit": limit, "token": token}
    ref_clause = ""
    if refs is not None:
        if not refs:
            return []
        names = [f"r{i}" for i in range(len(refs))]
        ref_clause = f" AND ref IN ({', '.join(':' + n for n in names)})"
        params.update(dict(zip(names, refs, strict=True)))
    sql = text(
        f"""
        UPDATE job SET locked_by = :worker, locked_until = :until, lease_token = :token,
                       attempts = attempts + 1
        WHERE id IN (
            SELECT id FROM job
            WHERE kind IN ({kind_list}) AND due_at <= :due{ref_clause}
              AND (locked_until IS NULL OR locked_until < :now) AND dead_at IS NULL
            ORDER BY due_at, id LIMIT :limit{skip}
        )
        RETURNING id, kind, ref, generation, attempts
        """
    )
    d = engine.dialect.name
    params.update(until=_bind(d, until), now=_bind(d, now),
                  due=_bind(d, now - timedelta(seconds=due_for_seconds)))
    with engine.begin() as conn:
        rows = conn.execute(sql, params).all()
    return [ClaimedJob(r[0], JobKind(r[1]), r[2], r[3], r[4], worker, token) for r in rows]


_HELD = "locked_by = :w AND lease_token = :t"
_FINISH = text(f"DELETE FROM job WHERE id = :id AND generation = :g AND {_HELD}")
_UNLOCK = text("UPDATE job SET locked_by = NULL, locked_until = NULL, lease_token = NULL "
               f"WHERE id = :id AND {_HELD}")


def _held(job: ClaimedJob) -> dict[str, object]:
    return {"id": job.id, "w": job.worker, "t": job.token}


def finish(session: Session, job: ClaimedJob) -> bool:
    """Remove the job in the caller's transaction, unless it was re-enqueued meanwhile
    (then unlock it for another pass). Acts only while the caller still holds the lease;
    returns False when it does not (the caller should roll back what it did: another
    worker has the job). On the session's connection: the job row is independent of
    pending ORM changes (no flush, no ORM execution)."""
    conn = session.connection()
    if conn.execute(_FINISH, {**_held(job), "g": job.generation}).rowcount:
        return True
    return bool(conn.execute(_UNLOCK, _held(job)).rowcount)


def finish_many(session: Session, jobs: Sequence[ClaimedJob], *,
                lock_in_order: bool = False) -> list[ClaimedJob]:
    """``finish`` for a batch, in two statements at most instead of one or two per job:
    the jobs still held are removed (or unlocked, if re-enqueued meanwhile), in the caller's
    transaction. Returns the jobs whose lease was no longer the caller's (their work must
    be undone: another worker has them).

    ``lock_in_order`` (PostgreSQL): the rows are first locked in (kind, ref) order, the
    order in which transitions upsert jobs — for jobs that transactions of others enqueue
    again meanwhile (a mirror's batch: each transition of its routes upserts their jobs).
    Without it the two statements lock the rows in whatever order they find them, and a
    mirror finishing its batch and a worker recording its transitions deadlocked."""
    if not jobs:
        return []
    if len(jobs) == 1:  # an answer's transaction: the prebuilt statements of ``finish``
        return [] if finish(session, jobs[0]) else [jobs[0]]
    conn = session.connection()
    by_id = {j.id: j for j in jobs}
    if lock_in_order and conn.dialect.name == "postgresql":
        conn.execute(text("SELECT id FROM job WHERE id IN :ids ORDER BY kind, ref "
                          "FOR UPDATE").bindparams(bindparam("ids", expanding=True)),
                     {"ids": list(by_id)})
    params: dict[str, object] = {}
    held, fenced = [], []
    for n, j in enumerate(by_id.values()):
        params.update({f"i{n}": j.id, f"g{n}": j.generation, f"w{n}": j.worker,
                       f"t{n}": j.token})
        held.append(f"(id = :i{n} AND locked_by = :w{n} AND lease_token = :t{n})")
        fenced.append(f"(id = :i{n} AND generation = :g{n} AND locked_by = :w{n} "
                      f"AND lease_token = :t{n})")
    done = {int(r[0]) for r in conn.execute(
        text(f"DELETE FROM job WHERE {' OR '.join(fenced)} RETURNING id"), params)}
    if len(done) < len(by_id):  # re-enqueued meanwhile (a new generation), or not ours
        done |= {int(r[0]) for r in conn.execute(text(
            "UPDATE job SET locked_by = NULL, locked_until = NULL, lease_token = NULL "
            f"WHERE {' OR '.join(held)} RETURNING id"), params)}
    return [j for i, j in by_id.items() if i not in done]


def retry_later(engine: Engine, job: ClaimedJob, *, delay_seconds: float, error: str,
                max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
                count_attempt: bool = True) -> str:
    """Unlock the job and make it due again after ``delay_seconds`` of real time — or, when
    this was its ``max_attempts``-th attempt, make it ``dead`` (no more claims until a person
    revives it). ``count_attempt=False``: the attempt did not happen (work deferred, Prefect
    down) and is not counted against the maximum. Acts only while the caller holds the lease.

    Returns ``"retry"``, ``"dead"`` or ``"lost"`` (the lease was not the caller's any more).
    """
    now = utcnow()
    dialect = engine.dialect.name
    dead = (count_attempt and max_attempts is not None and job.attempts >= max_attempts)
    undo = "" if count_attempt else ", attempts = attempts - 1"
    with engine.begin() as conn:
        res = conn.execute(
            text(
                "UPDATE job SET locked_by = NULL, locked_until = NULL, lease_token = NULL, "
                f"due_at = :due, dead_at = :dead, last_error = :err{undo} "
                f"WHERE id = :id AND {_HELD}"
            ),
            {**_held(job), "due": _bind(dialect, now + timedelta(seconds=delay_seconds)),
             "dead": _bind(dialect, now) if dead else None, "err": error[:500]},
        )
    if not res.rowcount:
        log.warning("job %s (%s %s): lease lost before its retry was recorded",
                    job.id, job.kind.value, job.ref)
        return "lost"
    if dead:
        log.error("job %s (%s %s) is dead after %d attempts: %s", job.id, job.kind.value,
                  job.ref, job.attempts, error[:200])
        return "dead"
    return "retry"


def renew(engine: Engine, jobs: list[ClaimedJob], *, lease_seconds: float) -> int:
    """Extend the leases the caller still holds (a heartbeat for long work); returns how many
    it still holds."""
    if not jobs:
        return 0
    dialect = engine.dialect.name
    until = _bind(dialect, utcnow() + timedelta(seconds=lease_seconds))
    held = 0
    with engine.begin() as conn:
        for token in {j.token for j in jobs}:
            ids = [j.id for j in jobs if j.token == token]
            names = [f"i{n}" for n in range(len(ids))]
            res = conn.execute(
                text(f"UPDATE job SET locked_until = :until WHERE id IN "
                     f"({', '.join(':' + n for n in names)}) "
                     "AND locked_by = :w AND lease_token = :t"),
                {"until": until, "w": jobs[0].worker, "t": token,
                 **dict(zip(names, ids, strict=True))},
            )
            held += int(res.rowcount or 0)
    return held


# --------------------------------------------------------------------------- dead jobs
@dataclass(frozen=True)
class JobInfo:
    """A job as ``rehab jobs`` and the supervisor's API show it (identifiers only)."""

    id: int
    kind: str
    ref: str
    attempts: int
    due_at: datetime
    dead_at: datetime | None
    locked_by: str | None
    last_error: str | None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "ref": self.ref, "attempts": self.attempts,
                "due_at": self.due_at.isoformat(),
                "dead_at": self.dead_at.isoformat() if self.dead_at else None,
                "state": "dead" if self.dead_at else "pending",
                "locked_by": self.locked_by, "last_error": self.last_error}


def list_jobs(engine: Engine, *, dead: bool, kind: JobKind | None = None,
              limit: int = 100) -> list[JobInfo]:
    """Dead jobs (``dead=True``, newest death first) or pending ones (soonest due first)."""
    stmt = select(Job).where(col(Job.dead_at).is_not(None) if dead
                             else col(Job.dead_at).is_(None))
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    order = (col(Job.dead_at).desc(), col(Job.id)) if dead else (col(Job.due_at), col(Job.id))
    stmt = stmt.order_by(*order).limit(limit)
    with Session(engine) as s:
        return [_info(j) for j in s.exec(stmt)]


def get_job(engine: Engine, job_id: int) -> JobInfo | None:
    with Session(engine) as s:
        job = s.get(Job, job_id)
        return _info(job) if job else None


def _info(j: Job) -> JobInfo:
    assert j.id is not None
    return JobInfo(j.id, j.kind.value, j.ref, j.attempts, j.due_at, j.dead_at, j.locked_by,
                   j.last_error)


def revive(engine: Engine, job_id: int) -> JobInfo:
    """Make a dead job due now with its attempts counted from zero (``rehab jobs retry``).
    ValueError naming the field if it is not there or not dead."""
    with Session(engine, expire_on_commit=False) as s:
        job = s.get(Job, job_id)
        if job is None:
            raise ValueError(f"job_id: no job {job_id}")
        if job.dead_at is None:
            raise ValueError(f"job_id: job {job_id} is not dead (it is pending)")
        job.dead_at = None
        job.attempts = 0
        job.due_at = utcnow()
        job.locked_by = job.locked_until = job.lease_token = None
        s.add(job)
        s.commit()
        return _info(job)


def busy(engine: Engine, kinds: Sequence[JobKind], *, backlog: int,
         late_seconds: float = 1.0) -> bool:
    """Whether the workers are busy with the work of ``kinds``: ``backlog`` jobs of it are
    due (on the wire or waiting), or one has waited unclaimed for over ``late_seconds``
    (a job being worked on under its lease does not count as waiting). One statement; it
    reads at most ``backlog`` rows."""
    now = utcnow()
    d = engine.dialect.name
    kind_list = ", ".join(f"'{k.value}'" for k in kinds)
    with engine.connect() as conn:
        due, late = conn.execute(text(
            "SELECT count(*), max(CASE WHEN due_at <= :late AND (locked_until IS NULL "
            "OR locked_until < :now) THEN 1 ELSE 0 END) FROM (SELECT due_at, locked_until "
            f"FROM job WHERE kind IN ({kind_list}) AND due_at <= :now AND dead_at IS NULL "
            "LIMIT :backlog) AS due"),
            {"late": _bind(d, now - timedelta(seconds=late_seconds)), "now": _bind(d, now),
             "backlog": backlog}).one()
    return int(due) >= backlog or bool(late)


def pending_count(engine: Engine, kinds: list[JobKind] | None = None) -> int:
    """Jobs still to do (dead ones are not counted: nobody will do them)."""
    with engine.connect() as conn:
        if kinds:
            kind_list = ", ".join(f"'{k.value}'" for k in kinds)
            q = f"SELECT count(*) FROM job WHERE kind IN ({kind_list}) AND dead_at IS NULL"
        else:
            q = "SELECT count(*) FROM job WHERE dead_at IS NULL"
        return int(conn.execute(text(q)).scalar_one())


def release_held(engine: Engine, worker: str) -> int:
    """Give back every lease ``worker`` still holds (its graceful shutdown): the jobs become
    claimable at once by another worker instead of after their lease runs out. Returns how
    many were released. Only the caller's own leases are touched."""
    with engine.begin() as conn:
        result = conn.execute(text(
            "UPDATE job SET locked_by = NULL, locked_until = NULL, lease_token = NULL "
            "WHERE locked_by = :worker"), {"worker": worker})
    return int(result.rowcount or 0)
