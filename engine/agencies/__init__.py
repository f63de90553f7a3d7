"""Participant agencies: onboarding, endpoints and webhook secrets with their rotation
(``participants``)."""
