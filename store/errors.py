"""The errors the store raises: each one line that says what, which rule, and what instead."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose; ``str(err)`` is the one-line message."""

    #: short machine-readable kind, used in the audit log and ``--json`` errors
    kind = "error"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
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
