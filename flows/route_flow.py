"""The Prefect face of a route: one flow run per person, one task run per step.

The route engine is the system of record and holds nothing while a route waits (a route is
rows in our database). Prefect shows each route as one long-running flow run named and
tagged by route id, region and template — never by name or SNILS — whose state says where it
stands ("waiting for МСЭ, answer due 19.01.2026"), with the steps as its task runs.
The mirror (``tasks/prefect_mirror.py``) keeps these runs in step with the engine:

- flow run ``route-<id>``, tags ``route:<id>``, ``region:<code>``, ``template:<code>``,
  parameter ``route_id`` only; its state is the current step's (``Sending``,
  ``AwaitingAnswer``, ``Overdue``, ``Escalated``, ``NeedsClarification``) with
  "— step 2 of 3", or ``Completed`` / ``Cancelled`` with the steps' outcomes;
- one task run per started step (``2. medical_check → Минздрав``, dynamic key = step
  number): ``Sending`` / ``SendOverdue``, ``AwaitingAnswer`` / ``Overdue`` / ``Escalated``
  (e.g. "waiting for Минздрав, answer due 19.01.2026, overdue by 2 working days
  (escalated)"), ``NeedsClarification``, ``Answered``, ``InformationAbsent`` or ``Closed``;
- the route's card, a markdown artifact ``route-<id>`` (``tasks/prefect_card.py``): the
  whole state message, then the steps in business dates; one Russian log line per
  transition with its business date (``tasks/prefect_logs.py``); and the state tags
  ``state:awaiting`` / ``state:overdue`` / ``state:escalated``.
"""

from __future__ import annotations

from prefect import flow, task

from engine.runtime.drive import drive_route
from flows.names import ROUTE_FLOW_NAME, STEP_TASK_NAME


@task(name=STEP_TASK_NAME)
def agency_step(route_id: str, seq: int) -> None:
    """One step of a route: an interagency request and its answer (298-п п.10–п.12).

    Its task run is created and moved by the mirror; the work itself is the engine's.
    """


@flow(name=ROUTE_FLOW_NAME, log_prints=False)
def rehabilitation_route(route_id: str) -> str:
    """Drive one route now: do whatever work of this route is due (send its request, apply
    its answer) and return the route's status. The route's long-running flow run is the
    mirror's; this flow is for running one route's pending work by hand
    (``rehab route drive ROUTE_ID`` does the same without Prefect)."""
    return drive_route(route_id)
