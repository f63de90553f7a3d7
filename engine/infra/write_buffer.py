"""Collecting one use case's writes for a single statement at its end.

A route transition writes a dozen audit records and asks for two or three jobs; a statement
each was a good part of its cost. Inside ``collected(session, key, pending, write)`` the
writers of ``key`` (``engine.infra.audit.record_many``, ``engine.infra.queue.enqueue_many``)
add their rows to ``pending`` (found in ``session.info[key]``) instead of writing them, and
when the use case ends ``write`` sends them all with one statement — on the session's
connection, in the same transaction, before its commit. An exception drops the collected
rows with the rest of the use case's work (its transaction or savepoint rolls back). Nested
uses write once, at the outermost end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session

P = TypeVar("P", bound=Sized)


@contextmanager
def collected(session: Session, key: str, pending: P,
              write: Callable[[Connection, P], object]) -> Iterator[None]:
    """Collect the rows of ``key`` in ``pending`` while the block runs; then ``write`` them
    (if any) with one statement in the session's transaction."""
    if session.info.get(key) is not None:
        yield
        return
    session.info[key] = pending
    try:
        yield
    finally:
        session.info.pop(key, None)
    if len(pending):
        write(session.connection(), pending)
