"""The database: an engine from a path or URL, SQLite's settings, write transactions, a change watcher.

SQLite is the default (one file, no server). Every write runs in ``BEGIN IMMEDIATE`` so that a
check made inside the transaction (say, "is there another admin?") still holds when it commits;
PostgreSQL gets the same guarantee from SERIALIZABLE transactions retried on conflict.
"""

from __future__ import annotations

import os
import pwd
import random
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from . import models
from .errors import Busy, DatabaseProblem, StoreError
from .watch import Watcher, install_notify

T = TypeVar("T")

#: How long one connection waits on SQLite's lock before giving up (ms), and how many times a
#: whole write transaction is retried after that; together about 20 s before "busy".
BUSY_TIMEOUT_MS = 4000
WRITE_ATTEMPTS = 5

#: Test hook, read when a Database is opened: "1" makes write transactions unsafe on purpose
#: (plain deferred ``BEGIN`` on SQLite, READ COMMITTED on PostgreSQL) so that the race tests
#: can show they catch the difference. Never set it outside a test.
UNSAFE_WRITES_ENV = "TEAMACCESS_TEST_UNSAFE_WRITES"

BUSY_MESSAGE = (
    "The database stayed busy with other writers for too long: nothing was changed; "
    "try again in a moment."
)

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
_PG_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION teamaccess_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
    "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION teamaccess_audit_append_only()",
)


def default_path() -> Path:
    """The default database file, in the user's data directory."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("teamaccess", appauthor=False)) / "teamaccess.db"


def resolve_url(where: str | os.PathLike[str] | None = None) -> str:
    """Turn ``--db`` / ``TEAMACCESS_DB`` (a path or an SQLAlchemy URL) into a URL."""
    where = where if where not in (None, "") else os.environ.get("TEAMACCESS_DB") or None
    if where is None:
        where = default_path()
    text_where = os.fspath(where)
    if "://" in text_where:
        return text_where
    return "sqlite:///" + str(Path(text_where).expanduser().absolute())


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL, or None for another backend or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _refuse_uri_filenames(url: str) -> None:
    """Refuse SQLite URI filenames and URL options: the file checked must be the file opened.

    With ``file:...?uri=true`` SQLite opens whatever the URI names while the path as written
    (a decoy in the caller's own folder) is what an ownership check would look at; options such
    as ``immutable`` or ``nolock`` would also switch off the locking every writer relies on.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    if parsed.query or (parsed.database or "").startswith("file:"):
        raise DatabaseProblem(
            "SQLite URI filenames and URL options (file:..., ?uri=true, ?mode=...) are not "
            "accepted: give --db / TEAMACCESS_DB as a plain path to the database file."
        )


def _shared_folder(folder: Path) -> bool:
    """Whether a folder is set up for sharing: setgid, or writable by its group."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_ISGID | stat.S_IWGRP))


def _create_private_file(path: Path) -> None:
    """Create an empty database file: 0660 in a shared (setgid or group-writable) folder, else 0600.

    Where users share a primary group (some distributions put everyone in ``users``), 0660 in a
    personal folder would let all of them write a personal database; a folder set up for
    sharing, as README's recipe does, is where the group is meant to reach it.

    Only the default data directory is made on demand: a missing folder in a path someone
    typed is far more likely a typo than a wish for new folders.
    """
    if path.parent == default_path().parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise DatabaseProblem(
            f"No folder {path.parent}: create it first, or fix the path given by --db / "
            "TEAMACCESS_DB."
        )
    mode = 0o660 if _shared_folder(path.parent) else 0o600
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, mode)  # the umask may have taken the group bits
    finally:
        os.close(fd)


def _translate(err: BaseException, url: str) -> StoreError | None:
    """A one-line StoreError for a database failure a person can act on, else None."""
    message = str(getattr(err, "orig", err) or err).lower()
    path = sqlite_path(url)
    where = path or make_url(url).render_as_string(hide_password=True)
    if "file is not a database" in message or "database disk image is malformed" in message:
        if path is not None and _sidecars(path):
            # The usual way here: a backup copied over the file while its -wal was live; the
            # old log's frames no longer fit the restored pages.
            return DatabaseProblem(
                f"{where} does not match its {path.name}-wal/-shm files (was a backup copied "
                f"over it while it was in use?): stop every teamaccess using it, move "
                f"{path.name}-wal and {path.name}-shm away, then copy the backup in again "
                "(restore while nobody has the database open)."
            )
        return DatabaseProblem(
            f"{where} is not a usable teamaccess database (not SQLite, or damaged): "
            "point --db / TEAMACCESS_DB at another file or restore a backup."
        )
    if "readonly database" in message or "read-only" in message:
        blocking = _unwritable_sidecars(path) if path is not None else []
        if blocking:
            owner, names = blocking[0][1], " ".join(name for name, _ in blocking)
            return DatabaseProblem(
                f"{names} beside {where} belong to {owner} and are read-only for you: ask "
                f"{owner} to run 'chmod g+rw {names}' there, or remove them when nobody has "
                "the database open."
            )
        return DatabaseProblem(
            f"{where} is read-only for you: ask its owner for write access (group rw) "
            "or use another file with --db."
        )
    if "disk is full" in message or "disk full" in message or "no space left" in message:
        return DatabaseProblem(
            f"The disk holding {where} is full: nothing was changed; free some space and retry."
        )
    if "unable to open database" in message:
        return DatabaseProblem(
            f"Can't open {where}: check that its folder exists and that you may write to it."
        )
    if "database is locked" in message or "database is busy" in message:
        return Busy(BUSY_MESSAGE)
    if isinstance(err, OperationalError) and "connection" in message:
        return DatabaseProblem(f"Can't reach the database at {where}: {message.splitlines()[0]}")
    return None


def _sidecars(path: Path) -> list[Path]:
    """The -wal and -shm files beside a database that exist."""
    return [side for side in (Path(f"{path}-wal"), Path(f"{path}-shm")) if side.exists()]


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _unwritable_sidecars(path: Path) -> list[tuple[str, str]]:
    """(name, owner) of the -wal/-shm files that block us from writing a file we may write."""
    if not os.access(path, os.W_OK):
        return []  # the file itself is read-only for us: that is the message to give
    return [(side.name, _owner_name(side.stat().st_uid)) for side in _sidecars(path)
            if not os.access(side, os.W_OK)]


def _unexpected(err: BaseException, where: str) -> DatabaseProblem:
    """A one-line message for a database error nobody foresaw: never a traceback for a person."""
    first = str(getattr(err, "orig", None) or err).strip().splitlines()
    detail = first[0] if first else type(err).__name__
    return DatabaseProblem(
        f"The database {where} refused the operation ({detail}): nothing was changed."
    )


def _is_retryable(err: BaseException) -> bool:
    orig = getattr(err, "orig", None)
    if isinstance(orig, sqlite3.OperationalError):
        msg = str(orig).lower()
        return "locked" in msg or "busy" in msg
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in ("40001", "40P01")


def _upgrade(conn, version: int) -> None:
    """Bring a database of an older schema ``version`` up to SCHEMA_VERSION.

    Runs inside the caller's transaction (DDL is transactional on SQLite and PostgreSQL), so an
    upgrade that fails half way leaves the file as it was; the PostgreSQL advisory lock or
    SQLite's write lock keeps a second first-open from upgrading twice.
    """
    if version < 2:  # SSH keys, and who acted over SSH in the audit log
        conn.exec_driver_sql("ALTER TABLE audit_event ADD COLUMN actor_key VARCHAR(64)")
        conn.exec_driver_sql("ALTER TABLE audit_event ADD COLUMN actor_peer VARCHAR(64)")
        models.SshKey.__table__.create(conn)
    if version < 3:  # who authorized a login's binding (NULL: the owner, as before)
        conn.exec_driver_sql("ALTER TABLE account ADD COLUMN os_login_by VARCHAR(254)")
    if version < 4:  # temporary grants and access requests (NULL: a grant that never ends)
        expires_at = models.Grant.__table__.c.expires_at.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE "grant" ADD COLUMN expires_at {expires_at}')
        next(i for i in models.Grant.__table__.indexes if i.name == "ix_grant_expires_at").create(conn)
        models.AccessRequest.__table__.create(conn)
    conn.execute(
        text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
        {"v": str(models.SCHEMA_VERSION)},
    )


def _open_files() -> dict[int, tuple[int, int, int | None]]:
    """This process's open descriptors: fd -> (st_dev, st_ino, owner uid or None).

    The uid is None for what is not a database main file (not a regular file, or SQLite's
    -wal/-shm/-journal beside it). Empty where there is no /proc.
    """
    found: dict[int, tuple[int, int, int | None]] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        link = f"/proc/self/fd/{name}"
        try:
            info = os.stat(link)
            target = os.readlink(link)
        except OSError:  # closed meanwhile (listdir's own descriptor, another thread's)
            continue
        main = stat.S_ISREG(info.st_mode) and not target.endswith(("-wal", "-shm", "-journal"))
        found[int(name)] = (info.st_dev, info.st_ino, info.st_uid if main else None)
    return found


def _share_sidecars(path: Path) -> None:
    """Let the database's owner write the -wal/-shm files a read-only reader just created.

    SQLite makes them with the database file's mode and the reader as owner, so a reader of a
    0640 database leaves 0640 files the owner can't write, and the owner's next write fails.
    Group write fixes that in a shared (setgid) folder, where the owner is in the file's group;
    it gives away nothing: whoever may create files in that folder could have written them.
    """
    me = os.geteuid()
    for side in _sidecars(path):
        try:
            info = side.stat()
            if info.st_uid == me:
                os.chmod(side, stat.S_IMODE(info.st_mode) | 0o660)
        except OSError:
            pass  # gone meanwhile (the owner checkpointed): nothing to fix


class Database:
    """One database: its engine, its transactions and a cheap way to notice others' changes."""

    def __init__(self, where: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        #: Where "now" comes from for every time-bound rule (grant expiry, request lapse): tests
        #: replace it with a clock they move by hand, so nothing in them sleeps.
        self.clock: Callable[[], datetime] = models.utcnow
        self.url = resolve_url(where)
        _refuse_uri_filenames(self.url)
        self.path = sqlite_path(self.url)
        self.backend = make_url(self.url).get_backend_name()
        self._unsafe = os.environ.get(UNSAFE_WRITES_ENV) == "1"
        #: (st_dev, st_ino, st_uid) of the file SQLite holds open, pinned by the first connection
        self._opened: tuple[int, int, int] | None = None
        if self.path is not None:
            # Open the file a symlink points at now, and only that one: a link flipped later
            # (between a check and an open) can't redirect us, and every connection is checked
            # against the first one's file (see _pin_opened_file).
            self.path = self.path.resolve()
            self.url = "sqlite:///" + str(self.path)
            if self.path.is_dir():
                raise DatabaseProblem(
                    f"{self.path} is a folder, not a database file: give a file path, e.g. "
                    f"{self.path / 'teamaccess.db'}."
                )
            if not self.path.exists():
                if not create:
                    raise DatabaseProblem(f"No database at {self.path}: create one first.")
                try:
                    _create_private_file(self.path)
                except OSError as err:
                    raise DatabaseProblem(
                        f"Can't create {self.path}: {err.strerror}; check the folder's permissions."
                    ) from None
            self.engine = self._sqlite_engine()
        elif self.backend == "sqlite":  # in memory: one shared connection
            self.engine = self._sqlite_engine(memory=True)
        else:
            try:
                self.engine = create_engine(
                    self.url,
                    pool_pre_ping=True,
                    isolation_level="READ COMMITTED" if self._unsafe else "SERIALIZABLE",
                )
            except Exception as err:  # a URL for a driver that isn't installed, say
                raise DatabaseProblem(
                    f"Can't use the database URL {make_url(self.url).render_as_string()}: "
                    f"{str(err).splitlines()[0]}"
                ) from None
        self._writer = self.engine.execution_options(teamaccess_write=True)
        # Reads want one consistent snapshot, not SERIALIZABLE's right to abort them (40001):
        # on PostgreSQL a REPEATABLE READ snapshot never fails for a read-only transaction.
        self._reader = (
            self.engine.execution_options(isolation_level="REPEATABLE READ")
            if self.backend == "postgresql" else self.engine
        )
        self._watch: sqlite3.Connection | None = None
        # Polling runs in a watcher thread; closing the connection under a running statement
        # crashes the sqlite3 module (a dashboard quitting mid-poll), so the two take turns.
        self._watch_lock = threading.Lock()
        #: PostgreSQL: the audit trigger announcing changes is in place (store/watch.py).
        self.notify_ready = False
        self._listener = None  # the one LISTEN connection, made by the first watcher
        try:
            self._ensure_schema()
        except BaseException:
            self.engine.dispose()  # a refused database keeps no connection open
            raise

    # -- engines ---------------------------------------------------------------------------

    def _sqlite_engine(self, memory: bool = False) -> Engine:
        kwargs: dict = {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(self.url, **kwargs)

        if not memory:
            @event.listens_for(engine, "do_connect")
            def _open(dialect, _record, cargs, cparams):  # pragma: no cover - every test
                before = _open_files()
                conn = dialect.loaded_dbapi.connect(*cargs, **cparams)
                try:
                    self._pin_opened_file(conn, before)
                except BaseException:
                    conn.close()
                    raise
                return conn

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            # Let SQLAlchemy's "begin" event, not the driver, start transactions.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA synchronous=FULL")
            finally:
                cur.close()

        # A write takes SQLite's write lock before it reads anything, so a second writer waits
        # here (busy_timeout) instead of reading a snapshot that is stale by the time it writes.
        write_begin = "BEGIN" if self._unsafe else "BEGIN IMMEDIATE"

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # pragma: no cover - exercised by every test
            write = conn.get_execution_options().get("teamaccess_write")
            conn.exec_driver_sql(write_begin if write else "BEGIN")

        return engine

    def _pin_opened_file(self, conn: sqlite3.Connection, before: dict[int, tuple[int, int]]) -> None:
        """Remember which file the first connection opened; refuse a connection to any other.

        Ownership (``--as``) is decided on this file, the one SQLite holds, not on whatever the
        path names at the moment of a check: someone who can rename in the folder, or flip a
        symlink or a folder of theirs on the way, could otherwise have the check look at one
        file and SQLite open another.
        """
        assert self.path is not None
        new = [ident for fd, ident in _open_files().items()
               if before.get(fd) != ident and ident[2] is not None]
        found = {ident[:2] for ident in new}
        if len(found) == 1:
            dev, ino = found.pop()
            uid = next(ident[2] for ident in new if ident[:2] == (dev, ino))
        else:  # no /proc, or SQLite reused a descriptor it already had open for this file
            now = self.path.stat()
            if found and (now.st_dev, now.st_ino) not in found:
                raise DatabaseProblem(
                    f"{self.path} changed while it was being opened: try again, and check who "
                    "may rename files in its folder."
                )
            dev, ino, uid = now.st_dev, now.st_ino, now.st_uid
        if self._opened is None:
            self._opened = (dev, ino, uid)
        elif self._opened[:2] != (dev, ino):
            raise DatabaseProblem(
                f"{self.path} was replaced by another file while in use: nothing was changed; "
                "open it again, and check who may rename files in its folder."
            )

    def opened_file_owner(self) -> int | None:
        """The uid owning the file SQLite holds, or None (PostgreSQL, memory, or replaced).

        The file at the path is checked against the one the connections opened: if someone
        swapped it since, nobody owns "the database" for the purpose of ``--as``.
        """
        if self._opened is None or self.path is None:
            return None
        try:
            now = os.stat(self.path)
        except OSError:
            return None
        if (now.st_dev, now.st_ino) != self._opened[:2]:
            return None
        return now.st_uid

    def read_only_for_us(self) -> bool:
        """Whether this process may not write the database file (mode bits, not a guess)."""
        return self.path is not None and not os.access(self.path, os.W_OK)

    # -- schema ------------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        self.read_only = False
        try:
            row = self._retrying(self._create_or_read_version)
        except DatabaseProblem as problem:
            if "read-only" not in problem.message:
                raise
            try:  # a read-only database can still be read
                row = self._read_version()
            except DBAPIError as again:
                raise _translate(again, self.url) or problem from None
            self.read_only = True
        try:
            version = int(row[0]) if row else 0
        except (TypeError, ValueError):
            raise DatabaseProblem(
                f"{self._where} has a damaged schema_version ({str(row[0])[:40]!r}, not a "
                "number): restore a backup, or point --db / TEAMACCESS_DB at another file."
            ) from None
        if version > models.SCHEMA_VERSION:
            raise DatabaseProblem(
                f"{self._where} has schema version {version}, newer than this teamaccess "
                f"understands ({models.SCHEMA_VERSION}): upgrade teamaccess, or use another "
                "database with --db."
            )
        if self.read_only and 1 <= version < models.SCHEMA_VERSION:
            raise DatabaseProblem(
                f"{self._where} has schema version {version} and is read-only for you: its owner "
                "must open it once with this teamaccess to upgrade it (to "
                f"{models.SCHEMA_VERSION}), or use an older teamaccess."
            )
        if version < 1:
            raise DatabaseProblem(
                f"{self._where} is not a teamaccess database: "
                "point --db / TEAMACCESS_DB at another file."
            )
        if self.path is not None and self.read_only_for_us():
            # In rollback-journal mode SQLite lets a read-only file take a write lock, so the
            # attempt above succeeded; switching it to WAL (a write) would then fail.
            self.read_only = True
        if self.path is not None and not self.read_only:
            self._use_wal()
        if self.read_only:
            _share_sidecars(self.path)  # the read above may have created them

    def _use_wal(self) -> None:
        # Only now that the file is known to be ours: the journal mode is written into the file,
        # and someone else's SQLite file must come out of a failed open untouched.
        # Leaving rollback-journal mode needs the file to itself for a moment: several first
        # opens of an older file at once (each upgrading it in turn) can outwait one busy
        # timeout on a loaded machine, so a busy answer is tried again, as writes are.
        raw = self.engine.raw_connection()
        try:
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    raw.driver_connection.execute("PRAGMA journal_mode=WAL")
                    return
                except sqlite3.OperationalError as err:
                    busy = any(word in str(err).lower() for word in ("locked", "busy"))
                    if attempt == WRITE_ATTEMPTS or not busy:
                        raise
                    time.sleep(0.05 * attempt)
        except sqlite3.Error as err:
            raise _translate(err, self.url) or _unexpected(err, self._where) from None
        finally:
            raw.close()

    def _create_or_read_version(self):
        writer = self._writer
        if self.backend == "postgresql":
            # READ COMMITTED here: a SERIALIZABLE snapshot is taken before the lock below is
            # granted, so a second first-open would still see no tables and create them again.
            writer = writer.execution_options(isolation_level="READ COMMITTED")
        with writer.begin() as conn:
            if self.backend == "postgresql":
                # Two first opens of an empty PostgreSQL database must not both create tables.
                conn.execute(text("SELECT pg_advisory_xact_lock(7250173)"))
            tables = inspect(conn).get_table_names()
            if "meta" in tables:
                if self.backend == "postgresql":
                    self.notify_ready = install_notify(conn)  # databases made before it too
                row = conn.execute(
                    text("SELECT value FROM meta WHERE key = 'schema_version'")
                ).first()
                # A damaged (non-numeric) version is left for _ensure_schema to name.
                if row is not None and str(row[0]).isdigit() and (
                    1 <= int(row[0]) < models.SCHEMA_VERSION
                ):
                    _upgrade(conn, int(row[0]))
                    return (str(models.SCHEMA_VERSION),)
                return row
            if tables:  # someone else's database: never write into it
                return None
            SQLModel.metadata.create_all(conn)
            for stmt in _SQLITE_TRIGGERS if self.backend == "sqlite" else _PG_TRIGGERS:
                conn.exec_driver_sql(stmt)
            if self.backend == "postgresql":
                self.notify_ready = install_notify(conn)
            conn.execute(
                text("INSERT INTO meta (key, value) VALUES ('schema_version', :v)"),
                {"v": str(models.SCHEMA_VERSION)},
            )
            return (str(models.SCHEMA_VERSION),)

    def _read_version(self):
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).first()

    # -- transactions ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time by this database's clock (aware UTC): what expiry and lapse use."""
        return self.clock()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session on one consistent snapshot."""
        session = Session(self._reader, expire_on_commit=False)
        try:
            with session.begin():
                yield session
        except DBAPIError as err:
            raise _translate(err, self.url) or _unexpected(err, self._where) from None
        finally:
            session.close()

    def write(self, body: Callable[[Session], T]) -> T:
        """Run ``body`` in one write transaction, retrying the whole of it if the database is busy.

        ``body`` may run more than once, so it must not have effects outside the session.
        Raises Busy if other writers hold the database for too long, DatabaseProblem if the
        database can't take the change; either way nothing was written.
        """

        def attempt() -> T:
            session = Session(self._writer, expire_on_commit=False)
            try:
                with session.begin():
                    return body(session)
            finally:
                session.close()

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` (one whole transaction), again after a pause while the database is busy."""
        delay = 0.02
        for number in range(1, WRITE_ATTEMPTS + 1):
            try:
                return attempt()
            except DBAPIError as err:
                if _is_retryable(err):
                    if number < WRITE_ATTEMPTS:
                        time.sleep(delay * (1 + random.random()))
                        delay *= 2
                        continue
                    raise Busy(BUSY_MESSAGE) from None
                raise _translate(err, self.url) or _unexpected(err, self._where) from None
        raise Busy(BUSY_MESSAGE)  # pragma: no cover - the loop always returns or raises

    @property
    def _where(self) -> str:
        """The database named for a person: its file, or its URL without the password."""
        return str(self.path) if self.path is not None else make_url(self.url).render_as_string()

    # -- watching ------------------------------------------------------------------------------

    def watcher(self, teams: Iterable[str] | None = None, email: str | None = None, *,
                interval: float = 0.5) -> Watcher:
        """A :class:`~teamaccess.store.watch.Watcher` of changes to ``teams`` (None: all).

        On PostgreSQL changes are announced (LISTEN/NOTIFY, no polling); on SQLite the change
        token is polled every ``interval`` seconds. ``email`` is the acting account.
        """
        return Watcher(self, teams, email, interval=interval)

    def change_token(self) -> int:
        """A number that changes whenever anyone commits a change; cheap enough to poll.

        On PostgreSQL its cost grows with the audit log: watch with :meth:`watcher` instead.
        """
        if self.path is not None:
            with self._watch_lock:
                if self._watch is None:
                    # One dedicated connection: data_version moves when *another* connection
                    # commits.
                    self._watch = sqlite3.connect(self.path, check_same_thread=False,
                                                  isolation_level=None)
                return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
        # Every change writes one audit event and the log is append-only, so its size grows with
        # each commit. (max(id) would not do: ids are handed out before commit, so a transaction
        # that took a lower id and committed later would go unnoticed.)
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one())

    def backup(self, target: str | os.PathLike[str]) -> Path:
        """Write a consistent copy of a live SQLite database to ``target`` (SQLite's backup API).

        Other processes may keep writing meanwhile: the copy is one committed snapshot. The copy
        is built beside the target and only then given its name, so a failure (a full disk, say)
        leaves no partial file behind. Returns the path written.
        """
        if self.path is None:
            raise DatabaseProblem(
                "backup copies SQLite files; for PostgreSQL use pg_dump on the server."
            )
        dest = Path(target).expanduser().absolute()
        if dest.exists() or dest.is_symlink():
            raise DatabaseProblem(f"{dest} exists already: choose a new path for the backup.")
        if not dest.parent.is_dir():
            raise DatabaseProblem(f"Can't write {dest}: the folder {dest.parent} does not exist.")
        partial: Path | None = None
        try:
            fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
            partial = Path(name)
            os.close(fd)
            os.chmod(partial, 0o660)
            source = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                source.backup(copy)
                # One self-contained file: a backup should not need a -wal file beside it.
                copy.execute("PRAGMA journal_mode=DELETE")
                if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise DatabaseProblem(
                        f"The copy of {self.path} failed its check: nothing was written to "
                        f"{dest}; run 'PRAGMA integrity_check' on the database."
                    )
            finally:
                copy.close()
                source.close()
            os.link(partial, dest)  # unlike a rename, never replaces a file that appeared meanwhile
        except FileExistsError:
            raise DatabaseProblem(
                f"{dest} exists already: choose a new path for the backup."
            ) from None
        except OSError as err:
            raise DatabaseProblem(
                f"Can't write the backup {dest}: {err.strerror or err}; nothing was written."
            ) from None
        except sqlite3.Error as err:
            if "full" in str(err).lower():  # the copy's disk, not the database's
                raise DatabaseProblem(
                    f"The disk holding {dest.parent} is full: no backup was written; free some "
                    "space or choose another place."
                ) from None
            problem = _translate(err, self.url) or _unexpected(err, self._where)
            raise DatabaseProblem(f"Backup to {dest} failed: {problem.message}") from None
        finally:
            if partial is not None:
                partial.unlink(missing_ok=True)
        return dest

    def close(self) -> None:
        """Release every connection."""
        if self._listener is not None:
            if self._listener.pid == os.getpid():  # a forked child leaves its parent's alone
                self._listener.stop()
            self._listener = None
        if self.path is not None and self.read_only_for_us():
            _share_sidecars(self.path)
        with self._watch_lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None
        self.engine.dispose()
