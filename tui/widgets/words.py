"""The store's one-line reasons in the dashboard's words: keys to press, not CLI commands.

The store speaks to both faces and names CLI commands ("use access:update"); in the dashboard
the same advice is a key. Only the advice is rewritten; what was refused and why stay as the
store said them.
"""

from __future__ import annotations

import re

#: (pattern, replacement): the CLI advice the store gives, and the dashboard key that does it.
_ADVICE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"add them first with 'teamaccess members:add [^']*'"),
     "add them first with a on the Roster (1)"),
    (re.compile(r"run 'teamaccess members --team [^']*'"), "see the Roster (1)"),
    (re.compile(r"run 'teamaccess teams' to see your teams"), "press t to switch team"),
    (re.compile(r"Run 'teamaccess apps' to list yours"), "see the Apps (2)"),
    (re.compile(r"run 'teamaccess access --app [^']*'"), "open its access pane (enter on Apps)"),
    (re.compile(r"use access:update"), "press e on their row to change it"),
    (re.compile(r"use access:add"), "press a in the access pane to grant"),
    (re.compile(r"with members:add"), "with a on the Roster (1)"),
    (re.compile(r"or create one with 'teamaccess teams:create NAME'"),
     "or create one with 'teamaccess teams:create NAME' in a shell"),
)


def in_dashboard_words(message: str) -> str:
    """``message`` with each piece of CLI advice replaced by the dashboard key that does it."""
    if "teamaccess" not in message and ":" not in message:
        return message
    for pattern, replacement in _ADVICE:
        message = pattern.sub(replacement, message)
    return message
