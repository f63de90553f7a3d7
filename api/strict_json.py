"""Strict JSON for bodies from outside: what every strict reader accepts, or a 4xx naming the
place and the rule.

``json.loads`` accepts more than RFC 8259 JSON and can fail in ways that are not a decode
error: ``NaN`` / ``Infinity``, numbers that overflow a double (stored as ``Infinity``),
integers of thousands of digits (``ValueError`` past 4,300 digits; we take integers
within a double's range), escaped lone surrogates
(``"\\ud800"``: a Python string that cannot be encoded back to UTF-8) and deep nesting
(``RecursionError``). ``loads`` refuses each with :class:`StrictJsonError`, whose message is
``<field path>: <rule>`` (e.g. ``payload.items.3: NaN and Infinity are not JSON numbers``)
and never quotes the input.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MAX_DEPTH = 64  # objects and arrays nested in each other
# integers within a double's range (about 1.8e308, at most 309 digits), like every number
INT_LIMIT = int(sys.float_info.max)
_MAX_INT_CHARS = len(str(INT_LIMIT)) + 1  # a sign and 309 digits


class StrictJsonError(ValueError):
    """The body is not strict JSON: the message names the place and the rule."""


class _Bad:
    """A value the scanner met that strict JSON refuses; found (with its path) afterwards."""

    __slots__ = ("rule",)

    def __init__(self, rule: str) -> None:
        self.rule = rule


def _constant(_: str) -> _Bad:
    return _Bad("NaN and Infinity are not JSON numbers")


def _float(text: str) -> float | _Bad:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Bad("number out of range (overflows a double)")
    return value


def _int(text: str) -> int | _Bad:
    if len(text) > _MAX_INT_CHARS or abs(value := int(text)) > INT_LIMIT:
        return _Bad("integer out of range (at most 1.8e308 in magnitude, as a double; send "
                    "longer numbers as strings)")
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _path(parts: tuple[str, ...]) -> str:
    return ".".join(parts) or "body"


def _check(root: Any) -> None:
    """Walk the parsed document (iteratively) for refused values, lone surrogates and depth."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(root, (), 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, _Bad):
            raise StrictJsonError(f"{_path(path)}: {value.rule}")
        if isinstance(value, str):
            if _has_surrogate(value):
                raise StrictJsonError(f"{_path(path)}: a lone surrogate (\\ud800-\\udfff) is "
                                      "not a character")
            if "\x00" in value:  # PostgreSQL text cannot hold it
                raise StrictJsonError(f"{_path(path)}: the NUL character (\\u0000) is not "
                                      "allowed in text")
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise StrictJsonError(f"{_path(path)}: nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                name = str(key)
                if isinstance(key, str) and (_has_surrogate(key) or "\x00" in key):
                    raise StrictJsonError(f"{_path(path)}: a key holds a lone surrogate "
                                          "(\\ud800-\\udfff) or NUL, not a character")
                stack.append((item, (*path, name), depth + 1))


def loads(text: str) -> Any:
    """Parse ``text`` as strict JSON (RFC 8259, numbers within a double's range, no lone
    surrogates, at most ``MAX_DEPTH`` levels); StrictJsonError naming the place otherwise,
    ``json.JSONDecodeError`` for text that is not JSON at all."""
    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise StrictJsonError(f"body: nested deeper than {MAX_DEPTH} levels") from None
    _check(data)
    return data
