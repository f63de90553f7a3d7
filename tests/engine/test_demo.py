"""The main job, end to end, as the README runs it: `rehab demo` with its own Prefect
server, API, worker and simulated agencies (some late, some silent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("prefect", [True, False], ids=["prefect", "no-prefect"])
def test_demo_completes_routes_and_escalates(tmp_path: Path, prefect: bool) -> None:
    env = {**os.environ, "REHAB_VAR_DIR": str(tmp_path)}
    env.pop("REHAB_DATABASE_URL", None)
    args = [sys.executable, "-m", "cli.main", "demo", "--persons", "12", "--json"]
    if not prefect:
        args.append("--no-prefect")
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["routes"] == 12
    assert summary["routes_active"] == 0
    assert summary["routes_completed"] + summary["routes_cancelled"] == 12
    assert summary["routes_completed"] >= 8
    assert summary["answers_on_time"] > 0 and summary["answers_late"] > 0
    assert summary["escalations"]["overdue"] > 0 and summary["escalations"]["escalated"] > 0
    assert summary["supervisor_actions"] > 0
    assert summary["distinct_keys_at_agencies"] == summary["requests"]
    assert summary["flow_runs_mirrored"] == (12 if prefect else 0)
    assert "Демо" in out.stderr  # the progress header is shown to the person running it
