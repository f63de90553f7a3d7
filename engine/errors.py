"""The use cases' refusals, shared by every domain package (the API answers them: 404 for
``NotFoundError``, 422 or a domain-specific status for the rest).

A refusal's message is English, ``"<field>: <rule>"`` (the API's ``detail`` and the logs).
It also carries stable identifiers for those who speak another language (the pages render
Russian from them, ``api/web/messages.py``): ``field`` (the field's name, by default the
message's head), ``rule`` (a short code of the rule broken, None where not given yet) and
``params`` (the rule's values, e.g. ``{"max": 2000}``)."""

from __future__ import annotations

import re
from collections.abc import Mapping

_HEAD = re.compile(r"([a-z](?:[a-z0-9_.]*[a-z0-9_])?):")


def field_of(message: str) -> str | None:
    """The field a ``"<field>: <rule>"`` message names, else None."""
    m = _HEAD.match(message)
    return m.group(1) if m else None


class EngineError(ValueError):
    """A use case refused: the message names the field and the rule; ``field``, ``rule`` and
    ``params`` say the same in identifiers (``EngineError("x: y")`` still works: its field
    is ``x``, its rule None)."""

    def __init__(self, message: str, *, rule: str | None = None, field: str | None = None,
                 params: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.field = field if field is not None else field_of(message)
        self.rule = rule
        self.params: dict[str, object] = dict(params or {})


class NotFoundError(EngineError):
    """The thing does not exist (or is not visible to the caller)."""
