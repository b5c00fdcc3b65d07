"""The one definition of "unsafe characters": what user data must never bring to a terminal.

Names, emails and audit details are chosen by whoever can write the database. A control
character (ESC starts every terminal sequence), a line or paragraph separator, a bidi override
or isolate, a zero-width or other invisible format character, or a blank look-alike letter
(U+3164 HANGUL FILLER and its kin) could repaint the terminal, split a one-line message or
make text read as something it is not. The command line, the dashboard, error messages and
the audit log all use this one pattern; the store refuses these characters in names.
This module imports nothing but ``re``, so the store and both faces can use it cheaply.
"""

from __future__ import annotations

import re

#: Every character that must not reach a terminal raw. Tab and newline are in it too: faces that
#: keep line structure (``plain(one_line=False)``) let those two through on purpose.
UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0 controls (tab and newline included), DEL, C1 controls
    "\u00ad\u034f"  # soft hyphen, combining grapheme joiner: invisible
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"  # Arabic format marks, ALM (U+061C)
    "\u115f\u1160\u17b4\u17b5\u180b-\u180f"  # Hangul fillers, Khmer and Mongolian invisibles
    "\u200b-\u200f"  # zero widths, LRM/RLM
    "\u2028-\u202e"  # line/paragraph separators, bidi embeddings and overrides
    "\u2060-\u206f"  # word joiner, invisible operators, bidi isolates, deprecated formats
    "\u3164\ufeff\uffa0\ufff9-\ufffb"  # Hangul filler, BOM, halfwidth filler, annotations
    "\ud800-\udfff"  # lone surrogates: not even storable as UTF-8
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff"  # tags and the rest of the invisible plane-14 block
    "]"
)

#: Tab and newline: kept where text may span lines, replaced where it must stay on one.
_BREAKS = frozenset("\t\n")

REPLACEMENT = "?"


def has_unsafe(value: str) -> str | None:
    """The first unsafe character in ``value``, or None when there is none."""
    found = UNSAFE.search(value)
    return found.group() if found else None


def _keep_breaks(match: re.Match[str]) -> str:
    char = match.group()
    return char if char in _BREAKS else REPLACEMENT


def plain(value: object, *, one_line: bool = False) -> str:
    """``value`` as text with every unsafe character replaced by ``?``.

    Args:
        value: anything; ``None`` becomes the empty string.
        one_line: also replace tabs and newlines, for table cells and one-line messages.
    """
    if value is None:
        return ""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text  # nothing to replace (the common case, and 10,000 cells per listing)
    return UNSAFE.sub(REPLACEMENT if one_line else _keep_breaks, text)
