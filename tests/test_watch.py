"""Change watching (store/watch.py): a change committed anywhere wakes the watchers it concerns.

On PostgreSQL the change is announced (a trigger's NOTIFY, one LISTEN connection per process);
on SQLite the constant-cost change token is polled. Both are run here, PostgreSQL on the real
throwaway server of the test session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from teamaccess.store import ops, queries, watch
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.watch import NOTIFY_TRIGGER, Change, concerns, person_digest

ROOT = Path(__file__).resolve().parent.parent
ADA = ops.Actor(DEMO_ADMIN, "ada")
OTHER_TEAM = "other-team"
OUTSIDER = ops.Actor("olga@elsewhere.io", "olga")
#: Generous: the machine is shared, and a wait that succeeds returns at once anyway.
WAKE = 15.0
QUIET = 0.6

# This schema's audit_event only: CI runs every test database as a schema of one PostgreSQL
# database, where other tests' triggers of the same name stand beside ours.
TRIGGERS_HERE = (
    "SELECT count(*) FROM pg_trigger WHERE tgname = :n AND tgrelid = 'audit_event'::regclass"
)


def _in_another_process(url: str, body: str) -> None:
    """Run store operations in a fresh Python process on the database at ``url``."""
    script = textwrap.dedent(f"""
        from teamaccess.store import ops
        from teamaccess.store.db import Database
        db = Database({url!r})
        ada = ops.Actor({DEMO_ADMIN!r}, "ada")
        olga = ops.Actor({OUTSIDER.email!r}, "olga")
        try:
    """) + textwrap.indent(textwrap.dedent(body), "    ") + "\nfinally:\n    db.close()\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def two_teams(any_demo_db):
    """The demo team, and a second team that ada has nothing to do with."""
    ops.create_team(any_demo_db, OUTSIDER, OTHER_TEAM)
    return any_demo_db


def _settled(watcher) -> None:
    """Let a watcher swallow whatever woke it before the test's own change."""
    while watcher.wait(timeout=QUIET):
        pass


def test_a_change_committed_by_another_process_reaches_a_watcher(any_demo_db):
    watcher = any_demo_db.watcher([DEMO_TEAM], DEMO_ADMIN, interval=0.05)
    try:
        assert watcher.wait(timeout=QUIET) is False  # nothing happened yet
        started = time.monotonic()
        _in_another_process(any_demo_db.url, "ops.lock_app(db, ada, 'test')")
        assert watcher.wait(timeout=WAKE) is True
        assert time.monotonic() - started < WAKE
        assert watcher.wait(timeout=QUIET) is False  # one change, one wake
        if any_demo_db.backend == "postgresql":
            assert watcher.listening  # announced, not polled
    finally:
        watcher.close()


def test_a_change_in_another_team_does_not_wake_it(two_teams):
    db = two_teams
    watcher = db.watcher([DEMO_TEAM], DEMO_ADMIN, interval=0.05)
    try:
        _settled(watcher)
        _in_another_process(db.url, f"""
            ops.add_member(db, olga, {OTHER_TEAM!r}, "pat@elsewhere.io", "member")
            ops.create_app(db, olga, "olga-app", {OTHER_TEAM!r})
            ops.lock_app(db, olga, "olga-app")
        """)
        assert watcher.wait(timeout=QUIET * 2) is False
        # ... while the same kind of change in its own team does, and so does one naming ada.
        _in_another_process(db.url, f"ops.add_member(db, ada, {DEMO_TEAM!r}, 'pat@elsewhere.io', 'viewer')")
        assert watcher.wait(timeout=WAKE) is True
        _settled(watcher)
        _in_another_process(db.url, f"ops.add_member(db, olga, {OTHER_TEAM!r}, {DEMO_ADMIN!r}, 'viewer')")
        assert watcher.wait(timeout=WAKE) is True  # ada's list of teams changed
    finally:
        watcher.close()


def test_a_watcher_of_every_team_wakes_for_any(two_teams):
    watcher = two_teams.watcher(None, interval=0.05)
    try:
        _settled(watcher)
        _in_another_process(two_teams.url, f"ops.create_app(db, olga, 'olga-app', {OTHER_TEAM!r})")
        assert watcher.wait(timeout=WAKE) is True
    finally:
        watcher.close()


def test_following_another_team_moves_what_wakes_it(two_teams):
    watcher = two_teams.watcher([DEMO_TEAM], "nobody@nowhere.io", interval=0.05)
    try:
        _settled(watcher)
        watcher.follow([OTHER_TEAM])
        _in_another_process(two_teams.url, f"ops.lock_app(db, ada, 'test')  # {DEMO_TEAM}")
        assert watcher.wait(timeout=QUIET * 2) is False
        _in_another_process(two_teams.url, f"ops.create_app(db, olga, 'olga-app', {OTHER_TEAM!r})")
        assert watcher.wait(timeout=WAKE) is True
    finally:
        watcher.close()


def test_close_ends_a_wait_at_once(any_demo_db):
    import threading

    watcher = any_demo_db.watcher([DEMO_TEAM], DEMO_ADMIN)
    outcome: list[bool] = []
    waiting = threading.Thread(target=lambda: outcome.append(watcher.wait(timeout=60)))
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    watcher.close()
    waiting.join(timeout=10)
    assert outcome == [False]
    assert time.monotonic() - started < 5


def test_an_sqlite_watcher_polls_once_per_interval_however_its_waits_are_cut(demo_db, monkeypatch):
    calls = []
    real = demo_db.change_token
    monkeypatch.setattr(demo_db, "change_token", lambda: calls.append(1) or real())
    watcher = demo_db.watcher([DEMO_TEAM], DEMO_ADMIN, interval=0.2)
    try:
        calls.clear()
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            assert watcher.wait(timeout=0.07) is False
        # 1 s at one poll per 0.2 s: 5 or 6 (a slow machine polls less, never more).
        assert len(calls) <= 6, len(calls)
    finally:
        watcher.close()


def test_an_unreachable_server_is_retried_with_growing_pauses():
    from teamaccess.store.watch import _Listener

    attempts: list[float] = []

    def refuse():
        attempts.append(time.monotonic())
        raise OSError("connection refused")

    listener = _Listener(refuse)
    listener.start()
    time.sleep(1.5)
    listener.stop()
    assert not listener.listening.is_set() and listener.connections == 0
    # Pauses from 0.05 s doubling (with jitter): a handful of tries, not a busy loop.
    assert 2 <= len(attempts) <= 9, len(attempts)
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[-1] > gaps[0]


# -- who is concerned: the rule itself --------------------------------------------------------------


@pytest.mark.parametrize("row,teams,email,wakes", [
    ((1, "app.lock", "x@a.io", None), frozenset({1}), "me@a.io", True),
    ((2, "app.lock", "x@a.io", None), frozenset({1}), "me@a.io", False),
    ((2, "team.member.add", "x@a.io", "ME@a.io"), frozenset({1}), "me@a.io", True),
    ((2, "team.create", "me@a.io", None), frozenset({1}), "Me@A.io", True),
    ((None, "account.update", "x@a.io", "x@a.io"), frozenset({1}), "me@a.io", True),
    ((2, "app_transfer.create", "x@a.io", "t2"), frozenset({1}), "me@a.io", True),
    ((2, "app.lock", "x@a.io", None), None, None, True),
    (None, frozenset({1}), None, True),
    ((2, "app.lock", "x@a.io", None), frozenset(), None, False),
], ids=["own team", "other team", "names me", "I did it", "no team", "transfer", "every team",
        "unreadable", "follows nothing"])
def test_which_changes_concern_a_watcher(row, teams, email, wakes):
    change = None if row is None else Change.from_row(*row)
    assert concerns(change, teams, email) is wakes


def test_a_payload_is_read_as_data_and_names_people_only_by_digest():
    change = Change.from_payload(
        '{"team" : 7, "action" : "app.lock", "actor" : "[b]x\\u001b", "target" : null}')
    assert change == Change(7, "app.lock", "[b]x\x1b", None)
    assert Change.from_payload("not json") is None
    assert Change.from_payload('{"team": "seven"}') is None
    assert Change.from_row(None, "x", "Ada@Acme.com", None).actor == person_digest("ada@acme.com")
    assert "ada" not in (person_digest("ada@acme.com") or "")


@pytest.mark.postgres
def test_a_notification_carries_no_email(pg_db):
    """Any role of the database may LISTEN: the payload names people by digest only."""
    import psycopg

    build_demo(pg_db)
    params = pg_db.engine.dialect.create_connect_args(pg_db.engine.url)[1]
    with psycopg.connect(**params, autocommit=True) as conn:
        channel = conn.execute(
            "SELECT 'teamaccess_' || md5(current_schema())").fetchone()[0]
        conn.execute(f'LISTEN "{channel}"')
        ops.add_member(pg_db, ADA, DEMO_TEAM, "secret.person@acme.com", "viewer")
        notices = list(conn.notifies(timeout=WAKE, stop_after=1))
    assert len(notices) == 1
    payload = notices[0].payload
    assert "@" not in payload and "secret" not in payload
    change = Change.from_payload(payload)
    assert change is not None and change.target == person_digest("secret.person@acme.com")
    assert concerns(change, frozenset(), "secret.person@acme.com")


# -- PostgreSQL only -----------------------------------------------------------------------------------


def _watcher_backends(db: Database) -> list[int]:
    with db.engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'teamaccess watcher' "
            "AND query ILIKE 'LISTEN%' AND pid = ANY(:pids)"),
            {"pids": [db._listener.backend_pid] if db._listener and db._listener.backend_pid else []}
        ).scalars())


@pytest.mark.postgres
def test_a_killed_listening_connection_recovers_and_reloads_once(pg_db):
    build_demo(pg_db)
    watcher = pg_db.watcher([DEMO_TEAM], DEMO_ADMIN)
    try:
        listener = pg_db._listener
        first = listener.backend_pid
        assert watcher.listening and _watcher_backends(pg_db) == [first]
        with pg_db.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
        # Committed while the listener may be down: the reload after reconnecting covers it.
        ops.lock_app(pg_db, ADA, "test")
        assert watcher.wait(timeout=WAKE) is True
        deadline = time.monotonic() + WAKE
        while not (watcher.listening and listener.connections >= 2) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listener.connections == 2 and listener.backend_pid != first
        _settled(watcher)  # the change and the reconnect may have woken it once each, no more
        # Listening again: the next change is announced as before.
        _in_another_process(pg_db.url, "ops.unlock_app(db, ada, 'test')")
        assert watcher.wait(timeout=WAKE) is True
        assert listener.connections == 2
    finally:
        watcher.close()


@pytest.mark.postgres
def test_one_listening_connection_per_database_closed_with_it(pg_url):
    import postgres_server

    url, schema = postgres_server.fresh_schema_url(pg_url)
    db = Database(url)
    try:
        build_demo(db)
        watchers = [db.watcher([DEMO_TEAM], DEMO_ADMIN) for _ in range(5)]
        assert len({id(w._listener) for w in watchers}) == 1
        pid = db._listener.backend_pid
        ops.lock_app(db, ADA, "test")
        assert all(w.wait(timeout=WAKE) for w in watchers)  # one notice reaches every watcher
        for w in watchers:
            w.close()
        db.close()
        probe = Database(url)
        try:
            with probe.engine.connect() as conn:
                deadline = time.monotonic() + WAKE
                while conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                   {"p": pid}).scalar() and time.monotonic() < deadline:
                    time.sleep(0.05)
                    conn.rollback()
                assert not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                        {"p": pid}).scalar()
        finally:
            probe.close()
    finally:
        db.close()
        postgres_server.drop_schema(pg_url, schema)


@pytest.mark.postgres
def test_a_database_made_before_the_trigger_gets_it_when_opened(pg_db):
    build_demo(pg_db)
    with pg_db.engine.begin() as conn:  # as an older teamaccess left it
        conn.execute(text(f"DROP TRIGGER {NOTIFY_TRIGGER} ON audit_event"))
    reopened = Database(pg_db.url)
    try:
        assert reopened.notify_ready
        with reopened.engine.connect() as conn:
            assert conn.execute(text(
                TRIGGERS_HERE), {"n": NOTIFY_TRIGGER}
            ).scalar() == 1
        watcher = reopened.watcher([DEMO_TEAM], DEMO_ADMIN)
        try:
            _in_another_process(pg_db.url, "ops.lock_app(db, ada, 'test')")
            assert watcher.wait(timeout=WAKE) is True and watcher.listening
        finally:
            watcher.close()
        Database(pg_db.url).close()  # opening again changes nothing: still one trigger
        with reopened.engine.connect() as conn:
            assert conn.execute(text(
                TRIGGERS_HERE), {"n": NOTIFY_TRIGGER}
            ).scalar() == 1
    finally:
        reopened.close()


@pytest.mark.postgres
def test_an_outdated_notify_function_is_brought_up_to_date_when_opened(pg_db):
    build_demo(pg_db)
    with pg_db.engine.begin() as conn:  # as an earlier teamaccess might have left it
        conn.execute(text(
            "CREATE OR REPLACE FUNCTION teamaccess_audit_notify() RETURNS trigger AS $$ BEGIN "
            "PERFORM pg_notify('teamaccess_' || md5(TG_TABLE_SCHEMA), NEW.actor_email); "
            "RETURN NULL; END $$ LANGUAGE plpgsql"))
    Database(pg_db.url).close()
    with pg_db.engine.connect() as conn:
        source = conn.execute(text(
            "SELECT prosrc FROM pg_proc WHERE oid = to_regproc('teamaccess_audit_notify')")).scalar()
        triggers = conn.execute(text(
            TRIGGERS_HERE), {"n": NOTIFY_TRIGGER}).scalar()
    assert source == watch._NOTIFY_BODY
    assert triggers == 1


@pytest.mark.postgres
def test_without_the_trigger_and_the_right_to_add_it_a_watcher_polls(pg_db, pg_url):
    """A person's login role can't add the trigger to an older database: watching still works."""
    from sqlalchemy.engine import make_url

    build_demo(pg_db)
    schema = dict(make_url(pg_db.url).query)["options"].split("=", 1)[1]
    role = f"pgn_{schema}"[:60]
    with pg_db.engine.begin() as conn:
        conn.execute(text(f"DROP TRIGGER {NOTIFY_TRIGGER} ON audit_event"))
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"'))
    as_person = make_url(pg_db.url).set(username=role).render_as_string(hide_password=False)
    person = Database(as_person)
    try:
        assert person.notify_ready is False  # refused quietly: the open itself goes on
        watcher = person.watcher([DEMO_TEAM], DEMO_ADMIN, interval=0.05)
        try:
            assert not watcher.listening
            ops.lock_app(pg_db, ADA, "test")
            assert watcher.wait(timeout=WAKE) is True
        finally:
            watcher.close()
    finally:
        person.close()
        with pg_db.engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


@pytest.mark.postgres
def test_the_dashboard_shows_a_change_from_another_process_on_postgresql(pg_db):
    import asyncio

    from teamaccess.tui.app import TeamAccessApp

    build_demo(pg_db)

    async def run() -> None:
        app = TeamAccessApp(pg_db, ADA, DEMO_TEAM, theme="textual-dark", watch=True,
                            poll_interval=60)  # a poll would come far too late: only NOTIFY
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(500):
                await pilot.pause(0.02)
                if app.settled and app.main.active_view.loaded:
                    break
            assert app.watcher is not None and app.watcher.listening

            def emails() -> list[str]:
                table = app.main.active_view.table
                cells = [table.get_row(row.key)[0] for row in table.ordered_rows]
                return [c.plain if hasattr(c, "plain") else str(c) for c in cells]

            assert "newbie@acme.com" not in emails()
            await asyncio.to_thread(
                _in_another_process, pg_db.url,
                f"ops.add_member(db, ada, {DEMO_TEAM!r}, 'newbie@acme.com', 'member')")
            for _ in range(500):
                await pilot.pause(0.02)
                if "newbie@acme.com" in emails():
                    break
            assert "newbie@acme.com" in emails()
            assert [r.email for r in queries.roster(pg_db, DEMO_ADMIN, DEMO_TEAM)
                    if r.email == "newbie@acme.com"]
            # A change in a team it doesn't show doesn't make it reload.
            reloads: list[int] = []
            original = app.data_changed
            app.data_changed = lambda: (reloads.append(1), original())  # type: ignore[method-assign]
            await asyncio.to_thread(_in_another_process, pg_db.url, f"""
                ops.create_team(db, olga, {OTHER_TEAM!r})
                ops.add_member(db, olga, {OTHER_TEAM!r}, "pat@elsewhere.io", "member")
            """)
            await pilot.pause(1.0)
            assert reloads == []
            await asyncio.to_thread(_in_another_process, pg_db.url,
                                    "ops.lock_app(db, ada, 'test')")
            for _ in range(500):
                await pilot.pause(0.02)
                if reloads:
                    break
            assert reloads  # ... while one in its own team does

    asyncio.run(run())


@pytest.mark.postgres
def test_a_forked_child_listens_on_its_own_connection(pg_db):
    """A warm server forks sessions: a child must not read its parent's listening socket."""
    import os

    build_demo(pg_db)
    parent = pg_db.watcher([DEMO_TEAM], DEMO_ADMIN)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        outcome = b"?"
        try:
            pg_db.engine.dispose(close=False)  # the parent's pooled connections stay the parent's
            mine = pg_db.watcher([DEMO_TEAM], DEMO_ADMIN)
            fresh = mine._listener is not parent._listener and mine.listening
            os.write(write_end, b"r")  # listening: the parent may commit now
            outcome = b"y" if fresh and mine.wait(timeout=WAKE) else b"n"
            pg_db.close()
        finally:
            os.write(write_end, outcome)
            os._exit(0)
    try:
        assert os.read(read_end, 1) == b"r"
        ops.lock_app(pg_db, ADA, "test")
        assert os.read(read_end, 1) == b"y"
        assert parent.wait(timeout=WAKE) is True  # the parent's listener is untouched
        assert parent.listening
    finally:
        os.waitpid(child, 0)
        os.close(read_end)
        os.close(write_end)
        parent.close()
