"""Stored text made safe to print on a terminal.

Reasons, requester names and engine answers are stored as they arrived; printed raw, an
ESC starts a terminal escape sequence (it can retitle the window, hide text or move the
cursor), a NUL or a carriage return hides what comes before it, and a right-to-left
override reverses what follows. Text output escapes them; JSON output stays exact.
"""

from __future__ import annotations

import unicodedata

# Categories escaped: controls (C0, DEL, C1), format characters (the bidirectional
# overrides and isolates, zero-width joiners), line and paragraph separators, surrogates
# and unassigned code points.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character that could act on a terminal written as its Python
    escape (``\\x1b``, ``\\u202e``, ``\\x0a``); a backslash stays a backslash, and plain
    text, including accents and other scripts, is unchanged."""
    if text.isprintable():  # the common case, fast
        return text
    return "".join(
        _escape(c) if unicodedata.category(c) in _ESCAPED_CATEGORIES else c for c in text
    )
