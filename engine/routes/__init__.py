"""Routes and their steps: forming a route, sending its requests, applying answers, advancing
it (``transitions``), and moving open deadlines when the calendar or a supervisor changes
them (``recompute``)."""
