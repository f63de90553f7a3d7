"""The use cases' refusals, shared by every domain package (the API answers them: 404 for
``NotFoundError``, 422 or a domain-specific status for the rest)."""

from __future__ import annotations


class EngineError(ValueError):
    """A use case refused: the message names the field and the rule."""


class NotFoundError(EngineError):
    """The thing does not exist (or is not visible to the caller)."""
