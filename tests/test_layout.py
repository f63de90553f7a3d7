"""The layout holds (docs/architecture.md): every module imports; the engine's rooms import
only rooms below them and nothing of Prefect, the flows, the API, the CLI or the demo; the
API's routers (api/*.py and the pages, api/web/*.py) run no queries of their own."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("calendars", "models", "engine", "tasks", "flows", "api", "cli", "sim", "ops")

#: The engine's rooms, lowest first: a room imports only rooms of a lower rank (and itself).
RANK = {
    "engine.infra": 0, "engine.errors": 0,
    "engine.answers": 1, "engine.notifications": 1, "engine.agencies": 1, "engine.staff": 1,
    "engine.escalations": 2,
    "engine.routes": 3,
    "engine.persons": 4, "engine.supervisor": 4,
    "engine.runtime": 5,
}
#: What no module of engine/ may import: Prefect and what talks to it, and the outer rooms.
NEVER_IN_ENGINE = ("prefect", "flows", "tasks.prefect_mirror", "tasks.prefect_server", "api",
                   "cli", "sim", "bench", "ops")
#: Query builders a router must not hold (reads and writes are the use cases').
QUERY_NAMES = {"select", "insert", "update", "delete", "text", "func", "col", "or_", "and_"}
SESSION_CALLS = {"exec", "execute", "scalar", "scalars", "query", "add", "add_all", "flush",
                 "delete", "merge"}


def _modules(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out.append(".".join(parts))
    return out


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in the file, function-level ones included."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
    return found


def _room(module: str) -> str | None:
    """The engine room a module belongs to (``engine.routes.reads`` → ``engine.routes``)."""
    for room in RANK:
        if module == room or module.startswith(room + "."):
            return room
    return None


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


ENGINE_FILES = sorted((ROOT / "engine").rglob("*.py"))
#: The API's routers: its JSON routers and its pages (api/web).
API_FILES = sorted([*(ROOT / "api").glob("*.py"), *(ROOT / "api" / "web").glob("*.py")])


def test_the_engine_has_its_rooms_and_each_says_what_it_holds() -> None:
    for room in RANK:
        path = ROOT / Path(*room.split("."))
        init = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        assert init.is_file(), room
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8")))
        assert doc and len(doc) > 40, f"{init}: a docstring saying what lives there"
    flat = [p.name for p in (ROOT / "engine").glob("*.py")]
    assert sorted(flat) == ["__init__.py", "errors.py"], "engine/: modules live in rooms"


@pytest.mark.parametrize("package", PRODUCT)
def test_every_module_imports(package: str) -> None:
    for name in _modules(package):
        importlib.import_module(name)


def _engine_problems(path: Path, me: str | None) -> list[str]:
    """What ``path`` (a module of room ``me``) imports that it must not."""
    problems = []
    for module, names in _imports(path):
        bad = [n for n in NEVER_IN_ENGINE if _within(module, n)]
        bad += [f"tasks.{n}" for n in names if module == "tasks" and n.startswith("prefect")]
        if bad:
            problems.append(f"imports {module} ({bad[0]} is not the engine's)")
        targets = [module] + ([f"{module}.{n}" for n in names] if module == "engine" else [])
        for target in targets:
            room = _room(target)
            if me is None or room is None or room == me:
                continue
            if RANK[room] >= RANK[me]:
                problems.append(f"({me}) imports {target} ({room}): not a room below")
    return problems


def _router_problems(path: Path, models: set[str]) -> list[str]:
    """Queries a router holds: query builders imported, session calls, session.get(Model)."""
    problems = []
    for module, names in _imports(path):
        if (_within(module, "sqlmodel") or _within(module, "sqlalchemy")) \
                and QUERY_NAMES & set(names):
            problems.append(f"imports {sorted(QUERY_NAMES & set(names))} of {module}")
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in SESSION_CALLS:
                problems.append(f"line {node.lineno}: .{attr}(...)")
            if attr == "get" and node.args and isinstance(node.args[0], ast.Name) \
                    and node.args[0].id in models:
                problems.append(f"line {node.lineno}: .get({node.args[0].id}, ...)")
    return problems


def _model_classes() -> set[str]:
    names: set[str] = set()
    for path in API_FILES:
        for module, imported in _imports(path):
            if _within(module, "models"):
                names.update(imported)
    return names


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_an_engine_room_imports_only_rooms_below_it_and_nothing_of_prefect(path: Path) -> None:
    rel = path.relative_to(ROOT).with_suffix("")
    assert _engine_problems(path, _room(".".join(rel.parts))) == [], rel


def test_loading_the_whole_engine_loads_no_prefect() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in _modules("engine"))
            + "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
              "('prefect', 'flows', 'api', 'cli', 'sim') or m.startswith('tasks.prefect'))\n"
              "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: str(p.relative_to(ROOT / "api")))
def test_a_router_runs_no_query_of_its_own(path: Path) -> None:
    """Routers call use cases; the statements are the engine's (reads included)."""
    assert _router_problems(path, _model_classes()) == [], path.name


def test_the_guards_find_a_query_and_an_upward_or_prefect_import(tmp_path: Path) -> None:
    """The checks above can fail: each finds what it looks for in a file that has it."""
    router = tmp_path / "router.py"
    router.write_text("from sqlmodel import Session, select\n"
                      "from models.routes import Route\n"
                      "def f(s: Session) -> None:\n"
                      "    s.exec(select(Route))\n"
                      "    s.get(Route, 'rt_1')\n")
    assert len(_router_problems(router, {"Route"})) == 3
    core = tmp_path / "core.py"
    core.write_text("from engine.routes.transitions import EngineConfig\n"
                    "def f() -> None:\n"
                    "    from engine.runtime import worker\n"
                    "    from tasks import prefect_mirror\n"
                    "    import prefect\n")
    problems = _engine_problems(core, "engine.escalations")
    assert len(problems) == 4, problems
    assert _engine_problems(core, "engine.runtime") != []  # Prefect, even from the runtime


def _function_level_imports(path: Path) -> list[int]:
    """Lines of imports inside a function (a lazy import standing in for design)."""
    tree = ast.parse(path.read_text("utf-8"))
    return sorted(n.lineno for fn in ast.walk(tree)
                  if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
                  for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom))


@pytest.mark.parametrize("package", ["engine", "api", "flows", "tasks"])
def test_no_function_level_imports(package: str) -> None:
    found = {str(p.relative_to(ROOT)): lines for p in sorted((ROOT / package).rglob("*.py"))
             if (lines := _function_level_imports(p))}
    assert found == {}


def test_the_lazy_import_guard_finds_one(tmp_path: Path) -> None:
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f() -> None:\n    from os import path\n")
    assert _function_level_imports(lazy) == [2]
