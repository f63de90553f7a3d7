"""The names of the product's Prefect flows and tasks: the mirror and the sweeper's reports
refer to these, never to the flow objects (``flows/route_flow.py``, ``flows/sweeper.py``)."""

ROUTE_FLOW_NAME = "rehabilitation-route"
STEP_TASK_NAME = "agency-step"
