"""The database file: private on creation, and clear, harmless failures when it is unusable.

A damaged or foreign database (not SQLite, someone else's SQLite, a newer schema, a read-only
file, a full disk) gives a one-line DatabaseProblem (and, from the CLI, a non-zero exit without
a traceback) and leaves everything as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import event, select
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.errors import DatabaseProblem, StoreError
from teamaccess.store.models import SCHEMA_VERSION, Membership

ADA = ops.Actor(DEMO_ADMIN, "ada")
TEAMACCESS = Path(sys.executable).with_name("teamaccess")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TEAMACCESS), *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- a new file is private -----------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("folder_mode, file_mode", [
    (0o700, 0o600),  # a personal folder: owner only, even where users share a primary group
    (0o755, 0o600),
    (0o2770, 0o660),  # README's shared (setgid) folder: owner and group
    (0o3770, 0o660),
    (0o770, 0o660),  # group-writable: meant for the group
])
def test_a_new_database_is_private_unless_its_folder_is_shared(tmp_path, umask, folder_mode,
                                                               file_mode):
    folder = tmp_path / "f"
    folder.mkdir()
    folder.chmod(folder_mode)
    old = os.umask(umask)
    try:
        db = Database(folder / "new.db")
        ops.create_team(db, ADA, "mode-team")  # a write, so that -wal and -shm exist too
    finally:
        os.umask(old)
    tmp_path = folder
    try:
        assert (tmp_path / "new.db").stat().st_mode & 0o777 == file_mode
        for side in ("new.db-wal", "new.db-shm"):
            mode = (tmp_path / side).stat().st_mode & 0o777
            assert mode & 0o007 == 0, f"{side} is open to others: {oct(mode)}"
    finally:
        db.close()


def test_opening_an_existing_file_leaves_its_mode_alone(tmp_path):
    path = tmp_path / "mine.db"
    Database(path).close()
    path.chmod(0o600)  # its owner chose to keep it to themselves
    db = Database(path)
    ops.create_team(db, ADA, "mode-team")
    db.close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_database_in_a_folder_that_is_not_there_says_so(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DatabaseProblem, match=r"^No folder .*a-file: create it first"):
        Database(blocker / "x.db")


def test_a_typo_in_the_path_makes_no_folders(tmp_path):
    # --db /srv/teamacess/x.db (a typo) must not quietly start a new, empty database tree.
    with pytest.raises(DatabaseProblem, match=r"^No folder .*typo/nested: create it first"):
        Database(tmp_path / "typo" / "nested" / "x.db")
    assert not (tmp_path / "typo").exists()


def test_a_folder_is_not_a_database(tmp_path):
    with pytest.raises(DatabaseProblem, match=r"is a folder, not a database file: give a file path"):
        Database(tmp_path)


# -- damaged or foreign files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [os.urandom(8192), b"name,email\nada,ada@acme.com\n", b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["random-bytes", "a-csv-file", "a-broken-header"],
)
def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "other.db"
    path.write_bytes(content)
    with pytest.raises(DatabaseProblem, match=r"is not a usable teamaccess database .*--db"):
        Database(path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_someone_elses_sqlite_database_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(DatabaseProblem, match=r"is not a teamaccess database: point --db"):
        Database(path)
    assert _digest(path) == before  # not even switched to WAL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def _set_schema_version(path: Path, version: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    conn.commit()
    conn.close()


def test_a_newer_schema_is_refused_with_both_versions_and_left_alone(tmp_path):
    path = tmp_path / "future.db"
    db = Database(path)
    build_demo(db)
    db.close()
    _set_schema_version(path, str(SCHEMA_VERSION + 1))
    before = _digest(path)
    with pytest.raises(DatabaseProblem) as caught:
        Database(path)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(caught.value)
    assert f"({SCHEMA_VERSION})" in str(caught.value) and "upgrade teamaccess" in str(caught.value)
    assert _digest(path) == before


def test_a_damaged_teamaccess_database_never_gives_a_raw_error(tmp_path):
    path = tmp_path / "damaged.db"
    db = Database(path)
    build_demo(db)
    db.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    # Scribble over every page but the first (the schema survives, the rows do not).
    for start in range(page, len(data), page):
        data[start + 8 : start + 200] = os.urandom(192)
    path.write_bytes(bytes(data))

    outcomes = []
    try:
        damaged = Database(path)
        for attempt in (
            lambda: queries.roster(damaged, DEMO_ADMIN, DEMO_TEAM),
            lambda: queries.apps(damaged, DEMO_ADMIN, DEMO_TEAM),
            lambda: ops.add_member(damaged, ADA, DEMO_TEAM, "new@acme.com", "member"),
            lambda: ops.lock_app(damaged, ADA, "test"),
        ):
            try:
                attempt()
                outcomes.append("ok")
            except StoreError as err:
                outcomes.append(type(err).__name__)
                assert "\n" not in str(err)
        damaged.close()
    except DatabaseProblem as err:
        outcomes.append(f"refused at open: {err}")
    # The damage is noticed somewhere, and only ever as a StoreError (any other exception
    # would have escaped the loop above and failed the test).
    assert any(o != "ok" for o in outcomes), outcomes


# -- read-only -----------------------------------------------------------------------------------

_READ_ONLY_PROBE = textwrap.dedent(
    """
    import json, sys
    from teamaccess.store import ops, queries
    from teamaccess.store.db import Database
    from teamaccess.store.errors import StoreError
    out = {}
    try:
        db = Database(sys.argv[1])
        out["roster"] = len(queries.roster(db, "ada@acme.com", "acme-widgets"))
        try:
            ops.add_member(db, ops.Actor("ada@acme.com"), "acme-widgets", "new@acme.com", "member")
            out["write"] = "ok"
        except StoreError as err:
            out["write"] = f"{type(err).__name__}: {err}"
    except StoreError as err:
        out["open"] = f"{type(err).__name__}: {err}"
    print(json.dumps(out))
    """
)


def _as_someone_who_may_not_write(path: Path) -> subprocess.CompletedProcess:
    """Run the probe where the file is read-only for the process (root: without its override)."""
    command = [sys.executable, "-c", _READ_ONLY_PROBE, str(path)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.fail("running as root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent)


def test_a_read_only_database_can_be_read_and_refuses_writes_with_a_clear_message(tmp_path):
    import json

    path = tmp_path / "ro.db"
    db = Database(path)
    build_demo(db)
    members = len(queries.roster(db, DEMO_ADMIN, DEMO_TEAM))
    events = queries.audit_count(db)
    db.close()
    path.chmod(0o444)
    try:
        probe = _as_someone_who_may_not_write(path)
    finally:
        path.chmod(0o660)
    assert probe.returncode == 0, probe.stderr
    out = json.loads(probe.stdout)
    assert out == {
        "roster": members,
        "write": f"DatabaseProblem: {path} is read-only for you: ask its owner for write access "
        "(group rw) or use another file with --db.",
    }
    db = Database(path)
    assert queries.audit_count(db) == events
    assert len(queries.roster(db, DEMO_ADMIN, DEMO_TEAM)) == members
    db.close()


# -- a full disk -----------------------------------------------------------------------------


def test_a_full_disk_refuses_the_change_whole_and_says_so(tmp_path):
    path = tmp_path / "full.db"
    db = Database(path)
    build_demo(db)

    # Cap the file at its present size on every connection, as a full disk would.
    @event.listens_for(db.engine, "connect")
    def _cap(dbapi_conn, _record):
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    db.engine.dispose()
    problem = None
    for n in range(2000):  # write until the free space inside the file runs out
        members = len(queries.roster(db, DEMO_ADMIN, DEMO_TEAM))
        events = queries.audit_count(db)
        try:
            ops.add_member(db, ADA, DEMO_TEAM, f"filler{n}.with.a.long.name@acme.com", "member")
        except DatabaseProblem as err:
            problem = err
            break
    assert problem is not None, "the capped database never filled up"
    assert str(problem) == f"The disk holding {path} is full: nothing was changed; free some space and retry."
    # Nothing of the refused operation was written: neither the membership nor its audit event.
    assert len(queries.roster(db, DEMO_ADMIN, DEMO_TEAM)) == members
    assert queries.audit_count(db) == events
    with db.read() as s:
        assert s.execute(select(Membership).limit(1)).first() is not None  # still readable
    db.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


# -- from the command line: a non-zero exit and one line, never a traceback -----------------------


@pytest.fixture
def cli_available():
    if not TEAMACCESS.exists():
        pytest.fail(f"the teamaccess console script is missing at {TEAMACCESS}: pip install -e .")


def test_the_cli_on_a_file_that_is_not_sqlite(tmp_path, cli_available):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n")
    result = _cli("--db", str(path), "--as", DEMO_ADMIN, "teams")
    _assert_one_line_error(result, "is not a usable teamaccess database")
    assert path.read_text() == "shopping list\n"


def test_the_cli_on_a_newer_schema(tmp_path, cli_available):
    path = tmp_path / "future.db"
    Database(path).close()
    _set_schema_version(path, "99")
    result = _cli("--db", str(path), "--as", DEMO_ADMIN, "teams")
    _assert_one_line_error(result, "schema version 99", "upgrade teamaccess")


def test_the_cli_on_someone_elses_database(tmp_path, cli_available):
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    result = _cli("--db", str(path), "--as", DEMO_ADMIN, "members:add", "joe@acme.com",
                  "--team", "acme-widgets", "--role", "member")
    _assert_one_line_error(result, "is not a teamaccess database")


def test_a_really_full_disk_refuses_the_change_whole_and_says_so(tmp_path):
    """The same on a real, small filesystem (a tmpfs: needs root, as CI has)."""
    from test_backup import _tiny_disk

    with _tiny_disk(tmp_path / "small", "400k") as small:
        path = small / "full.db"
        db = Database(path)
        build_demo(db)
        problem = None
        for n in range(5000):
            members = len(queries.roster(db, DEMO_ADMIN, DEMO_TEAM))
            events = queries.audit_count(db)
            try:
                ops.add_member(db, ADA, DEMO_TEAM, f"filler{n}.{'x' * 60}@acme.com", "member")
            except DatabaseProblem as err:
                problem = err
                break
        assert problem is not None, "the small disk never filled up"
        assert str(problem) == (
            f"The disk holding {path} is full: nothing was changed; free some space and retry."
        )
        assert len(queries.roster(db, DEMO_ADMIN, DEMO_TEAM)) == members
        assert queries.audit_count(db) == events
        db.close()
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        check.close()


def test_closing_while_a_watcher_thread_polls_never_crashes(tmp_path):
    # A dashboard quitting while its watcher thread polls the change token: the CLI closes the
    # database while the poll may be running. Closing a sqlite3 connection under a running
    # statement crashed the interpreter (SIGSEGV); the run is in a child so a crash is a failure.
    script = textwrap.dedent(f"""
        import threading
        from teamaccess.store.db import Database
        db = Database({str(tmp_path / "w.db")!r})
        stop, errors = threading.Event(), []
        def poll():
            while not stop.is_set():
                try:
                    db.change_token()
                except Exception as err:
                    errors.append(err)
        threads = [threading.Thread(target=poll) for _ in range(2)]
        for t in threads:
            t.start()
        for _ in range(3000):
            db.close()
        stop.set()
        for t in threads:
            t.join()
        db.close()
        print("errors", len(errors))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "errors 0"
