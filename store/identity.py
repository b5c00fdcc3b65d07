"""Who is acting: the account bound to the OS login, or ``--as`` on a database you own."""

from __future__ import annotations

import getpass
import os

from . import validate
from .db import Database
from .errors import NotFound, Refused
from .models import Account
from .ops import Actor


def os_login() -> str:
    """The OS login of the person running teamaccess."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the uid
        return str(os.getuid())


def may_act_as_anyone(db: Database) -> bool:
    """``--as`` is honoured only where the OS user owns the database file (personal or demo)."""
    if db.path is None:
        return db.backend == "sqlite"  # in memory: nobody else can see it
    try:
        return db.path.stat().st_uid == os.getuid()
    except OSError:
        return False


def resolve_actor(db: Database, as_email: str | None = None) -> Actor:
    """The acting account, or a one-line error that says how to become someone."""
    login = os_login()
    if as_email is None:
        as_email = os.environ.get("TEAMACCESS_AS") or None
    if as_email is not None:
        email = validate.email(as_email)
        if not may_act_as_anyone(db):
            raise Refused(
                f"--as/TEAMACCESS_AS is honoured only on a database file you own; here you act "
                f"as the account bound to your login {login!r} (an admin runs "
                f"'teamaccess accounts:bind {login} EMAIL')."
            )
        return Actor(email, login)
    with db.read() as s:
        from sqlalchemy import select

        bound = s.scalars(select(Account).where(Account.os_login == login)).first()
    if bound is None:
        raise NotFound(
            f"No account is bound to your login {login!r}: pass --as EMAIL (on your own "
            f"database) or ask a team admin to run 'teamaccess accounts:bind {login} EMAIL'."
        )
    return Actor(bound.email, login)
