"""Free text from outside: when it counts as blank.

A comment or a reason of only whitespace or invisible characters (U+200B zero width space,
U+00A0 no-break space, U+FEFF, Hangul fillers …) says nothing: it is blank. The rule is one
regular expression, ``VISIBLE_PATTERN``, used both by the server and in the OpenAPI
document (JSON Schema ``pattern``), so that what the schema allows the server accepts.
"""

from __future__ import annotations

import re
import unicodedata

# Characters that show nothing: controls (Cc), format characters (Cf: U+200B, U+2060,
# U+FEFF …) and separators (Zs, Zl, Zp: U+00A0, U+3000 …) of the Basic Multilingual Plane,
# plus letters and symbols drawn empty (Hangul fillers, the blank Braille pattern).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
_DRAWN_EMPTY = frozenset({0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800})


def _ranges(points: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in points:
        if out and out[-1][1] == p - 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def _invisible_class() -> str:
    points = [p for p in range(0x10000) if not 0xD800 <= p <= 0xDFFF and (
        p in _DRAWN_EMPTY or unicodedata.category(chr(p)) in _INVISIBLE_CATEGORIES)]
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}"
                   for a, b in _ranges(points))


# At least one visible character. Written with explicit \\uXXXX ranges only, so that it
# means the same in ECMA-262 (JSON Schema), Python's ``re`` and Rust's ``regex`` (pydantic).
VISIBLE_PATTERN = f"[^{_invisible_class()}]"
_VISIBLE = re.compile(VISIBLE_PATTERN)


def is_blank(text: str | None) -> bool:
    """True when ``text`` shows no character: empty, whitespace or invisible characters."""
    return _VISIBLE.search(text or "") is None
