"""Storing a batch of agency answers (engine.answers.intake.record_answers): the API's group
commit stores the answers that arrive together with a handful of statements; each answer
keeps the rules of one (298-п п.11: a late answer is accepted with its lateness)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from engine.answers.intake import AnswerIn, IncomingAnswer, StoredAnswer, record_answers
from engine.errors import NotFoundError
from engine.infra import audit
from engine.infra.clock import DbClock
from engine.routes.transitions import EngineConfig, register_application
from models.agencies import AgencyAnswer, AgencyRequest, AnswerOutcome
from models.audit import AuditEvent
from models.jobs import Job, JobKind
from models.persons import Person
from tests.ladder.conftest import receive_inbox


def _requests(db: Engine, clock: DbClock, cfg: EngineConfig,
              people: list[Person]) -> list[AgencyRequest]:
    """One route per person; their first requests (inbox agencies: received at once)."""
    with Session(db, expire_on_commit=False) as s:
        routes = [register_application(s, cfg, now=clock.now(), person_id=p.id,
                                       template_code="supported_living", template_version=0)
                  for p in people]
        s.commit()
    for route in routes:
        receive_inbox(db, clock, cfg, route.id)  # the agency opens its inbox at once
    with Session(db, expire_on_commit=False) as s:
        return list(s.exec(select(AgencyRequest).order_by(col(AgencyRequest.created_at))))


def _answer(req: AgencyRequest, webhook_id: str,
            outcome: AnswerOutcome = AnswerOutcome.provided) -> IncomingAnswer:
    return IncomingAnswer(req.agency_id, webhook_id,
                          AnswerIn(req.id, outcome, {"n": webhook_id}, None))


def _count(s: Session, model: type, *where: object) -> int:
    return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def test_a_batch_stores_each_answer_once_with_its_audit_record_and_job(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    r1, r2, r3 = _requests(db, clock, cfg, seeded)
    with Session(db) as s:
        (before,) = record_answers(s, [_answer(r3, "old")], now=clock.now())
        s.commit()
    assert isinstance(before, StoredAnswer) and before.created
    foreign = IncomingAnswer("mz39" if r1.agency_id != "mz39" else "mo39", "x",
                             AnswerIn(r1.id, AnswerOutcome.provided, {}, None))
    batch = [_answer(r1, "a"), _answer(r2, "b", AnswerOutcome.absent), _answer(r1, "a"),
             foreign, _answer(r3, "old")]
    with Session(db) as s:
        results = record_answers(s, batch, now=clock.now())
        s.commit()
    new_a, new_b, again_a, refused, again_old = results
    assert isinstance(new_a, StoredAnswer) and new_a.created and new_a.task_id == r1.id
    assert isinstance(new_b, StoredAnswer) and new_b.created and new_b.task_id == r2.id
    # the same webhook-id twice in one batch: stored once, the second is a duplicate
    assert isinstance(again_a, StoredAnswer)
    assert (again_a.answer_id, again_a.created) == (new_a.answer_id, False)
    # another agency's task: refused, nothing stored for it
    assert isinstance(refused, NotFoundError) and "task_id" in str(refused)
    # a webhook-id stored by an earlier batch: the stored answer, unchanged
    assert isinstance(again_old, StoredAnswer)
    assert (again_old.answer_id, again_old.created) == (before.answer_id, False)
    with Session(db) as s:
        assert _count(s, AgencyAnswer) == 3
        row = s.get(AgencyAnswer, new_b.answer_id)
        assert row is not None and row.outcome is AnswerOutcome.absent
        assert row.payload == {"n": "b"} and row.request_id == r2.id
        received = list(s.exec(select(AuditEvent).where(AuditEvent.action == "received")))
        assert sorted(int(e.entity_id) for e in received) == sorted(
            [before.answer_id, new_a.answer_id, new_b.answer_id])
        jobs = {j.ref for j in s.exec(select(Job).where(Job.kind == JobKind.apply_answer))}
        assert jobs == {str(before.answer_id), str(new_a.answer_id), str(new_b.answer_id)}


def test_a_late_answer_is_stored_with_its_lateness_in_working_days(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    req = _requests(db, clock, cfg, seeded[:1])[0]
    # registered Mon 03.03.2025: answer due Mon 10.03.2025 (5 working days from receipt);
    # answered on Thu 13.03.2025: 3 working days late
    clock.set(clock.now() + timedelta(days=10))
    with Session(db) as s:
        (res,) = record_answers(s, [_answer(req, "late")], now=clock.now())
        s.commit()
    assert isinstance(res, StoredAnswer) and res.late_working_days == 3


def test_nothing_is_stored_when_the_transaction_does_not_commit(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    req = _requests(db, clock, cfg, seeded[:1])[0]
    with Session(db) as s:
        audits_before = _count(s, AuditEvent)
    with Session(db) as s:
        record_answers(s, [_answer(req, "gone")], now=clock.now())
        s.rollback()
    with Session(db) as s:
        assert _count(s, AgencyAnswer) == 0
        assert _count(s, AuditEvent) == audits_before
        assert _count(s, Job, col(Job.kind) == JobKind.apply_answer) == 0


def test_audit_records_of_one_call_keep_their_order(
        db: Engine, clock: DbClock, seeded: list[Person]) -> None:
    entries = [audit.Entry(entity="route", entity_id=f"r{i}", action=f"a{i}") for i in range(5)]
    with Session(db) as s:
        audit.record_many(s, at=clock.now(), actor="test", entries=entries)
        s.commit()
    with Session(db) as s:
        got = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.actor == "test")
                                        .order_by(col(AuditEvent.id)))]
    assert got == [f"a{i}" for i in range(5)]


@pytest.mark.parametrize("n", [1, 50])
def test_batches_of_any_size_store_every_answer(
        n: int, db: Engine, clock: DbClock, cfg: EngineConfig) -> None:
    from sim.seed import make_persons, seed_agencies

    with Session(db, expire_on_commit=False) as s:
        seed_agencies(s)
        people = make_persons(s, n)
        s.commit()
    reqs = _requests(db, clock, cfg, people)
    with Session(db) as s:
        results = record_answers(s, [_answer(r, f"w{r.id}") for r in reqs], now=clock.now())
        s.commit()
    assert all(isinstance(r, StoredAnswer) and r.created for r in results)
    assert len({r.answer_id for r in results if isinstance(r, StoredAnswer)}) == n


def test_an_answer_stored_by_another_process_meanwhile_is_a_duplicate(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two API processes store the same webhook-id at once (PostgreSQL does not serialise
    them): the one that did not insert it answers "duplicate" and adds nothing."""
    import engine.answers.intake as answers

    req = _requests(db, clock, cfg, seeded[:1])[0]
    with Session(db) as s:
        (first,) = record_answers(s, [_answer(req, "same")], now=clock.now())
        s.commit()
    real = answers._stored
    calls: list[int] = []

    def blind_first(conn: object, keys: list[tuple[str, str]]) -> dict[
            tuple[str, str], StoredAnswer]:
        calls.append(len(keys))
        return {} if len(calls) == 1 else real(conn, keys)  # missed the other's commit

    monkeypatch.setattr(answers, "_stored", blind_first)
    with Session(db) as s:
        (again,) = record_answers(s, [_answer(req, "same")], now=clock.now())
        s.commit()
    assert len(calls) == 2  # looked again after the insert found the row taken
    assert isinstance(first, StoredAnswer) and isinstance(again, StoredAnswer)
    assert (again.answer_id, again.created) == (first.answer_id, False)
    with Session(db) as s:
        assert _count(s, AgencyAnswer) == 1
        assert _count(s, AuditEvent, col(AuditEvent.action) == "received") == 1
        assert _count(s, Job, col(Job.kind) == JobKind.apply_answer) == 1
