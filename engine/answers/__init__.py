"""Agencies' answers in: stored durably, with their audit records and the jobs that will
apply them, before they are acknowledged (``intake``)."""
