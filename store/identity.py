"""Who is acting: the account bound to the OS login, or ``--as`` on a database you own."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from functools import cache
from pathlib import Path

from sqlalchemy import text

from . import ops, validate
from .db import Database
from .errors import Busy, DatabaseProblem, NotFound, Refused
from .ops import Actor
from .queries import account_by_login, binding_lapsed


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


@cache
def _group_has_others(gid: int, me: int) -> bool:
    """Whether anyone but ``me`` is in the group (a user-private group has nobody else)."""
    try:
        group = grp.getgrgid(gid)
    except KeyError:
        return True
    mine = _login_of(me)
    if any(member != mine for member in group.gr_mem):
        return True
    return any(entry.pw_gid == gid and entry.pw_uid != me for entry in pwd.getpwall())


def _login_of(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def renamable_by_others(path: Path) -> Path | None:
    """The first folder above ``path`` in which someone else may rename or replace files.

    A folder others may write without the sticky bit (group-writable with someone else in the
    group, or world-writable), or one owned by another user, lets them swap the database for a
    copy they own (``cp db .x && mv .x db``): owning "the file" means nothing there.
    """
    me = os.geteuid()
    for folder in path.parents:
        try:
            info = folder.stat()
        except OSError:
            return folder
        if info.st_uid not in (0, me):
            return folder
        if info.st_mode & stat.S_ISVTX:
            continue  # sticky: only a file's owner (or the folder's) may rename it
        if info.st_mode & stat.S_IWOTH:
            return folder
        if info.st_mode & stat.S_IWGRP and _group_has_others(info.st_gid, me):
            return folder
    return None


def _owns_file(db: Database) -> bool:
    """Whether this OS user owns the file SQLite holds (and it is still the one at the path)."""
    return db.opened_file_owner() == os.geteuid()


def _folder_refusal(db: Database) -> str | None:
    """Why --as is refused on an owned SQLite file in a folder others may rename in, or None."""
    assert db.path is not None
    folder = renamable_by_others(db.path)
    if folder is None:
        return None
    return (
        f"--as/TEAMACCESS_AS is refused on {db.path}: others may rename files in {folder} "
        f"(it is writable by others without the sticky bit, or not yours), so the file "
        f"there may not stay yours; its owner should run 'chmod +t {folder}' (README: "
        "install -d -m 3770)."
    )


def may_act_as_anyone(db: Database) -> bool:
    """Whether ``--as`` is honoured: only where the OS user owns the database.

    For an SQLite file that means owning the file SQLite actually opened (a personal or demo
    database: its owner can rewrite it at will anyway), in folders where nobody else may rename
    it. For PostgreSQL it means connecting as the role that owns the database, which is how the
    person who set the database up bootstraps it.
    """
    if db.path is not None:
        return _owns_file(db) and _folder_refusal(db) is None
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
        reason = None
        if db.path is not None and _owns_file(db):
            reason = _folder_refusal(db)  # the owner, in a folder where that means nothing
        elif not may_act_as_anyone(db):
            reason = (
                f"--as/TEAMACCESS_AS is honoured only on a database you own; here you act "
                f"as the account bound to your login {login!r} (a team admin runs "
                f"'teamaccess accounts:bind {login} EMAIL')."
            )
        if reason is not None:
            _log_refusal(db, email, login, reason)
            raise Refused(reason, rule="identity")
        return Actor(email, login, owns_database=True)
    bound = account_by_login(db, login)
    email = bound.email if bound is not None else None
    if email is None:
        raise NotFound(
            f"No account is bound to your login {login!r}: pass --as EMAIL (on a database you "
            f"own) or ask a team admin to run 'teamaccess accounts:bind {login} EMAIL'."
        )
    owns = may_act_as_anyone(db)
    if not owns:
        lapsed = binding_lapsed(db, bound)
        if lapsed is not None:
            _log_refusal(db, email, login, lapsed)
            raise Refused(lapsed, rule="binding:use:lapsed")
    return Actor(email, login, owns_database=owns)


def _log_refusal(db: Database, email: str, login: str, reason: str) -> None:
    """Write the refused ``--as`` to the audit log (SPEC rule 10: every refused attempt).

    Where the user can't write the database at all (a read-only reader) there is nowhere to
    write it; the refusal itself still stands.
    """
    try:
        ops.refuse_act_as(db, Actor(email, login), reason)
    except Refused:
        pass  # the event is written; the caller raises the refusal
    except (DatabaseProblem, Busy):
        pass
