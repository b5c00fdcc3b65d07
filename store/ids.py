"""Stable public ids for rows (UUIDs, as Heroku's Platform API gives), derived from the rows.

No column holds them: an id is the version-5 UUID of the row's kind, its key (an integer id,
or a team's or app's id with an email) and a creation time (its own, its team's or its app's).
So an id is the same on every run and in a copy of the database (a backup), needs no schema
change, and differs between two databases unless they hold the same row made at the same
microsecond (the demo team, built at a fixed time, has the same ids everywhere).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

#: The namespace every public id is made in (fixed: changing it would change every id).
NAMESPACE = uuid.UUID("2b7f6a40-5f0e-5d1c-9a3e-7e4d1c0a6b19")

# str(uuid.uuid5(...)) costs about two and a half times what the same digest from a prepared
# hash, formatted by hand, costs; that matters for `members --json` on a 100,000-user team.
_PREFIX = hashlib.sha1(NAMESPACE.bytes)


def stamp(value: datetime) -> str:
    """A creation time as one fixed text: naive UTC to the microsecond, however it was read."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def public_id(kind: str, key: int | str, created_at: datetime) -> str:
    """The UUID (as text) of the ``kind`` row ``key``: ``uuid5(NAMESPACE, "kind/key/time")``.

    Args:
        kind: what the row is: ``team``, ``account``, ``app``, ``team-member``,
            ``collaborator``, ``resource``.
        key: the row's integer id, or for a pair (a team or app, and an email) both, as
            ``"3.joe@acme.com"``.
        created_at: a creation time the row carries, so that equal integer ids in two
            databases get different UUIDs.
    """
    if created_at.tzinfo is not None:
        created_at = created_at.astimezone(UTC).replace(tzinfo=None)
    h = _PREFIX.copy()
    h.update(f"{kind}/{key}/{created_at.isoformat(timespec='microseconds')}".encode())
    x = h.hexdigest()
    # The version (5) and RFC 4122 variant bits, set as uuid.uuid5 sets them.
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


#: The first hex digit of the clock sequence with the variant bits set (10xx).
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}
