"""The supervisor's actions on the escalation ladder — list, acknowledge, extend, reassign,
close — and reading a route's history (``actions``)."""
