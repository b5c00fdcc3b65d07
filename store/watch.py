"""Change watching: a face learns that someone committed a change to the teams it shows.

Every change, and every refused attempt at one, writes exactly one audit event in its own
transaction, so an audit event committed is the signal that something changed.

- PostgreSQL announces it: a trigger on ``audit_event`` calls ``pg_notify`` with the event's team,
  action, actor and target, delivered at commit (never for a rolled-back attempt). One listening
  connection per :class:`~teamaccess.store.db.Database` (a dashboard process has one) receives
  the notifications in a thread and wakes only the watchers they concern: waiting costs the
  server nothing, whatever the size of the log or the number of teams.
- SQLite has no messages between processes, but ``PRAGMA data_version`` costs the same whatever
  the file holds; when it moves, the audit events newer than the last one seen say which teams
  changed (SQLite's writers take turns, so ids grow in commit order there).

A :class:`Watcher` is what a face holds::

    watcher = db.watcher(teams=["acme"], email="ada@acme.com")
    while running:
        if watcher.wait(timeout=1.0):  # True: a change concerns you; False: nothing yet
            reload()
    watcher.close()

This module never imports textual or rich; psycopg only when watching PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import select
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

#: Actions whose event names one team but change another as well: an app transferred from team
#: A to team B is logged under B, yet it leaves A's list. Every watcher wakes for these.
CROSS_TEAM_ACTIONS = frozenset({"app_transfer.create"})

#: The trigger's name (on ``audit_event``) and its function, installed by :func:`install_notify`.
NOTIFY_TRIGGER = "audit_event_notify"

# The channel is per schema (md5 keeps it a valid identifier of fixed length), so two teamaccess
# databases in two schemas of one PostgreSQL database don't wake each other. Any role of the
# database may LISTEN, table rights or not, so the people an event names travel as digests of
# their emails, enough to recognise oneself (see person_digest). json_build_object escapes what
# the columns hold; the payload stays far under NOTIFY's 8000-byte limit.
_NOTIFY_BODY = (
    " BEGIN PERFORM pg_notify('teamaccess_' || md5(TG_TABLE_SCHEMA), json_build_object("
    "'team', NEW.team_id, 'action', NEW.action, 'actor', md5(lower(NEW.actor_email)), "
    "'target', md5(lower(NEW.target_email)))::text); RETURN NULL; END "
)
_PG_NOTIFY_SQL = (
    f"CREATE OR REPLACE FUNCTION teamaccess_audit_notify() RETURNS trigger AS $${_NOTIFY_BODY}$$ "
    "LANGUAGE plpgsql",
    f"DROP TRIGGER IF EXISTS {NOTIFY_TRIGGER} ON audit_event",
    f"CREATE TRIGGER {NOTIFY_TRIGGER} AFTER INSERT ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION teamaccess_audit_notify()",
)

#: The channel of the ``audit_event`` table the connection's search path finds.
_CHANNEL_SQL = (
    "SELECT 'teamaccess_' || md5(n.nspname) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'audit_event'::regclass"
)

#: How long a new watcher waits for the first LISTEN before it returns (seconds).
LISTEN_WAIT = 2.0
#: Reconnection back-off after a dropped listening connection: first and longest pause (seconds).
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 5.0


def install_notify(conn: Connection) -> bool:
    """Install or update the notify trigger on PostgreSQL; True when one is in place.

    Runs inside the transaction that creates or opens the schema, so databases made by an
    older teamaccess get it on their next open (and a later teamaccess may update it). Only the
    table's owner may: for anyone else a missing trigger is reported as False (their watchers
    then poll, as before) and the open goes on.
    """
    # In place and current (a later teamaccess may announce more): nothing to write.
    exists, current = conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'audit_event'::regclass "
        "AND tgname = :name), (SELECT prosrc FROM pg_proc "
        "WHERE oid = to_regproc('teamaccess_audit_notify')) = :body"
    ), {"name": NOTIFY_TRIGGER, "body": _NOTIFY_BODY}).one()
    if exists and current:
        return True
    try:
        with conn.begin_nested():
            for stmt in _PG_NOTIFY_SQL:
                conn.exec_driver_sql(stmt)
    except DBAPIError as err:
        log.warning("change notifications not brought up to date until the database's owner "
                    "opens it: %s", str(getattr(err, "orig", err)).splitlines()[0])
        # An older trigger still announces changes (a payload it can't read wakes everyone).
        return bool(exists)
    return True


def person_digest(email: str | None) -> str | None:
    """How a notification names a person: the md5 of the lower-cased email, as the trigger does."""
    return None if email is None else hashlib.md5(email.lower().encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    """One committed audit event, as much of it as deciding whom it concerns needs.

    ``actor`` and ``target`` are :func:`person_digest` values, never the emails themselves.
    """

    team_id: int | None
    action: str
    actor: str | None
    target: str | None

    @classmethod
    def from_row(cls, team_id: int | None, action: str, actor_email: str | None,
                 target_email: str | None) -> Change:
        """The change an audit row records (SQLite reads the rows themselves)."""
        return cls(team_id, action, person_digest(actor_email), person_digest(target_email))

    @classmethod
    def from_payload(cls, payload: str) -> Change | None:
        """The change a notification announces; None if its payload is not ours to read."""
        try:
            data = json.loads(payload)
            team = data.get("team")
            return cls(int(team) if team is not None else None, str(data.get("action") or ""),
                       data.get("actor"), data.get("target"))
        except (ValueError, TypeError, AttributeError):
            return None


def concerns(change: Change | None, team_ids: frozenset[int] | None, email: str | None) -> bool:
    """Whether a watcher of ``team_ids`` (None: every team) acting as ``email`` should reload.

    Conservative where the event can't say: a change with no team (an account's MFA, a
    personal app) may show on any team's roster, and a transfer changes two teams' lists.
    A change to another team still matters to the person it names (their list of teams).
    """
    if change is None or team_ids is None:
        return True
    if change.team_id is None or change.team_id in team_ids:
        return True
    if change.action in CROSS_TEAM_ACTIONS:
        return True
    if email is None:
        return False
    return person_digest(email) in (change.actor, change.target)


class Watcher:
    """Wakes its holder when a change that concerns the teams it follows is committed.

    ``teams`` are team names (None: every team); ``email`` is the acting account, whose own
    changes in other teams (being added to one, say) also wake it. Thread-safe: :meth:`follow`
    and :meth:`close` may be called from any thread while another waits.
    """

    def __init__(self, db: Database, teams: Iterable[str] | None = None, email: str | None = None,
                 *, interval: float = 0.5) -> None:
        self.db = db
        self.interval = interval
        self._lock = threading.Lock()
        self._woken = threading.Event()
        self._closed = False
        self._names: tuple[str, ...] | None = None
        self._ids: frozenset[int] | None = None  # None: not known yet, so everything wakes it
        self._email = email
        self._resolve_needed = False
        self.follow(teams, email)
        self._listener: _Listener | None = None
        self._poll = None
        self._next_poll = 0.0
        if db.backend == "postgresql" and db.notify_ready:
            self._listener = _listener_of(db)
            self._listener.add(self)
        else:
            self._poll = _Poller(db)

    # -- what it follows --------------------------------------------------------------------

    def follow(self, teams: Iterable[str] | None, email: str | None = None) -> None:
        """Follow these teams (by name; None: every team) from now on."""
        names = None if teams is None else tuple(sorted({t for t in teams if t}))
        with self._lock:
            self._email = email if email is not None else self._email
            if names != self._names:
                self._names, self._ids = names, None
                self._resolve_needed = names is not None

    def _resolve(self) -> None:
        """Turn the followed names into team ids (ids survive a rename; events carry ids)."""
        with self._lock:
            names, needed = self._names, self._resolve_needed
            self._resolve_needed = False
        if not needed or names is None:
            return
        try:
            with self.db.read() as s:
                rows = s.execute(
                    text("SELECT id FROM team WHERE name IN :names").bindparams(
                        bindparam("names", expanding=True)), {"names": list(names)}
                ).all() if names else []
        except Exception:  # noqa: BLE001 - a busy database: wake on everything meanwhile
            rows = None
        with self._lock:
            if self._names != names:
                return  # followed something else meanwhile: that one resolves next
            if rows is None or len(rows) < len(names):
                self._resolve_needed = True  # a team not made yet (or not readable): try again
                self._ids = None
            else:
                self._ids = frozenset(int(r[0]) for r in rows)

    def concerns(self, change: Change | None) -> bool:
        """Whether ``change`` should wake this watcher."""
        self._resolve()  # only after a follow(): at most one small query, on the notice's thread
        with self._lock:
            return concerns(change, self._ids, self._email)

    # -- waiting ------------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        """True when changes are announced to it (PostgreSQL's LISTEN), not polled."""
        return self._listener is not None and self._listener.listening.is_set()

    def wake(self) -> None:
        """Make the current or next :meth:`wait` return True (the listener calls this)."""
        self._woken.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a change concerns this watcher (True) or ``timeout`` passes (False).

        Also True once after a lost listening connection is back: whatever was committed
        meanwhile can't be known, so the holder should reload. False at once after close.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._resolve()
        if self._poll is not None:
            return self._wait_polling(deadline)
        while not self._closed:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._woken.wait(remaining):
                return False
            self._woken.clear()
            if not self._closed:
                return True
        return False

    def _wait_polling(self, deadline: float | None) -> bool:
        assert self._poll is not None
        while not self._closed:
            now = time.monotonic()
            if now >= self._next_poll:  # one poll per interval, however the waits are cut
                self._next_poll = now + self.interval
                try:
                    if self._poll.changed(self):
                        return True
                except Exception:  # noqa: BLE001 - a busy or vanished file: try again next time
                    log.debug("change poll failed", exc_info=True)
            until = self._next_poll if deadline is None else min(self._next_poll, deadline)
            if deadline is not None and now >= deadline:
                return False
            if self._woken.wait(max(0.0, until - time.monotonic())):
                self._woken.clear()
                return not self._closed
        return False

    def close(self) -> None:
        """Stop watching; a :meth:`wait` in progress returns False."""
        self._closed = True
        self._woken.set()
        if self._listener is not None:
            self._listener.remove(self)


class _Poller:
    """SQLite (and PostgreSQL without the trigger): a constant-cost token, then what changed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.token = db.change_token()
        # On SQLite ids grow in commit order (one writer at a time), so "newer than the last
        # seen id" is exactly "committed since". On PostgreSQL they don't: no filtering there.
        self.last_id = self._max_id() if db.backend == "sqlite" else None

    def _max_id(self) -> int:
        with self.db.read() as s:
            return int(s.execute(text("SELECT coalesce(max(id), 0) FROM audit_event")).scalar_one())

    def changed(self, watcher: Watcher) -> bool:
        token = self.db.change_token()
        if token == self.token:
            return False
        self.token = token
        if self.last_id is None:
            return True
        found_any, wake = False, False
        with self.db.read() as s:
            rows = s.execute(text(
                "SELECT id, team_id, action, actor_email, target_email FROM audit_event "
                "WHERE id > :last ORDER BY id"), {"last": self.last_id}).all()
        for row in rows:
            found_any = True
            self.last_id = max(self.last_id, int(row[0]))
            if not wake and watcher.concerns(Change.from_row(row[1], row[2], row[3], row[4])):
                wake = True
        # A commit with no audit event was not made by teamaccess: reload to be safe.
        return wake or not found_any


# -- PostgreSQL: one listening connection per Database ----------------------------------------------


_listeners_lock = threading.Lock()


def _listener_of(db: Database) -> _Listener:
    with _listeners_lock:
        listener = getattr(db, "_listener", None)
        # A forked child (a warm server's session) inherits the parent's listener object but
        # not its thread, and must never read the parent's socket: it listens on its own.
        if listener is None or listener.stopped or listener.pid != os.getpid():
            listener = _Listener(_pg_connector(db))
            db._listener = listener  # closed by Database.close()
            listener.start()
    listener.listening.wait(LISTEN_WAIT)
    if not listener.listening.is_set():
        # Not listening yet: whatever commits until then would be missed, so the first
        # successful LISTEN wakes every watcher.
        listener.missed = True
    return listener


def _pg_connector(db: Database) -> Callable[[], Any]:
    """A function opening a fresh autocommit psycopg connection to ``db`` (not from the pool)."""
    import psycopg

    engine = db.engine
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    params = dict(cparams)
    params.setdefault("application_name", "teamaccess watcher")
    # A peer that vanished without closing (a dropped network) shows up within a minute.
    for key, value in (("keepalives", 1), ("keepalives_idle", 30),
                       ("keepalives_interval", 10), ("keepalives_count", 3)):
        params.setdefault(key, value)

    def connect():
        return psycopg.connect(*cargs, autocommit=True, connect_timeout=10, **params)

    return connect


class _Listener:
    """A thread holding one ``LISTEN`` connection and waking the watchers each notice concerns."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._watchers: set[Watcher] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self.listening = threading.Event()
        self.stopped = False
        #: A watcher gave up waiting for the first LISTEN: wake all once it is up.
        self.missed = False
        #: Connections made so far (the first, then one per recovery): for tests and benchmarks.
        self.connections = 0
        self.backend_pid: int | None = None
        self.pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="teamaccess-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.add(watcher)

    def remove(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def _wake_all(self) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.wake()

    def _deliver(self, payload: str) -> None:
        change = Change.from_payload(payload)
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            if watcher.concerns(change):
                watcher.wake()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as err:  # noqa: BLE001 - unreachable: back off and try again
                failures += 1
                self._back_off(failures, err)
                continue
            up_since = time.monotonic()
            try:
                channel = conn.execute(_CHANNEL_SQL).fetchone()[0]
                conn.execute(f'LISTEN "{channel}"')  # md5 hex: nothing to quote
                self.backend_pid = conn.info.backend_pid
                self.connections += 1
                # Listening again after a loss (or after a watcher gave up waiting): anything
                # committed while nobody listened can't be known, so every watcher reloads once.
                # The LISTEN is in place first, so nothing after this moment is missed either.
                if self.connections > 1 or failures or self.missed:
                    self._wake_all()
                self.missed = False
                up_since = time.monotonic()
                self.listening.set()
                self._pump(conn)
                lost: BaseException | None = None
            except Exception as err:  # noqa: BLE001 - the connection dropped: listen again
                lost = err
            finally:
                self.listening.clear()
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - already broken
                    pass
            if lost is not None and not self._stop.is_set():
                if time.monotonic() - up_since > 10:
                    failures = 0  # it had been fine a while: a fresh loss, not a repeated one
                failures += 1
                self._back_off(failures, lost)

    def _back_off(self, failures: int, err: BaseException) -> None:
        pause = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1)) * (0.5 + random.random())
        log.info("change listener lost its connection (%s); again in %.2f s",
                 str(err).splitlines()[0] if str(err) else type(err).__name__, pause)
        self._stop.wait(pause)

    def _pump(self, conn: Any) -> None:
        """Hand over notices as they arrive, without a query, until stopped or disconnected."""
        import psycopg
        from psycopg import pq

        pgconn = conn.pgconn
        sock = pgconn.socket
        # poll(), not select(): a process with many files open may get a socket above 1023.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            ready = {fd for fd, _event in poller.poll()}
            if self._wake_r in ready:
                os.read(self._wake_r, 512)
                continue
            pgconn.consume_input()  # raises once the server has closed the connection
            while (notice := pgconn.notifies()) is not None:
                self._deliver(notice.extra.decode("utf-8", "replace"))
            if pgconn.status != pq.ConnStatus.OK:
                raise psycopg.OperationalError("the listening connection was closed")

    def stop(self) -> None:
        """Stop listening and close the connection (waits briefly for the thread)."""
        self.stopped = True
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_all()
