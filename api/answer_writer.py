"""Group commit of agency answers: one writer thread stores the answers that arrive together
in one transaction (``engine.answers.intake.record_answers``), then acknowledges each. An answer is
acknowledged only after the transaction holding it has committed (nothing acknowledged is
ever lost)."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from engine.answers.intake import AnswerIn, IncomingAnswer, StoredAnswer, record_answers
from engine.infra.clock import Clock

log = logging.getLogger("rehab.api.answers")


@dataclass
class _Item:
    agency_id: str
    webhook_id: str
    answer: AnswerIn
    body_sha256: str | None
    future: Future[StoredAnswer]


class AnswerWriter:
    """Owns the one thread that writes answers in this process."""

    def __init__(self, engine: Engine, clock: Clock, *, max_batch: int = 200) -> None:
        self.engine = engine
        self.clock = clock
        self.max_batch = max_batch
        self._q: queue.Queue[_Item | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="answer-writer", daemon=True)
        self._thread.start()

    def submit(self, agency_id: str, webhook_id: str, answer: AnswerIn,
               body_sha256: str | None = None) -> Future[StoredAnswer]:
        """Store the answer (``body_sha256``: of its raw body, to tell a repeat of it from
        another answer under the same webhook-id); the future is done after the commit."""
        fut: Future[StoredAnswer] = Future()
        self._q.put(_Item(agency_id, webhook_id, answer, body_sha256, fut))
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
        try:
            with Session(self.engine, expire_on_commit=False) as s:
                results = record_answers(
                    s, [IncomingAnswer(i.agency_id, i.webhook_id, i.answer, i.body_sha256)
                       for i in batch],
                    now=now)
                s.commit()
        except BaseException as exc:  # the batch did not commit: nothing is acknowledged
            log.exception("answer batch of %d failed", len(batch))
            for item in batch:
                item.future.set_exception(exc)
            return
        for item, res in zip(batch, results, strict=True):
            if isinstance(res, BaseException):
                item.future.set_exception(res)
            else:
                item.future.set_result(res)
