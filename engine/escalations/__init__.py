"""Deadlines' timers (``timers``: scheduling a step's ladder of timers) and the escalation
ladder (``ladder``: reminder, overdue, escalated, and their resolution)."""
