"""The route's life in the Prefect view (the mirror's card and log lines, built from our rows
alone): a step paused by a refusal (004 п.11) has its own status on the card; a refusal, a
resume and a termination (004 п.13) each make their Russian log line, and the steps closed by
a termination say so — not "closed by a supervisor"."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.infra.clock import DbClock
from models.routes import StepStatus
from tasks import prefect_logs as pl
from tasks import prefect_mirror as pm
from tests.conftest import kaliningrad
from tests.ladder.conftest import Staff
from tests.route_life.conftest import register, steps


def _view(db: Engine, clock: DbClock, route_id: str) -> pm.RouteView:
    view = pm.load_view(db, route_id, clock.now())
    assert view is not None
    return view


def _lines(view: pm.RouteView) -> list[str]:
    return [ln.message for ln in pl.log_lines(
        view.events, region=view.region, agencies=view.agencies,
        steps={st.id: pl.StepRef(st.seq, st.agency) for st in view.steps},
        n_steps=len(view.steps), escalations=view.escalations)]


def test_a_paused_step_on_the_card_and_the_route_life_in_the_log(
        api: TestClient, db: Engine, clock: DbClock, staff: dict[str, Staff]) -> None:
    coord = staff["coord39"]
    route_id = register(api, coord)  # Mon 12.01.2026
    sfr = steps(db, route_id)["sfr_tsr_consulting"]
    clock.freeze(kaliningrad(2026, 1, 14, 10))
    r = api.post(f"/api/routes/{route_id}/refuse", headers=coord.headers,
                 json={"agency_id": sfr.agency_id, "application_date": "2026-01-14"})
    assert r.status_code == 200, r.text
    view = _view(db, clock, route_id)
    [paused] = [st for st in view.steps if st.id == sfr.id]
    assert paused.status is StepStatus.paused
    card = pm.route_card(view)  # every mirror pass of a refused route builds it
    [row] = [ln for ln in card.splitlines() if f"| {paused.seq + 1} |" in ln]
    assert "| приостановлен (отказ от сопровождения) |" in row
    agency = paused.agency
    assert (f"14.01.2026: отказ от сопровождения участника «{agency}»: шаги приостановлены"
            in _lines(view))

    clock.freeze(kaliningrad(2026, 1, 21, 10))
    r = api.post(f"/api/routes/{route_id}/resume-participant", headers=coord.headers,
                 json={"agency_id": sfr.agency_id, "application_date": "2026-01-21"})
    assert r.status_code == 200, r.text
    assert (f"21.01.2026: сопровождение участника «{agency}» возобновлено с оставшимися "
            "рабочими днями") in _lines(_view(db, clock, route_id))

    clock.freeze(kaliningrad(2026, 1, 22, 10))
    r = api.post(f"/api/routes/{route_id}/terminate", headers=coord.headers,
                 json={"application_date": "2026-01-22"})
    assert r.status_code == 200, r.text
    view = _view(db, clock, route_id)
    actions = [(e.entity, e.action) for e in view.events]
    assert ("route", "terminated") in actions and ("step", "closed") not in actions
    closed = [e for e in view.events if e.action == "closed_route_terminated"]
    assert closed and all(e.entity == "step" for e in closed)
    lines = _lines(view)
    assert not [ln for ln in lines if "закрыт руководителем" in ln]
    assert (f"22.01.2026: шаг {paused.seq + 1} — закрыт: сопровождение прекращено" in lines)
    assert [ln for ln in lines if ln.startswith("22.01.2026: сопровождение прекращено: ")]
