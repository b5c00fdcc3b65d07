"""Temporary grants on the command line: --expires-in, --permanent, access:prune, the Expires
column and the JSON fields, as transcripts with a clock the test moves (no sleeping)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from conftest import Clock, _state, failed
from conftest import data as ok
from conftest import progress as done_ok
from teamaccess.store import queries
from teamaccess.store.db import Database
from teamaccess.tui.cli import cli

START = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TEAMACCESS_DB", "TEAMACCESS_AS", "TEAMACCESS_TEAM"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Every Database (the ones the commands open too) tells the time by this clock."""
    moved = Clock(START)
    monkeypatch.setattr(Database, "now", lambda self: moved.now)
    return moved


def run(db: Database, *args: str, who: str = "ada@acme.com"):
    return CliRunner().invoke(cli, [*args, "--db", str(db.path), "--as", who], prog_name="teamaccess")


def expires_column(db: Database, app: str) -> dict[str, str]:
    lines = ok(run(db, "access", "--app", app)).splitlines()
    assert lines[0].split() == ["Email", "Role", "Permissions", "MFA", "Expires"]
    start = lines[0].index("Expires")
    return {line.split()[0]: line[start:].strip() for line in lines[2:]}


def test_add_with_expires_in_counts_down_and_ends(sdb, clock):
    out = done_ok(run(sdb, "access:add", "con@outside.dev", "--app", "myapp",
                      "--permissions", "deploy", "--expires-in", "8h"))
    assert out == ("Adding con@outside.dev access to the app myapp with deploy, view permissions "
                   "until 2030-01-02 17:00:00 UTC... done\n")
    assert expires_column(sdb, "myapp") == {"ada@acme.com": "", "con@outside.dev": "8h",
                                            "joe@acme.com": "", "val@acme.com": ""}
    clock.move(minutes=1)
    assert expires_column(sdb, "myapp")["con@outside.dev"] == "7h 59m"
    clock.move(hours=7, minutes=58, seconds=30)
    assert expires_column(sdb, "myapp")["con@outside.dev"] == "30s"
    clock.move(seconds=30)
    assert "con@outside.dev" not in expires_column(sdb, "myapp")
    why = ok(run(sdb, "access:why", "con@outside.dev", "--app", "myapp"))
    assert "grant expired at 2030-01-02 17:00:00 UTC" in why
    assert "Couldn't find" not in why
    assert "grant expired at 2030-01-02 17:00:00 UTC" in failed(
        run(sdb, "access", "--app", "myapp", who="con@outside.dev"))


def test_access_json_has_expires_at_and_expires_in(sdb, clock):
    done_ok(run(sdb, "access:add", "con@outside.dev", "--app", "test", "--expires-in", "90m"))
    clock.move(seconds=60)
    rows = {r["email"]: r for r in json.loads(ok(run(sdb, "access", "--app", "test", "--json")))}
    assert rows["con@outside.dev"]["expires_at"] == "2030-01-02T10:30:00Z"
    assert rows["con@outside.dev"]["expires_in"] == 90 * 60 - 60
    assert rows["sam@freelance.dev"]["expires_at"] is None  # a grant that never ends
    assert rows["sam@freelance.dev"]["expires_in"] is None
    assert rows["ada@acme.com"]["expires_at"] is None  # access from the role
    clock.move(minutes=89)
    rows = {r["email"]: r for r in json.loads(ok(run(sdb, "access", "--app", "test", "--json")))}
    assert "con@outside.dev" not in rows


@pytest.mark.parametrize(("given", "fragment"), [
    ("abc", "Invalid duration 'abc': give a whole number and a unit s, m, h or d"),
    ("0s", "it must be more than zero"),
    ("91d", "the longest is 90d"),
    ("1.5h", "give a whole number and a unit"),
    ("-5m", "give a whole number and a unit"),
])
def test_bad_durations_are_one_line_errors_that_change_nothing(sdb, clock, given, fragment):
    before, events = _state(sdb), queries.audit_count(sdb)
    assert fragment in failed(run(sdb, "access:add", "con@outside.dev", "--app", "myapp",
                                  "--expires-in", given))
    assert fragment in failed(run(sdb, "access:update", "sam@freelance.dev", "--app", "test",
                                  "--expires-in", given))
    assert _state(sdb) == before
    assert queries.audit_count(sdb) == events  # refused before anything is opened


def test_update_expires_in_permanent_and_neither(sdb, clock):
    done_ok(run(sdb, "access:add", "con@outside.dev", "--app", "myapp", "--expires-in", "1h"))
    # Permissions only: the end stays.
    out = done_ok(run(sdb, "access:update", "con@outside.dev", "--app", "myapp", "--permissions", "deploy"))
    assert out.endswith("with deploy,view permissions until 2030-01-02 10:00:00 UTC... done\n")
    clock.move(minutes=30)
    # A new end measured from now, the set kept.
    out = done_ok(run(sdb, "access:update", "con@outside.dev", "--app", "myapp", "--expires-in", "2h"))
    assert out == ("Updating con@outside.dev in application myapp with deploy,view permissions "
                   "until 2030-01-02 11:30:00 UTC... done\n")
    assert expires_column(sdb, "myapp")["con@outside.dev"] == "2h"
    out = done_ok(run(sdb, "access:update", "con@outside.dev", "--app", "myapp", "--permanent"))
    assert out == "Updating con@outside.dev in application myapp with deploy,view permissions... done\n"
    assert expires_column(sdb, "myapp")["con@outside.dev"] == ""
    clock.move(days=30)
    assert "con@outside.dev" in expires_column(sdb, "myapp")


def test_update_flag_errors_change_nothing(sdb, clock):
    before = _state(sdb)
    assert "either --expires-in or --permanent, not both" in failed(
        run(sdb, "access:update", "sam@freelance.dev", "--app", "test", "--expires-in", "1h", "--permanent"))
    assert "Nothing to change: give --permissions, --expires-in or --permanent" in failed(
        run(sdb, "access:update", "sam@freelance.dev", "--app", "test"))
    assert "never ends" in failed(
        run(sdb, "access:update", "sam@freelance.dev", "--app", "test", "--permanent"))
    assert _state(sdb) == before


def test_add_to_an_admin_with_an_end_is_refused(sdb, clock):
    before = _state(sdb)
    assert "already has every permission as a team admin" in failed(
        run(sdb, "access:add", "ada@acme.com", "--app", "myapp", "--expires-in", "1h"))
    assert _state(sdb) == before


def test_prune_transcript(sdb, clock):
    done_ok(run(sdb, "access:add", "con@outside.dev", "--app", "myapp", "--expires-in", "30s"))
    done_ok(run(sdb, "access:add", "kit@outside.dev", "--app", "myapp", "-p", "deploy", "--expires-in", "45s"))
    done_ok(run(sdb, "access:add", "con@outside.dev", "--app", "test", "--expires-in", "1m"))
    clock.move(minutes=1)
    out = done_ok(run(sdb, "access:prune"))
    assert out.splitlines() == [
        "Removing 2 expired grants from myapp... done",
        "  con@outside.dev (view), expired at 2030-01-02 09:00:30 UTC",
        "  kit@outside.dev (deploy, view), expired at 2030-01-02 09:00:45 UTC",
        "Removing 1 expired grant from test... done",
        "  con@outside.dev (view), expired at 2030-01-02 09:01:00 UTC",
    ]
    audit = json.loads(ok(run(sdb, "audit", "--team", "acme", "--json")))
    pruned = [e for e in audit if e.get("reason") == "expired"]
    assert len(pruned) == 3
    assert sorted((e["action"], e["app"]["name"], e["target"]["email"], e["actor"]["email"],
                   e["outcome"]) for e in pruned) == [
        ("collaborator.destroy", "myapp", "con@outside.dev", "ada@acme.com", "ok"),
        ("collaborator.destroy", "myapp", "kit@outside.dev", "ada@acme.com", "ok"),
        ("collaborator.destroy", "test", "con@outside.dev", "ada@acme.com", "ok")]
    table = ok(run(sdb, "audit", "--team", "acme")).splitlines()
    assert sum(1 for line in table if "collaborator.destroy" in line
               and 'expired: {"expires_at": "2030-01-02T09:0' in line) == 3
    assert done_ok(run(sdb, "access:prune")) == "No expired grants on the apps you manage: nothing to remove.\n"
    assert done_ok(run(sdb, "access:prune", "--app", "myapp")) == (
        "No expired grants on myapp: nothing to remove.\n")


def test_prune_by_a_member_is_a_clear_refusal(sdb, clock):
    done_ok(run(sdb, "access:add", "con@outside.dev", "--app", "myapp", "--expires-in", "30s"))
    clock.move(minutes=1)
    before = _state(sdb)
    line = failed(run(sdb, "access:prune", who="joe@acme.com"))
    assert line == ("Error: Only team admins and accounts with manage on an app may prune its "
                    "expired grants, and you manage none: nothing was changed.")
    assert "may change who has access" in failed(run(sdb, "access:prune", "--app", "myapp", who="joe@acme.com"))
    assert _state(sdb) == before


def test_help_texts_say_what_the_flags_do(sdb):
    add = ok(CliRunner().invoke(cli, ["access:add", "--help"]))
    assert "--expires-in DURATION" in add and "90d" in add
    update = ok(CliRunner().invoke(cli, ["access:update", "--help"]))
    assert "--permanent" in update and "keeps the end" in " ".join(update.split())
    prune = ok(CliRunner().invoke(cli, ["access:prune", "--help"]))
    assert "expired" in prune and "--app" in prune
