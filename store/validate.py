"""Input rules of the SPEC: emails, app and team names, roles and permissions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from .errors import Invalid
from .safetext import UNSAFE
from .words import PERMISSIONS, ROLES, Permission

# Re-exported for the callers that take them from here (portable.py among them).
from .words import SETTABLE_ROLES as SETTABLE_ROLES
from .words import sort_permissions as sort_permissions

_LOCAL = re.compile(r"[A-Za-z0-9._%+\-]+\Z")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\Z")
_APP = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]\Z")
_CONTROL = UNSAFE  # the one "unsafe characters" rule; portable.py checks names with it

MAX_EMAIL = 254
MAX_LOGIN = 64


def _shown(value: str, limit: int = 60) -> str:
    """A value made safe to quote in an error message: no control characters, bounded."""
    text = _CONTROL.sub("?", value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def email(value: str) -> str:
    """Return the email trimmed and lower-cased, or raise Invalid saying what is wrong."""
    if not isinstance(value, str):
        raise Invalid("Invalid email: expected text. Give an address like joe@acme.com.")
    text = value.strip()
    if not text.isascii():
        # Before lower-casing: str.lower folds look-alikes into ASCII (the Kelvin sign K
        # becomes k), so "\u212aen@" would otherwise become someone else's "ken@".
        raise Invalid(
            f"Invalid email {_shown(text)!r}: use ASCII letters, digits and . _ % + - only."
        )
    text = text.lower()
    if not text:
        raise Invalid("Invalid email: it is empty. Give an address like joe@acme.com.")
    if len(text) > MAX_EMAIL:
        raise Invalid(
            f"Invalid email: it is {len(text)} characters, over the limit of {MAX_EMAIL}."
        )
    local, at, domain = text.partition("@")
    if not at or not local or not _LOCAL.match(local) or not _DOMAIN.match(domain):
        raise Invalid(
            f"Invalid email {_shown(text)!r}: use local@domain.tld with letters, digits "
            "and . _ % + - before the @."
        )
    return text


def app_name(value: str) -> str:
    """Return a valid app name (3–30 of a-z, 0-9, -; starts with a letter) or raise Invalid."""
    return _name(value, "app", 3)


def team_name(value: str) -> str:
    """Return a valid team name (2–30 of a-z, 0-9, -; starts with a letter) or raise Invalid."""
    return _name(value, "team", 2)


def _name(value: str, what: str, shortest: int) -> str:
    if not isinstance(value, str):
        raise Invalid(f"Invalid {what} name: expected text.")
    text = value.strip()
    if not (shortest <= len(text) <= 30) or not _APP.match(text):
        raise Invalid(
            f"Invalid {what} name {_shown(text)!r}: use {shortest}-30 lowercase letters, digits "
            "and dashes, starting with a letter and not ending with a dash."
        )
    return text


def role(value: str, allowed: Iterable[str] = ROLES) -> str:
    """Return a valid role name or raise Invalid listing the valid ones."""
    allowed = tuple(allowed)
    text = value.strip().lower() if isinstance(value, str) else ""
    if text not in allowed:
        raise Invalid(
            f"Invalid role {_shown(str(value))!r}: use one of {', '.join(allowed)}."
        )
    return next(name for name in allowed if name == text)  # a Role when ``allowed`` holds Roles


def permissions(values: Iterable[str] | str | None) -> frozenset[Permission]:
    """Parse permission names (a list or a comma-separated string); ``view`` is always added."""
    if values is None:
        values = ()
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    result = {Permission.VIEW}
    for raw in values:
        if not isinstance(raw, str):
            raise Invalid("Invalid permission: expected a name like deploy.")
        name = raw.strip().lower()
        if not name:
            continue
        if name not in PERMISSIONS:
            raise Invalid(
                f"Invalid permission {_shown(raw)!r}: use any of {', '.join(PERMISSIONS)}."
            )
        result.add(Permission(name))
    return frozenset(result)


def login(value: str) -> str:
    """An OS login name: 1–64 of letters, digits, ``._-``."""
    text = value.strip() if isinstance(value, str) else ""
    if not (1 <= len(text) <= MAX_LOGIN) or not re.fullmatch(r"[A-Za-z0-9._][A-Za-z0-9._-]*", text):
        raise Invalid(
            f"Invalid login {_shown(str(value))!r}: use 1-64 letters, digits, '.', '_' or '-'."
        )
    return text



#: The longest a grant may last, and how long an undecided access request waits before it
#: lapses (SPEC "Temporary access and access requests").
MAX_EXPIRES_IN = timedelta(days=90)
_DURATION = re.compile(r"([0-9]{1,7})([smhd])\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def expires_in(value: str | None) -> timedelta | None:
    """``--expires-in``: a whole number and a unit (``45s``, ``30m``, ``8h``, ``7d``), > 0, <= 90d.

    None (the flag left out) stays None: a grant that never ends.
    """
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else ""
    found = _DURATION.match(text)
    if found is None:
        raise Invalid(
            f"Invalid duration {_shown(str(value))!r}: give a whole number and a unit s, m, h or d "
            "(e.g. 30m, 8h, 7d)."
        )
    seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if seconds == 0:
        raise Invalid(f"Invalid duration {text!r}: it must be more than zero (e.g. 30m, 8h, 7d).")
    if seconds > MAX_EXPIRES_IN.total_seconds():
        raise Invalid(f"Invalid duration {text!r}: the longest is 90d; ask again when it runs out.")
    return timedelta(seconds=seconds)


def duration_text(span: timedelta) -> str:
    """A duration the way ``--expires-in`` spells it, shortest exact form: ``8h``, ``90m``, ``45s``."""
    seconds = int(span.total_seconds())
    for unit in "dhm":
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def time_left(expires_at: datetime | None, now: datetime) -> str:
    """How long a grant has left, for people: ``never`` (no end), ``expired``, or the two largest
    units rounded down (``2d 3h``, ``7h 59m``, ``4m 10s``, ``45s``)."""
    if expires_at is None:
        return "never"
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "expired"
    parts = []
    for unit in "dhms":
        size = _UNIT_SECONDS[unit]
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)
