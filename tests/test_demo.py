"""The demo team is built only where it harms nothing, and says that its events are demo data."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_LOGIN, DEMO_REASON, DEMO_TEAM, build_demo
from teamaccess.store.errors import NotFound, Refused
from teamaccess.store.models import Account
from teamaccess.tui.cli import cli

BOSS = ops.Actor("boss@corp.example", "boss")


def dump(path) -> list[str]:
    """Every row of every table."""
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def real_team(path) -> Database:
    """A database someone really uses: a team, with ada@acme.com in it as a member."""
    db = Database(path)
    ops.create_team(db, BOSS, "corp")
    ops.add_member(db, BOSS, "corp", "ada@acme.com", "member")
    ops.create_app(db, BOSS, "website-prod", team="corp")
    return db


def test_the_demo_refuses_a_database_with_a_real_team_and_changes_nothing(tmp_path):
    """Issue 11 item 2: 'teamaccess --db SHARED demo' committed the demo team, then exited 1."""
    db = real_team(tmp_path / "shared.db")
    before = dump(db.path)
    with pytest.raises(Refused, match=r"holds other data: the demo team is built only in its own"):
        build_demo(db)
    assert dump(db.path) == before
    result = CliRunner().invoke(cli, ["--db", str(db.path), "demo"], prog_name="teamaccess")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: {db.path} holds other data: the demo team is built only in its own demo.db or "
        "in an empty database; run 'teamaccess demo' without --db, or give --db a new file."]
    assert dump(db.path) == before  # no team, no app name taken, no event, nothing
    roster = queries.roster(db, "boss@corp.example", "corp")
    assert [(r.email, r.role) for r in roster] == [("ada@acme.com", "member"),
                                                   ("boss@corp.example", "admin")]
    db.close()


@pytest.mark.parametrize("what", ["account only", "denied event only"])
def test_anything_at_all_in_the_database_is_other_data(tmp_path, what):
    db = Database(tmp_path / "used.db")
    if what == "account only":  # as an older version or another tool may have left it
        db.write(lambda s: s.add(Account(email="someone@corp.example")))
        assert queries.audit_count(db) == 0
    else:
        with pytest.raises(NotFound):  # a refusal changes nothing but the log
            ops.rename_team(db, BOSS, "nope", "other")
        assert queries.audit_count(db) == 1
    before = dump(db.path)
    with pytest.raises(Refused, match="holds other data"):
        build_demo(db)
    assert dump(db.path) == before
    db.close()


def test_someone_writing_between_the_check_and_the_write_is_not_overwritten(tmp_path, monkeypatch):
    from teamaccess.store import demo

    db = Database(tmp_path / "race.db")
    checks = []
    real_check = demo._holds_other_data

    def check_then_someone_writes(s):
        held = real_check(s)
        if not checks:
            ops.create_team(db, BOSS, "corp")  # the file is taken into real use meanwhile
        checks.append(held)
        return held

    monkeypatch.setattr(demo, "_holds_other_data", check_then_someone_writes)
    events = None
    with pytest.raises(Refused, match="holds other data"):
        build_demo(db)
    events = queries.audit_count(db)
    assert checks == [False, True]
    assert [t.name for t in queries.teams(db, "boss@corp.example")] == ["corp"]
    assert events == 1  # corp's creation; the demo left nothing, not even a denied event
    assert queries.account(db, "ada@acme.com") is None
    db.close()


def test_the_demo_builds_in_an_empty_database_and_its_events_say_they_are_demo_data(tmp_path):
    db = Database(tmp_path / "new.db")
    assert build_demo(db) is True
    events = queries.audit(db, "ada@acme.com", DEMO_TEAM)
    assert len(events) == 7
    assert {e.actor_login for e in events} == {DEMO_LOGIN} == {"demo"}
    assert all(e.reason == DEMO_REASON for e in events if e.outcome == "ok")
    assert "demo data" in DEMO_REASON
    # a second run writes nothing at all
    before = dump(db.path)
    assert build_demo(db) is False
    assert dump(db.path) == before
    db.close()


def test_the_demo_writes_through_the_operation_path(tmp_path, monkeypatch):
    """Issue 14: one write path: the demo's transaction is ops._run's, like every change."""
    runs = []
    real_run = ops._run
    monkeypatch.setattr(ops, "_run", lambda *a, **kw: runs.append(a[2]) or real_run(*a, **kw))
    db = Database(tmp_path / "new.db")
    build_demo(db)
    assert runs == ["team.create"]
    db.close()
