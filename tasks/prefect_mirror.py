"""Mirroring routes into Prefect: reconcile one route's flow run and task runs with our DB.

Reconciliation is idempotent (it compares with the last mirrored state and finds a lost
flow run by its ``route:<id>`` tag), so a crash between a Prefect call and our commit
repeats nothing visible. Only identifiers reach Prefect (152-ФЗ): route id, step kind,
agency short name, region, template, dates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import State, StateType
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from flows.route_flow import agency_step, rehabilitation_route
from models.agencies import Agency
from models.routes import Route, RouteStatus, Step, StepStatus

NAMESPACE = uuid.UUID("6f1d7b1c-8a8e-4f8e-9a43-3d0a1f5e2c11")


@dataclass(frozen=True)
class StepView:
    id: str
    seq: int
    kind: str
    status: StepStatus
    agency: str
    answer_by_date: date | None
    send_by_date: date | None
    task_run_id: str | None
    mirrored: str | None


@dataclass(frozen=True)
class RouteView:
    id: str
    region: str
    template: str
    status: RouteStatus
    flow_run_id: str | None
    mirrored: str | None
    steps: list[StepView]


def load_view(engine: Engine, route_id: str) -> RouteView | None:
    with Session(engine) as s:
        route = s.get(Route, route_id)
        if route is None:
            return None
        agencies = {a.id: a.short_name for a in s.exec(select(Agency))}
        steps = [
            StepView(st.id, st.seq, st.kind, st.status, agencies.get(st.agency_id or "", "—"),
                     st.answer_by_date, st.send_by_date, st.prefect_task_run_id,
                     st.prefect_state)
            for st in s.exec(select(Step).where(Step.route_id == route_id)
                             .order_by(col(Step.seq)))
        ]
        return RouteView(route.id, route.region, route.template, route.status,
                         route.prefect_flow_run_id, route.prefect_state, steps)


def _d(day: date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else "—"


def step_state(st: StepView) -> State | None:
    """The Prefect state that shows a step (None: not started, no task run yet)."""
    if st.status is StepStatus.planned:
        return None
    if st.status is StepStatus.sending:
        return State(type=StateType.RUNNING, name="Sending",
                     message=f"request to {st.agency}, send by {_d(st.send_by_date)}")
    if st.status is StepStatus.awaiting:
        return State(type=StateType.PAUSED, name="AwaitingAnswer",
                     message=f"waiting for {st.agency}, answer due {_d(st.answer_by_date)}")
    if st.status is StepStatus.needs_clarification:
        return State(type=StateType.PAUSED, name="NeedsClarification",
                     message=f"{st.agency} asked for clarification")
    if st.status is StepStatus.answered:
        return State(type=StateType.COMPLETED, name="Answered", message=f"{st.agency} answered")
    if st.status is StepStatus.absent:
        return State(type=StateType.COMPLETED, name="InformationAbsent",
                     message=f"{st.agency}: notice that the information is absent")
    return State(type=StateType.CANCELLED, name="Closed", message="closed by a supervisor")


def route_state(view: RouteView) -> State:
    """The flow run's state: where the route stands now."""
    if view.status is RouteStatus.completed:
        return State(type=StateType.COMPLETED, name="Completed", message="route completed")
    if view.status is RouteStatus.cancelled:
        return State(type=StateType.CANCELLED, name="Cancelled", message="route cancelled")
    current = next((s for s in view.steps if not s.status.terminal
                    and s.status is not StepStatus.planned), None)
    if current is None:
        return State(type=StateType.RUNNING, name="Running", message="moving to the next step")
    st = step_state(current)
    assert st is not None
    return State(type=StateType.RUNNING, name=st.name, message=st.message)


def _key(state: State) -> str:
    return f"{state.type.value}:{state.name}:{state.message}"[:200]


async def reconcile(client: PrefectClient, engine: Engine, route_id: str) -> int:
    """Bring the route's Prefect runs in line with our DB; return API calls made."""
    view = load_view(engine, route_id)
    if view is None:
        return 0
    calls = 0
    flow_run_id = view.flow_run_id
    if flow_run_id is None:
        tag = f"route:{view.id}"
        found = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])), limit=1)
        calls += 1
        if found:
            flow_run_id = str(found[0].id)
        else:
            fr = await client.create_flow_run(
                rehabilitation_route, name=f"route-{view.id}",
                parameters={"route_id": view.id},
                tags=[tag, f"region:{view.region}", f"template:{view.template}"],
                state=State(type=StateType.RUNNING, name="Registered",
                            message="application registered"),
            )
            calls += 1
            flow_run_id = str(fr.id)
        _store(engine, Route, view.id, prefect_flow_run_id=flow_run_id)
    for st in view.steps:
        state = step_state(st)
        if state is None:
            continue
        key = _key(state)
        if st.mirrored == key:
            continue
        task_run_id = st.task_run_id
        if task_run_id is None:
            task_run_id = str(uuid.uuid5(NAMESPACE, st.id))
            await client.create_task_run(
                agency_step, flow_run_id=uuid.UUID(flow_run_id), dynamic_key=str(st.seq),
                id=uuid.UUID(task_run_id), name=f"{st.seq + 1}. {st.kind} → {st.agency}",
                state=State(type=StateType.PENDING),
            )
            calls += 1
        await client.set_task_run_state(uuid.UUID(task_run_id), state, force=True)
        calls += 1
        _store(engine, Step, st.id, prefect_task_run_id=task_run_id, prefect_state=key)
    rstate = route_state(view)
    rkey = _key(rstate)
    if view.mirrored != rkey:
        await client.set_flow_run_state(uuid.UUID(flow_run_id), rstate, force=True)
        calls += 1
        _store(engine, Route, view.id, prefect_state=rkey)
    return calls


def _store(engine: Engine, table: type[Route] | type[Step], row_id: str, **values: str) -> None:
    with Session(engine) as s:
        row = s.get(table, row_id)
        if row is not None:
            for k, v in values.items():
                setattr(row, k, v)
            s.add(row)
            s.commit()
