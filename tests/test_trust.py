"""Issue 11, the in-process half: audit gaps, unsafe characters, input folding, file opening.

The attacks that need real OS users (someone else's file, a shared folder, read-only readers)
are in tests/test_jump_host.py.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.text import Text
from teamaccess.store import identity, ops, portable, queries, safetext, validate
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.errors import DatabaseProblem, Invalid, Refused, one_line
from teamaccess.tui import text as cli_text
from teamaccess.tui.cli import cli
from teamaccess.tui.widgets import safe

OTHER_UID = 65534



@pytest.fixture(autouse=True)
def _no_as_from_outside(monkeypatch):
    monkeypatch.delenv("TEAMACCESS_AS", raising=False)


def _rows(db: Database) -> dict[str, list]:
    """Every row of every table but the audit log: what a refusal must leave as it was."""
    with db.read() as s:
        conn = s.connection()
        tables = [r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='table' AND name != 'audit_event'")]
        return {t: sorted(map(tuple, conn.exec_driver_sql(f"SELECT * FROM {t}"))) for t in tables}


# -- 8. audit gaps ---------------------------------------------------------------------------


def test_a_refused_as_writes_one_denied_event_and_changes_nothing_else(owned, monkeypatch):
    if os.geteuid() == 0:
        os.chown(owned.path, OTHER_UID, -1)
    else:
        real = os.geteuid()
        monkeypatch.setattr(identity.os, "geteuid", lambda: real + 1)
    before, events = _rows(owned), queries.audit_count(owned)
    with pytest.raises(Refused, match="honoured only on a database you own"):
        identity.resolve_actor(owned, DEMO_ADMIN)
    assert _rows(owned) == before
    assert queries.audit_count(owned) == events + 1
    # the admins of the account's team see the attempt, with the login that made it
    event = queries.audit(owned, DEMO_ADMIN, DEMO_TEAM, limit=1)[0]
    assert (event.action, event.outcome, event.target) == ("account.act_as", "denied", DEMO_ADMIN)
    assert event.actor_login == identity.os_login()
    assert "honoured only on a database you own" in event.reason


def test_another_teams_admin_cant_read_an_accounts_past_events_by_adding_it(owned):
    owner = identity.resolve_actor(owned, DEMO_ADMIN)
    joe = ops.Actor("joe@acme.com", "joe")
    mfa = queries.account(owned, joe.email).mfa_enabled
    ops.set_mfa(owned, joe, not mfa)  # joe's account events: an MFA change, a binding
    ops.bind_login(owned, owner, "joe", "joe@acme.com")
    mallory = ops.Actor("mallory@evil.example", "mallory")
    ops.create_team(owned, mallory, "mteam")
    ops.add_member(owned, mallory, "mteam", "joe@acme.com", "viewer")
    seen = queries.audit(owned, mallory.email, "mteam")
    assert seen and not [e for e in seen if e.action.startswith("account.")]
    # acme-widgets' admins, whose user joe was all along, still see them
    mine = queries.audit(owned, DEMO_ADMIN, DEMO_TEAM, action="account.update")
    assert {e.target for e in mine} >= {"joe@acme.com"}
    # what happens to joe's account from now on concerns mteam too
    ops.set_mfa(owned, joe, mfa)
    newest = queries.audit(owned, mallory.email, "mteam", limit=1)[0]
    assert (newest.action, newest.target, newest.after) == (
        "account.update", "joe@acme.com", {"mfa": mfa})


def test_the_cli_audit_table_shows_the_os_login(owned):
    ops.bind_login(owned, ops.Actor(DEMO_ADMIN, "ada"), "ada", DEMO_ADMIN)
    ops.lock_app(owned, ops.Actor(DEMO_ADMIN, "ada-login"), "test")
    out = CliRunner().invoke(cli, ["--db", str(owned.path), "--as", DEMO_ADMIN, "audit",
                                   "--team", DEMO_TEAM, "-n", "1"])
    assert out.exit_code == 0, out.output
    header, _rule, row = out.output.splitlines()[:3]
    # "Via": the OS login of a local run (an SSH key and peer for a served session)
    assert header.split()[:4] == ["When", "Actor", "Via", "Action"]
    assert row.split()[1:4] == [DEMO_ADMIN, "ada-login", "app.update"]


# -- 9. unsafe characters: one rule, everywhere ---------------------------------------------------


INVISIBLE = [chr(c) for c in range(0x110000)
             if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp", "Cs")]


def test_every_control_format_or_separator_character_is_unsafe():
    missed = [f"U+{ord(c):04X}" for c in INVISIBLE if not safetext.UNSAFE.fullmatch(c)]
    assert missed == []
    for blank in "\u3164\u115f\u1160\uffa0":  # letters that draw as nothing
        assert safetext.has_unsafe(f"ada{blank}") == blank


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u061c", "\u202e", "\u2066", "\u3164",
                                  "\x1b", "\x9b", "\u200b", "\ufeff", "\U000e0041"])
def test_the_cli_the_dashboard_and_messages_all_hide_it(char):
    value = f"ada{char}[b]x[/b]"
    assert char not in cli_text.plain(value, one_line=True)
    assert char not in safe.clean(value)
    assert char not in one_line(f"No account {value}")
    rendered = safe.text(value)
    assert isinstance(rendered, Text) and char not in rendered.plain and "[b]x[/b]" in rendered.plain


def test_one_definition_is_used_by_both_faces():
    assert cli_text.UNSAFE is safetext.UNSAFE
    assert safe._UNSAFE is safetext.UNSAFE
    assert validate._CONTROL is safetext.UNSAFE


def test_multi_line_text_keeps_its_lines_but_nothing_else():
    assert safetext.plain("a\tb\nc\u2028d\x1b") == "a\tb\nc?d?"
    assert safetext.plain("a\tb\nc", one_line=True) == "a?b?c"


@pytest.mark.parametrize("name", ["Ada\u3164", "\u3164", "Ad\u2028a", "A\u061cda", "\u115fAda"])
def test_blank_look_alikes_and_invisible_marks_are_refused_in_names(name):
    doc = {"team": "t1", "members": [{"email": "a@acme.com", "role": "admin",
                                       "user": {"name": name}}], "apps": [], "access": []}
    with pytest.raises(Invalid, match=r"members\[0\]\.user\.name"):
        portable.parse(doc)


@pytest.mark.parametrize("email", ["\u212aen@acme.com", "ken@acme.\u212aom", "\u0130a@acme.com",
                                   "ﬀ@acme.com", "ada@аcme.com"])
def test_non_ascii_emails_are_refused_before_any_folding(owned, email):
    with pytest.raises(Invalid, match="use ASCII letters"):
        validate.email(email)
    before = _rows(owned)
    with pytest.raises(Invalid):
        ops.add_member(owned, ops.Actor(DEMO_ADMIN), DEMO_TEAM, email, "member")
    assert _rows(owned) == before
    assert validate.email("  KEN@Acme.com ") == "ken@acme.com"  # ASCII still folds


# -- 9. files: schema version, modes; 1. URI filenames; 7. restores --------------------------------


def test_a_schema_version_that_is_not_a_number_gives_one_clear_line(tmp_path):
    path = tmp_path / "odd.db"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DatabaseProblem) as caught:
        Database(path)
    assert str(caught.value).startswith(f"{path} has a damaged schema_version ('abc'")
    assert "restore a backup" in str(caught.value)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("where", [
    "sqlite:///file:{path}?uri=true",
    "sqlite:///file:{path}",
    "sqlite:///{path}?mode=ro",
    "sqlite:///{path}?immutable=1&uri=true",
])
def test_sqlite_uri_filenames_are_refused(tmp_path, where):
    real = tmp_path / "real.db"
    Database(real).close()
    with pytest.raises(DatabaseProblem, match="URI filenames and URL options .* plain path"):
        Database(where.format(path=real))
    out = CliRunner().invoke(cli, ["--db", where.format(path=real), "--as", "a@b.co", "teams"])
    assert out.exit_code == 1 and "plain path" in out.output
    assert not list(Path.cwd().glob("file:*"))


def test_a_symlinked_path_opens_the_file_it_pointed_at_when_opened(tmp_path):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    for path in (first, second):
        Database(path).close()
    link = tmp_path / "link.db"
    link.symlink_to(first)
    db = Database(link)
    try:
        assert db.path == first
        link.unlink()
        link.symlink_to(second)  # flipped after opening: we still work on the first
        ops.create_team(db, ops.Actor(DEMO_ADMIN), "flip-team")
        assert [t.name for t in queries.teams(Database(first), DEMO_ADMIN)] == ["flip-team"]
        assert queries.teams(Database(second), DEMO_ADMIN) == []
    finally:
        db.close()


def test_a_file_replaced_under_an_open_database_is_refused_not_used(tmp_path):
    path = tmp_path / "swap.db"
    db = Database(path)
    build_demo(db)
    decoy = tmp_path / ".x"
    Database(decoy).close()
    os.replace(decoy, path)  # what someone who may rename in the folder could do
    try:
        assert db.opened_file_owner() is None  # the file at the path is not the one held
        assert not identity.may_act_as_anyone(db)
        db.engine.dispose()  # the next connection must open the path again...
        with pytest.raises(DatabaseProblem, match="was replaced by another file while in use"):
            queries.teams(db, DEMO_ADMIN)  # ...and refuses the other file
    finally:
        db.close()


def test_copying_a_backup_over_a_live_database_says_what_to_do(tmp_path):
    path = tmp_path / "live.db"
    db = Database(path)
    build_demo(db)
    backup = db.backup(tmp_path / "backup.db")
    keeper = sqlite3.connect(path)  # someone keeps it open: the -wal stays
    keeper.execute("SELECT count(*) FROM account").fetchall()
    for i in range(150):
        ops.create_team(db, ops.Actor(DEMO_ADMIN), f"early-{i}")
    keeper.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # some changes reach the file
    for i in range(150):
        ops.create_team(db, ops.Actor(DEMO_ADMIN), f"later-{i}")  # others wait in the -wal
    path.write_bytes(backup.read_bytes())  # `cp backup.db live.db`
    db.close()
    try:
        with pytest.raises(DatabaseProblem) as caught:
            again = Database(path)
            try:
                queries.teams(again, DEMO_ADMIN)
            finally:
                again.close()
        message = str(caught.value)
        assert "-wal" in message and "copy the backup in again" in message, message
        assert "\n" not in message
    finally:
        keeper.close()


def test_an_actor_spelled_with_a_kelvin_sign_is_not_ken(owned):
    assert ops.Actor("\u212aen@acme.com").email != "ken@acme.com"
    before, events = _rows(owned), queries.audit_count(owned)
    with pytest.raises(Invalid, match="use ASCII letters"):
        ops.set_mfa(owned, ops.Actor("\u212aen@acme.com"), True)
    assert _rows(owned) == before and queries.audit_count(owned) == events + 1
