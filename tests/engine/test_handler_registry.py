"""The worker takes its job handlers from a registry assembled at start-up: the engine's core
imports nothing of Prefect, the mirror refers to flows by name, and the import circle
drive → worker → prefect_mirror → route_flow → drive is gone. The mirror's bookkeeping never
waits for a row another transaction holds (no deadlock between workers on PostgreSQL)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from cli.runtime import mirror_handlers
from engine.infra.clock import DbClock
from engine.infra.settings import Settings
from engine.routes.transitions import EngineConfig, register_application
from engine.runtime.handlers import HandlerRegistry
from models.jobs import JobKind
from models.persons import Person
from models.routes import Route, Step
from tasks import prefect_mirror as pm
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]


class _Handler:
    def __init__(self, *kinds: JobKind) -> None:
        self.kinds = kinds

    async def run_once(self, worker: object, refs: list[str] | None) -> int:
        return 0

    async def aclose(self) -> None:
        pass


def test_the_registry_takes_one_handler_per_kind_and_never_a_core_kind() -> None:
    reg = HandlerRegistry().register(_Handler(JobKind.mirror_route))
    assert reg.handler_for(JobKind.mirror_route) is not None and len(reg) == 1
    with pytest.raises(ValueError, match="kinds: mirror_route has a handler already"):
        reg.register(_Handler(JobKind.mirror_route))
    with pytest.raises(ValueError, match="kinds: send_request is the worker's core work"):
        HandlerRegistry().register(_Handler(JobKind.send_request))


def test_the_mirror_is_registered_only_when_the_installation_says_so() -> None:
    on = mirror_handlers(Settings(environment="test", prefect_mirror=True))
    assert [type(h) for h in on] == [pm.PrefectMirrorHandler]
    assert len(mirror_handlers(Settings(environment="test", prefect_mirror=False))) == 0


@pytest.mark.parametrize("first", ["engine.runtime.drive", "flows.route_flow",
                                   "tasks.prefect_mirror", "engine.runtime.worker"])
def test_no_import_circle_and_no_prefect_in_the_core(first: str) -> None:
    code = (f"import sys, {first}\n"
            "import engine.runtime.drive, engine.runtime.worker, flows.route_flow,"
            " tasks.prefect_mirror\n")
    if first in ("engine.runtime.drive", "engine.runtime.worker"):
        code = (f"import sys, {first}\n"
                "bad = [m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')"
                " or m.startswith('tasks.prefect') or m.startswith('flows.')]\n"
                "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_core_has_no_import_of_prefect_not_even_a_lazy_one() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(prefect\b|tasks\.prefect|flows\b)", re.M)
    for path in (ROOT / "engine").rglob("*.py"):
        assert not pattern.search(path.read_text("utf-8")), path


@pytest.mark.skipif(not PG_URL, reason="row locks that skip: PostgreSQL")
def test_the_mirror_skips_rows_another_transaction_holds(
        db: Engine, clock: DbClock, cfg: EngineConfig, seeded: list[Person]) -> None:
    with Session(db, expire_on_commit=False) as s:
        route = register_application(s, cfg, now=clock.now(), person_id=seeded[0].id,
                                     template_code="supported_living", template_version=0)
        s.commit()
        steps = list(s.exec(select(Step).where(Step.route_id == route.id)))
    held, other = steps[0].id, steps[1].id
    updates: list[tuple[type[Route] | type[Step], str, dict[str, str]]] = [
        (Route, route.id, {"prefect_state": "r"}),
        (Step, held, {"prefect_state": "s0"}), (Step, other, {"prefect_state": "s1"})]
    with db.connect() as holder:  # a transition holding the step (lock_step)
        holder.execute(text("BEGIN"))
        holder.execute(text("SELECT id FROM step WHERE id = :i FOR UPDATE"), {"i": held})
        result: list[int] = []
        t = threading.Thread(target=lambda: result.append(pm._store(db, updates)))
        t.start()
        t.join(15)
        assert not t.is_alive(), "the mirror waited for a row another transaction holds"
        holder.execute(text("ROLLBACK"))
    assert result == [2]
    with Session(db) as s:
        assert s.get(Route, route.id).prefect_state == "r"  # type: ignore[union-attr]
        assert s.get(Step, other).prefect_state == "s1"  # type: ignore[union-attr]
        assert s.get(Step, held).prefect_state is None  # type: ignore[union-attr]
