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
    (re.compile(r"ask for it with 'teamaccess access:request --app [^']*'"), "ask for it with R"),
    (re.compile(r"widen it with access:update"), "widen it with e in the app's access pane"),
    (re.compile(r"have them ask for all of it, or change the grant with access:update"),
     "have them ask for all of it, or change the grant with e in the app's access pane"),
    (re.compile(r"\(--expires-in of at most what you have left\)"),
     "('Expires in' of at most what you have left)"),
    (re.compile(r"Approve with --expires-in of at least what is left, or change the grant with "
                r"access:update"),
     "Approve with an 'Expires in' of at least what is left, or change the grant with e in the "
     "app's access pane"),
    (re.compile(r"approve with --expires-in, or change the grant with access:update"),
     "approve with an end in 'Expires in', or change the grant with e in the app's access pane"),
    (re.compile(r"\(see 'teamaccess access:requests'\)"), "(r lists your requests)"),
    (re.compile(r"run 'teamaccess access:requests' to list them"), "r lists them"),
    (re.compile(r"may ask again with access:request"), "may ask again (R on the app)"),
    (re.compile(r"give --permissions, --expires-in or --permanent"),
     "tick a permission, give an end in 'Expires in', or tick 'No end'"),
    (re.compile(r"Give either --expires-in or --permanent, not both"),
     "Give either a new end or 'No end (permanent)', not both"),
    (re.compile(r"with members:add"), "with a on the Roster (1)"),
    (re.compile(r"or create one with 'teamaccess teams:create NAME'"),
     "or create one with 'teamaccess teams:create NAME' in a shell"),
)


def in_dashboard_words(message: str) -> str:
    """``message`` with each piece of CLI advice replaced by the dashboard key that does it."""
    if "teamaccess" not in message and ":" not in message and "--" not in message:
        return message
    for pattern, replacement in _ADVICE:
        message = pattern.sub(replacement, message)
    return message


def about_you(message: str, email: str) -> str:
    """``message`` saying "you" where the store named the acting account by its email (the
    store's wording serves the CLI, where the email reads well enough)."""
    if email not in message:
        return message
    for named, yours in (
        (f"Can't change the role of {email}: they are", "Can't change your own role: you are"),
        (f"Can't remove {email}: they are", "Can't remove yourself: you are"),
        (f"Can't change the role of {email}: that would", "Can't change your own role: that would"),
        (f"Can't remove {email}: that would", "Can't remove yourself: that would"),
    ):
        if message.startswith(named):
            return yours + message[len(named):]
    for named, yours in (
        (f"{email} is the only admin of", "You are the only admin of"),
        (f"{email} already has every permission", "You already have every permission"),
        (f"{email} is already", "You are already"),
    ):
        if message.startswith(named):
            message = yours + message[len(named):]
            message = message.replace("remove them", "remove yourself")
            message = message.replace("change their role", "change your own role")
            break
    return message
