"""Free text from outside: when it counts as blank.

A comment or a reason of only whitespace or invisible characters (U+200B zero width space,
U+00A0 no-break space, U+FEFF, Hangul fillers …) says nothing: it is blank.
"""

from __future__ import annotations

import unicodedata

# Unicode categories that show nothing: controls, format characters (U+200B, U+FEFF,
# U+2060 …), separators (U+00A0, U+3000 …), unassigned, private-use and surrogate code
# points and combining marks on their own; plus letters and symbols drawn empty.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
_INVISIBLE_CHARS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})

# The same rule as far as a JSON Schema pattern (ECMA-262, no Unicode classes) can say it: at
# least one character that is not whitespace, a control or a known invisible character.
VISIBLE_PATTERN = (
    "[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u034f\\u061c\\u115f\\u1160\\u17b4\\u17b5"
    "\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u206f\\u2800\\u3164\\ufeff\\uffa0"
    "\\ue000-\\uf8ff]")


def is_blank(text: str | None) -> bool:
    """True when ``text`` shows no character: empty, whitespace or invisible characters."""
    return not any(ch not in _INVISIBLE_CHARS
                   and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES
                   for ch in text or "")
