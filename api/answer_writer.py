"""Group commit of agency answers: one writer thread stores the answers that arrive together
in one transaction, then acknowledges each. An answer is acknowledged only after the
transaction holding it has committed (nothing acknowledged is ever lost)."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine.clock import Clock
from engine.routes import AnswerIn, EngineError, record_answer
from models.agencies import Agency

log = logging.getLogger("rehab.api.answers")


@dataclass(frozen=True)
class Stored:
    answer_id: int
    task_id: str
    created: bool
    late_working_days: int


@dataclass
class _Item:
    agency_id: str
    webhook_id: str
    answer: AnswerIn
    future: Future[Stored]


class AnswerWriter:
    """Owns the one thread that writes answers in this process."""

    def __init__(self, engine: Engine, clock: Clock, *, max_batch: int = 200) -> None:
        self.engine = engine
        self.clock = clock
        self.max_batch = max_batch
        self._q: queue.Queue[_Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="answer-writer", daemon=True)
        self._thread.start()

    def submit(self, agency_id: str, webhook_id: str, answer: AnswerIn) -> Future[Stored]:
        fut: Future[Stored] = Future()
        self._q.put(_Item(agency_id, webhook_id, answer, fut))
        return fut

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._write(batch)
                    return
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        now = self.clock.now()
        results: list[tuple[_Item, Stored | BaseException]] = []
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                for item in batch:
                    results.append((item, self._one(s, item, now)))
                s.commit()
        except BaseException as exc:  # the batch did not commit: nothing is acknowledged
            log.exception("answer batch of %d failed", len(batch))
            for item in batch:
                item.future.set_exception(exc)
            return
        for item, res in results:
            if isinstance(res, BaseException):
                item.future.set_exception(res)
            else:
                item.future.set_result(res)

    @staticmethod
    def _one(s: Session, item: _Item, now: datetime) -> Stored | BaseException:
        sp = s.begin_nested()
        try:
            agency = s.get(Agency, item.agency_id)
            if agency is None:
                raise EngineError(f"agency_id: unknown agency {item.agency_id!r}")
            row, created = record_answer(s, agency=agency, webhook_id=item.webhook_id,
                                         answer=item.answer, now=now)
            sp.commit()
        except EngineError as exc:
            sp.rollback()
            return exc
        except IntegrityError:  # the same webhook-id was stored by another process just now
            sp.rollback()
            agency = s.get(Agency, item.agency_id)
            assert agency is not None
            row, created = record_answer(s, agency=agency, webhook_id=item.webhook_id,
                                         answer=item.answer, now=now)
        assert row.id is not None
        return Stored(row.id, row.request_id, created, row.late_working_days)
