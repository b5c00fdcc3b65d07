"""Backups: a consistent, self-contained copy of a live SQLite database, or a clear refusal."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from teamaccess.store import ops
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.errors import DatabaseProblem

SPAWN = multiprocessing.get_context("spawn")
ADA = ops.Actor(DEMO_ADMIN, "ada")


def _writer(url, started, stop, done):
    """Keep adding team users (each with its audit event) until told to stop (in a child)."""
    db = Database(url)
    n = 0
    while not stop.is_set():
        ops.add_member(db, ADA, DEMO_TEAM, f"w{n}@busy.example", "member")
        n += 1
        if n == 20:
            started.set()
    db.close()
    done.put(n)


def _members_and_their_events(path: Path) -> tuple[set[str], set[str]]:
    conn = sqlite3.connect(path)
    try:
        members = {r[0] for r in conn.execute(
            "SELECT a.email FROM membership m JOIN account a ON a.id = m.account_id "
            "WHERE a.email LIKE '%@busy.example'")}
        events = {r[0] for r in conn.execute(
            "SELECT target_email FROM audit_event WHERE action = 'team_membership.create' "
            "AND outcome = 'ok' AND target_email LIKE '%@busy.example'")}
        return members, events
    finally:
        conn.close()


@pytest.mark.slow
def test_a_backup_taken_while_another_process_writes_is_consistent(tmp_path):
    db = Database(tmp_path / "live.db")
    build_demo(db)
    started, stop, done = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    writer = SPAWN.Process(target=_writer, args=(db.url, started, stop, done))
    writer.start()
    try:
        assert started.wait(timeout=60), "the writer never got going"
        copies = [db.backup(tmp_path / f"copy{i}.db") for i in range(3)]
    finally:
        stop.set()
        written = done.get(timeout=60)
        writer.join(timeout=30)

    seen = []
    for copy in copies:
        assert copy.stat().st_mode & 0o777 == 0o660
        conn = sqlite3.connect(copy)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file
        conn.close()
        members, events = _members_and_their_events(copy)
        # One committed snapshot: every membership has its audit event and vice versa.
        assert members == events
        seen.append(len(members))
        reopened = Database(copy)  # a usable teamaccess database
        reopened.close()
    assert 20 <= seen[0] <= seen[-1] <= written  # taken while the writes went on
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []
    db.close()


def test_a_backup_never_replaces_an_existing_file(demo_db, tmp_path):
    target = tmp_path / "precious.db"
    target.write_text("keep me")
    with pytest.raises(DatabaseProblem, match=r"exists already: choose a new path"):
        demo_db.backup(target)
    assert target.read_text() == "keep me"


def test_a_backup_into_a_missing_folder_says_so_and_writes_nothing(demo_db, tmp_path):
    with pytest.raises(DatabaseProblem, match=r"^Can't write .*: the folder .*nowhere does not exist\.$"):
        demo_db.backup(tmp_path / "nowhere" / "copy.db")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.postgres
def test_postgresql_points_to_pg_dump(pg_db, tmp_path):
    with pytest.raises(DatabaseProblem, match="pg_dump"):
        pg_db.backup(tmp_path / "copy.db")
    assert list(tmp_path.iterdir()) == []


@contextmanager
def _tiny_disk(where: Path, size: str):
    """A small tmpfs mounted at ``where``: a real full disk (needs root, as CI has)."""
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs mount, which needs root (CI runs as root)")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"could not mount a tmpfs as root: {result.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_backup_onto_a_full_disk_leaves_no_partial_file(demo_db, tmp_path):
    with _tiny_disk(tmp_path / "small", "32k") as small:
        with pytest.raises(DatabaseProblem) as caught:
            demo_db.backup(small / "copy.db")
        assert str(caught.value) == (
            f"The disk holding {small} is full: no backup was written; free some space or "
            "choose another place."
        )
        assert list(small.iterdir()) == []


def test_the_cli_backs_up(demo_db, tmp_path):
    target = tmp_path / "cli-copy.db"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("teamaccess")), "--db", str(demo_db.path),
         "--as", DEMO_ADMIN, "backup", str(target)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    # The progress line goes to stderr, as Heroku's do: stdout holds only data.
    assert (result.stdout, result.stderr) == ("", f"Backing up to {target}... done\n")
    conn = sqlite3.connect(target)
    assert conn.execute("SELECT count(*) FROM team WHERE name = ?", (DEMO_TEAM,)).fetchone() == (1,)
    conn.close()
