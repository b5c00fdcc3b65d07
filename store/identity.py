"""Who is acting: the account bound to the OS login, or ``--as`` on a database you own."""

from __future__ import annotations

import os
import pwd

from sqlalchemy import text

from . import validate
from .db import Database
from .errors import NotFound, Refused
from .ops import Actor
from .queries import account_by_login


def os_login() -> str:
    """The OS login of the person running teamaccess, from the process's effective uid.

    Never from ``$USER`` / ``$LOGNAME`` (what ``getpass.getuser`` reads first): anyone can set
    those, and the login decides which bound account a person acts as.
    """
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (some containers): the uid is still who we are
        return str(uid)


def acting_login(db: Database) -> str:
    """The login that binds to an account: the OS login, or on PostgreSQL the server's role.

    A PostgreSQL database is reached from other hosts, where anyone can make a local account
    of any name; the role the server authenticated (``session_user``) can't be made up that
    way. With peer authentication over the local socket the two are the same name.
    """
    if db.path is None and db.backend == "postgresql":
        with db.read() as s:
            return str(s.execute(text("SELECT session_user")).scalar())
    return os_login()


def may_act_as_anyone(db: Database) -> bool:
    """Whether ``--as`` is honoured: only where the OS user owns the database.

    For an SQLite file that means owning the file (a personal or demo database: its owner can
    rewrite it at will anyway). For PostgreSQL it means connecting as the role that owns the
    database, which is how the person who set the database up bootstraps it.
    """
    if db.path is not None:
        try:
            return db.path.stat().st_uid == os.geteuid()
        except OSError:
            return False
    if db.backend == "sqlite":  # in memory: nobody else can see it
        return True
    with db.read() as s:
        owner = s.execute(
            text(
                "SELECT pg_catalog.pg_get_userbyid(datdba) = current_user "
                "FROM pg_catalog.pg_database WHERE datname = current_database()"
            )
        ).scalar()
    return bool(owner)


def resolve_actor(db: Database, as_email: str | None = None) -> Actor:
    """The acting account, or a one-line error that says how to become someone.

    Args:
        db: the database the command works on.
        as_email: ``--as``; when None, ``TEAMACCESS_AS`` is read instead.
    """
    login = acting_login(db)
    if as_email is None:
        as_email = os.environ.get("TEAMACCESS_AS") or None
    if as_email is not None:
        email = validate.email(as_email)
        if not may_act_as_anyone(db):
            raise Refused(
                f"--as/TEAMACCESS_AS is honoured only on a database you own; here you act "
                f"as the account bound to your login {login!r} (a team admin runs "
                f"'teamaccess accounts:bind {login} EMAIL').",
                rule="identity",
            )
        return Actor(email, login)
    bound = account_by_login(db, login)
    email = bound.email if bound is not None else None
    if email is None:
        raise NotFound(
            f"No account is bound to your login {login!r}: pass --as EMAIL (on a database you "
            f"own) or ask a team admin to run 'teamaccess accounts:bind {login} EMAIL'."
        )
    return Actor(email, login)
