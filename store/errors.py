"""The errors the store raises: each one line that says what, which rule, and what instead."""

from __future__ import annotations

from .safetext import UNSAFE

#: User input quoted in a message must not bring unsafe characters along, or a name holding
#: "\n", "\u2028" or "\x1b[2J" could split the one line, reorder it or drive the terminal.
_CONTROL = UNSAFE

#: However long the input it quotes, a message stays one readable line.
MAX_MESSAGE = 500


def one_line(message: str) -> str:
    """``message`` made safe to print: control characters as ``?``, at most MAX_MESSAGE long."""
    text = _CONTROL.sub("?", message)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class StoreError(Exception):
    """Base of every error the store raises on purpose; ``str(err)`` is the one-line message."""

    #: short machine-readable kind, used in the audit log and ``--json`` errors
    kind = "error"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        message = one_line(str(message))
        super().__init__(message)
        self.message = message
        self.rule = rule

    def __str__(self) -> str:
        return self.message


class Refused(StoreError):
    """The actor may not do this, or a rule of the SPEC forbids it."""

    kind = "refused"


class LastAdminRefused(Refused):
    """The change would leave a team with no admin."""


class NotFound(StoreError):
    """A named account, team or app does not exist (or the actor may not know it does)."""

    kind = "not_found"


class Invalid(StoreError):
    """Malformed input: an email, a name, a role or a permission that the SPEC does not allow."""

    kind = "invalid"


class Busy(StoreError):
    """The database stayed locked by other writers for longer than we are willing to wait."""

    kind = "busy"


class DatabaseProblem(StoreError):
    """The database can't be used: not a database, a newer schema, read-only, disk full."""

    kind = "database"
