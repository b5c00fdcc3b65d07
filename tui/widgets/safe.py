"""Show user data literally: never as Rich/Textual markup, never as terminal control codes."""

from __future__ import annotations

import re

from rich.text import Text

# The store's one rule (C0/C1 controls, separators, bidi and invisible format characters, blank
# look-alikes), so that the dashboard hides exactly what the command line hides.
from teamaccess.store.safetext import UNSAFE as _UNSAFE


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400 control pictures: ESC shows as ␛
    if code == 0x7F:
        return "\u2421"
    return "\ufffd"


def clean(value: object) -> str:
    """``value`` as a string with every control or invisible character made visible."""
    if value is None:
        return ""
    return _UNSAFE.sub(_picture, str(value))


def text(value: object, style: str = "") -> Text:
    """User data as a Rich Text that is shown exactly as stored (no markup is parsed)."""
    return Text(clean(value), style=style, end="")
