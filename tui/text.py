"""Make user data safe to print: no terminal control sequences, no bidi tricks, one line if asked.

Both faces print names, emails and audit details that anyone with write access could have
chosen; a stray ESC or a right-to-left override could repaint the terminal or disguise a row.
This module has no Textual or Rich dependency, so the command line can use it cheaply.
"""

from __future__ import annotations

import re

# C0 and C1 controls except tab and newline (handled by ``one_line``), DEL, and the Unicode
# format characters that reorder or hide text (bidi embeddings/overrides/isolates, zero widths).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_BREAKS = re.compile(r"[\t\n]")

REPLACEMENT = "?"


def money(cents: int) -> str:
    """Cents as dollars, e.g. $1,250.00 (both faces show prices this way)."""
    return f"${cents / 100:,.2f}"


def plain(value: object, *, one_line: bool = False) -> str:
    """``value`` as text with every control or reordering character replaced by ``?``.

    Args:
        value: anything; ``None`` becomes the empty string.
        one_line: also replace tabs and newlines, for table cells and one-line messages.
    """
    if value is None:
        return ""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text  # nothing to replace (the common case, and 10,000 cells per listing)
    text = _UNSAFE.sub(REPLACEMENT, text)
    if one_line:
        text = _BREAKS.sub(REPLACEMENT, text)
    return text
