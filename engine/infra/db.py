"""Database engine and sessions of the system of record (SQLite by default, PostgreSQL in
production). The schema is owned by Alembic migrations (``migrations/``)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, exc
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

import models  # noqa: F401  (registers the tables)
from engine.infra.settings import PROJECT_ROOT, get_settings


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    if _priority_writer:
        # the API (acknowledging answers) never pays for a WAL checkpoint: the workers'
        # and sweepers' commits run SQLite's automatic checkpoints
        cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


_priority_writer = False


def set_write_priority(enabled: bool) -> None:
    """Make this process's SQLite writers go first (the API acknowledging answers: its
    latency is what agencies see); workers, sweepers and the demo wait their turn."""
    global _priority_writer
    _priority_writer = enabled


class SqliteWriteGate:
    """Queue SQLite writers on a lock instead of SQLite's busy handler.

    SQLite's busy handler polls with sleeps of up to 100 ms, so writers that contend for the
    one write lock wait far longer than the lock is held. The gate makes them wait on a
    thread lock (same process) and an ``flock`` on ``<db>.writelock`` (other processes):
    the kernel wakes the next writer the moment the lock is free. Reentrant per thread.
    """

    def __init__(self, db_path: Path) -> None:
        self._lock = threading.Lock()  # releasable from any thread (pool check-in)
        self._owner: int | None = None
        self._depth = 0
        self._fd = os.open(f"{db_path}.writelock", os.O_RDWR | os.O_CREAT, 0o644)
        self._want_fd = os.open(f"{db_path}.writewant", os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self) -> None:
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            return
        self._lock.acquire()
        self._owner, self._depth = me, 1
        if _priority_writer:
            # announce that a latency-sensitive writer waits (a shared lock on .writewant);
            # background writers step aside before their next transaction
            fcntl.flock(self._want_fd, fcntl.LOCK_SH)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            fcntl.flock(self._want_fd, fcntl.LOCK_UN)
            return
        while True:
            try:
                fcntl.flock(self._want_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(0.0005)
                continue
            fcntl.flock(self._want_fd, fcntl.LOCK_UN)
            break
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._lock.release()


def _install_gate(eng: Engine, gate: SqliteWriteGate) -> None:
    """Hold the gate from BEGIN until COMMIT/ROLLBACK (or the connection's return to the
    pool, or its invalidation) of each connection."""
    dialect = eng.dialect
    orig_commit, orig_rollback = dialect.do_commit, dialect.do_rollback
    held: set[int] = set()

    def raw(conn: Any) -> Any:
        return getattr(conn, "dbapi_connection", conn)

    def release(dbapi_conn: Any) -> None:
        key = id(raw(dbapi_conn))
        if key in held:
            held.discard(key)
            gate.release()

    def begin(conn: Any) -> None:
        gate.acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            gate.release()
            raise
        held.add(id(raw(conn.connection.dbapi_connection)))

    def do_commit(dbapi_conn: Any) -> None:
        try:
            orig_commit(dbapi_conn)
        finally:
            release(dbapi_conn)

    def do_rollback(dbapi_conn: Any) -> None:
        try:
            orig_rollback(dbapi_conn)
        finally:
            release(dbapi_conn)

    event.listen(eng, "begin", begin)
    event.listen(eng.pool, "checkin", lambda dbapi_conn, _rec: release(dbapi_conn))
    event.listen(eng.pool, "invalidate", lambda dbapi_conn, _rec, _exc: release(dbapi_conn))
    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]


def make_engine(url: str | None = None, *, read_only: bool = False) -> Engine:
    """An engine for ``url`` (default: the settings' database).

    SQLite: every transaction of a writing engine takes the write lock at BEGIN (IMMEDIATE),
    so that concurrent writers queue on busy_timeout instead of failing on lock upgrade; a
    ``read_only`` engine begins deferred (WAL readers never wait for writers).
    """
    url = url or get_settings().effective_database_url
    if url.startswith("sqlite"):
        eng = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20,
            hide_parameters=True,  # 152-ФЗ: statement errors never echo names or SNILS
        )
        event.listen(eng, "connect", _sqlite_pragmas)
        path = sqlite_path(eng)
        if read_only or path is None:
            begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
            event.listen(eng, "begin", lambda conn: conn.exec_driver_sql(begin))
        else:
            _install_gate(eng, _gate_for(path))

        @event.listens_for(eng, "connect")
        def _no_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return eng
    eng = create_engine(url, pool_size=20, max_overflow=20, hide_parameters=True)
    event.listen(eng.pool, "checkout", _ping_if_idle)
    event.listen(eng.pool, "checkin", _mark_used)
    return eng


#: A pooled connection idle longer than this is pinged before use (real seconds).
PING_AFTER_IDLE_SECONDS = 2.0


def _mark_used(_dbapi_conn: Any, record: Any) -> None:
    record.info["rehab_used_at"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections idle a while only: a worker checks a
    connection out several times per transition, and a round trip each time was a good
    part of its cost; a connection used a moment ago is alive. A dead one is replaced
    (DisconnectionError makes the pool retry with a fresh connection)."""
    used = record.info.get("rehab_used_at")
    if used is not None and time.monotonic() - used < PING_AFTER_IDLE_SECONDS:
        return
    try:
        cur = dbapi_conn.cursor()
        try:
            cur.execute("SELECT 1")
        finally:
            cur.close()
    except Exception as e:
        raise exc.DisconnectionError() from e


_gates: dict[str, SqliteWriteGate] = {}
_gates_lock = threading.Lock()


def _gate_for(path: Path) -> SqliteWriteGate:
    """One gate per database file per process (engines on one file share it)."""
    key = str(path.resolve())
    with _gates_lock:
        if key not in _gates:
            _gates[key] = SqliteWriteGate(path)
        return _gates[key]


@dataclass(frozen=True)
class MigrationOutcome:
    """What ``migrate`` did: the revision before (None: an empty database) and after."""

    before: str | None
    after: str

    def describe(self) -> str:
        """One line for the operator: created, upgraded from → to, or already current."""
        if self.before is None:
            return f"schema created at {self.after}"
        if self.before == self.after:
            return f"schema already current at {self.after}"
        return f"schema upgraded from {self.before} to {self.after}"


def migrate(engine: Engine) -> MigrationOutcome:
    """Bring the schema to the newest migration (idempotent); say what was done."""
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    with engine.begin() as conn:
        before = ", ".join(sorted(MigrationContext.configure(conn).get_current_heads()))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        after = ", ".join(sorted(MigrationContext.configure(conn).get_current_heads()))
    return MigrationOutcome(before or None, after)


class SchemaNotAtHeadError(RuntimeError):
    """The database schema is not at the newest migration (run ``rehab migrate``)."""


def require_schema_at_head(engine: Engine) -> str:
    """Return the schema's revision, or raise SchemaNotAtHeadError (a one-line message
    saying what is there, what is needed and to run ``rehab migrate``)."""
    cfg_dir = str(PROJECT_ROOT / "migrations")
    heads = set(ScriptDirectory(cfg_dir).get_heads())
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        raise SchemaNotAtHeadError(
            f"database: cannot read the schema version ({type(exc).__name__}); "
            "is the database reachable?") from None
    if not current:
        raise SchemaNotAtHeadError(
            "database: the database has no schema: run `rehab migrate` (it needs "
            f"{', '.join(sorted(heads))})")
    if current != heads:
        have = ", ".join(sorted(current))
        raise SchemaNotAtHeadError(
            f"database: schema is at {have}, needs {', '.join(sorted(heads))}; "
            "run `rehab migrate` first")
    return ", ".join(sorted(current))


def schema_problem(engine: Engine) -> str | None:
    """What is wrong with the database's schema, in one line naming the fix (no schema, an
    older one, an unreachable database), or None when it is at head. Used to explain a
    failed statement of a command instead of printing its traceback."""
    try:
        require_schema_at_head(engine)
    except SchemaNotAtHeadError as exc:
        return str(exc)
    return None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(engine: Engine) -> Path | None:
    if not is_sqlite(engine) or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(str(engine.url.database))
