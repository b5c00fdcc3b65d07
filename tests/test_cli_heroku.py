"""Heroku parity, round 2 (issue 13): Heroku's spellings, stderr progress lines, JSON ids.

Every case checks standard output and standard error apart, and the exit status: a script that
captures ``teamaccess members --json > x`` must get only data, as with Heroku's CLI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import data, failed, progress, seed
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.tui import cli as cli_module
from teamaccess.tui.cli import cli

ADA = ops.Actor("ada@acme.com", "ada")
JOE = ops.Actor("joe@acme.com", "joe")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")




@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TEAMACCESS_DB", "TEAMACCESS_AS", "TEAMACCESS_TEAM", "TEAMACCESS_APP"):
        monkeypatch.delenv(var, raising=False)


def run(db: Database, *args: str, who: str | None = "ada@acme.com", input: str | None = None,
        env: dict[str, str] | None = None):
    """The real ``cli``, with --db (and --as) after the command, stdout and stderr apart."""
    where = str(db.path) if db.path is not None else db.url
    extra = ["--db", where] + (["--as", who] if who else [])
    return CliRunner().invoke(cli, [*args, *extra], input=input, env=env, prog_name="teamaccess")





def app_names(db: Database, team: str = "acme") -> list[str]:
    return [a.name for a in queries.apps(db, "ada@acme.com", team)]


def everything(db: Database) -> tuple:
    """What a refused command could have changed: teams, rosters, apps and who has what."""
    rows: list = []
    for t in queries.teams(db, "ada@acme.com"):
        rows.append((t, tuple(queries.roster(db, "ada@acme.com", t.name))))
        for a in queries.apps(db, "ada@acme.com", t.name):
            rows.append((a, queries.app_access(db, "ada@acme.com", a.name).rows))
    rows.append(tuple(queries.apps(db, "joe@acme.com")))
    return tuple(rows)


# -- progress lines on stderr, data on stdout -----------------------------------------------------


def test_every_write_prints_its_progress_line_on_stderr_only(sdb, tmp_path):
    lines = [
        (("members:add", "li@acme.com", "--team", "acme", "--role", "member"),
         "Adding li@acme.com to acme as member... done\n"),
        (("members:set", "li@acme.com", "--team", "acme", "--role", "admin"),
         "Adding li@acme.com to acme as admin... done\n"),
        (("members:remove", "li@acme.com", "--team", "acme"), "Removing li@acme.com from acme... done\n"),
        (("apps:lock", "--app", "myapp"), "Locking myapp... done\n"),
        (("apps:unlock", "--app", "myapp"), "Unlocking myapp... done\n"),
        (("access:add", "li@partner.co", "--app", "myapp", "-p", "deploy"),
         "Adding li@partner.co access to the app myapp with deploy, view permissions... done\n"),
        (("access:update", "li@partner.co", "--app", "myapp", "-p", "manage,deploy"),
         "Updating li@partner.co in application myapp with deploy,manage,view permissions... done\n"),
        (("access:remove", "li@partner.co", "--app", "myapp"),
         "Removing li@partner.co access from the app myapp... done\n"),
        (("apps:create", "newapp", "--team", "acme"), "Creating newapp in team acme... done\n"),
        (("apps:destroy", "newapp", "--confirm", "newapp"),
         "Destroying newapp (including all add-ons)... done\n"),
        (("teams:create", "new-team"), "Creating new-team... done\n"),
        (("teams:rename", "renamed", "--team", "new-team"), "Renaming new-team to renamed... done\n"),
        (("account:mfa", "--enable"), "Enabling MFA for ada@acme.com... done\n"),
        (("backup", str(tmp_path / "copy.db")), f"Backing up to {tmp_path / 'copy.db'}... done\n"),
    ]
    for argv, line in lines:
        assert progress(run(sdb, *argv)) == line, argv


def test_notes_after_a_progress_line_go_to_stderr_too(sdb):
    ops.grant_access(sdb, ADA, "myapp", "joe@acme.com", "deploy")
    err = progress(run(sdb, "members:remove", "joe@acme.com", "--team", "acme")).splitlines()
    assert err[0] == "Removing joe@acme.com from acme... done"
    assert "myapp" in err[1] and "access:remove joe@acme.com" in err[2]


def test_json_capture_holds_only_json(sdb):
    for argv in (("members", "--team", "acme"), ("apps",), ("teams",), ("access", "-a", "test"),
                 ("members:access", "joe@acme.com", "--team", "acme"), ("audit", "--team", "acme")):
        json.loads(data(run(sdb, *argv, "--json")))


def test_a_real_process_writes_progress_to_stderr_and_data_to_stdout(sdb):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    env.update(TEAMACCESS_DB=str(sdb.path), TEAMACCESS_AS="ada@acme.com", PYTHONIOENCODING="utf-8")
    script = str(Path(sys.executable).parent / "teamaccess")
    added = subprocess.run([script, "members:add", "joe@acme.com", "--team", "acme-widgets",
                            "--role", "member"], env=env, capture_output=True, text=True, timeout=60)
    assert (added.returncode, added.stdout, added.stderr) == (
        0, "", "Adding joe@acme.com to acme-widgets as member... done\n")
    listed = subprocess.run([script, "members", "--team", "acme-widgets", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert (listed.returncode, listed.stderr) == (0, "")
    assert [m["email"] for m in json.loads(listed.stdout)] == ["ada@acme.com", "joe@acme.com"]


# -- apps:destroy [APP] -a -c, and its aliases ----------------------------------------------------


def test_destroy_takes_the_app_as_an_argument_with_confirm(sdb):
    assert progress(run(sdb, "apps:destroy", "myapp", "--confirm", "myapp")) == \
        "Destroying myapp (including all add-ons)... done\n"
    assert progress(run(sdb, "apps:destroy", "test", "-c", "test")) == \
        "Destroying test (including all add-ons)... done\n"
    assert progress(run(sdb, "apps:destroy", "-a", "website-staging", "-c", "website-staging")) == \
        "Destroying website-staging (including all add-ons)... done\n"
    assert app_names(sdb) == ["website-prod"]


def test_destroy_aliases(sdb):
    assert progress(run(sdb, "destroy", "myapp", "-c", "myapp")) == \
        "Destroying myapp (including all add-ons)... done\n"
    assert progress(run(sdb, "apps:delete", "--app", "test", "--confirm", "test")) == \
        "Destroying test (including all add-ons)... done\n"
    assert app_names(sdb) == ["website-prod", "website-staging"]


def test_destroy_refusals_change_nothing(sdb):
    before, events = everything(sdb), queries.audit_count(sdb)
    assert failed(run(sdb, "apps:destroy", "myapp", "--app", "test", "-c", "myapp"), 2) == \
        "Error: Two apps given: myapp and --app test; give one. See 'teamaccess apps:destroy --help'."
    assert "No app specified" in failed(run(sdb, "apps:destroy", "-c", "myapp"), 2)
    assert failed(run(sdb, "apps:destroy", "myapp", "-c", "test")) == \
        "Error: Confirmation test did not match myapp. Aborted."
    assert "--confirm myapp" in failed(run(sdb, "apps:destroy", "myapp"))  # no terminal to ask on
    assert everything(sdb) == before and queries.audit_count(sdb) == events


def test_destroy_argument_wins_over_teamaccess_app(sdb):
    result = run(sdb, "apps:destroy", "test", "-c", "test", env={"TEAMACCESS_APP": "myapp"})
    assert progress(result) == "Destroying test (including all add-ons)... done\n"
    assert "myapp" in app_names(sdb)


# -- apps:transfer -l -c --bulk -------------------------------------------------------------------


def test_transfer_short_flags_and_the_locking_line(sdb):
    ops.create_app(sdb, JOE, "joe-app")
    assert progress(run(sdb, "apps:transfer", "acme", "-a", "joe-app", "-l", who="joe@acme.com")) == \
        "Transferring joe-app to acme... done\nLocking joe-app... done\n"
    assert next(a for a in queries.apps(sdb, "ada@acme.com", "acme") if a.name == "joe-app").locked
    ops.create_team(sdb, ops.Actor("bob@other.com"), "other")
    err = progress(run(sdb, "apps:transfer", "bob@other.com", "-a", "test", "-c", "test"))
    assert err.splitlines()[0] == "Transferring test to bob@other.com... done"
    assert "sam@freelance.dev" in err.splitlines()[1]  # the grants it removed: a note, on stderr


def test_transfer_without_lock_prints_no_locking_line(sdb):
    ops.create_app(sdb, JOE, "joe-app")
    assert progress(run(sdb, "apps:transfer", "acme", "--app", "joe-app", who="joe@acme.com")) == \
        "Transferring joe-app to acme... done\n"


def test_locked_transfer_to_an_account_is_refused_and_changes_nothing(sdb):
    ops.create_team(sdb, ops.Actor("bob@other.com"), "other")
    before = everything(sdb)
    line = failed(run(sdb, "apps:transfer", "bob@other.com", "-a", "test", "-l", "-c", "test"))
    assert "Only team apps can be locked" in line
    assert everything(sdb) == before


def _bulk_setup(db: Database) -> None:
    """joe has two personal apps; he is only a member of acme, so its apps aren't his to move."""
    ops.create_app(db, JOE, "joe-one")
    ops.create_app(db, JOE, "joe-two")
    ops.create_team(db, JOE, "joe-team")


def test_bulk_without_a_terminal_needs_confirm_and_changes_nothing(sdb):
    _bulk_setup(sdb)
    before, events = everything(sdb), queries.audit_count(sdb)
    line = failed(run(sdb, "apps:transfer", "acme", "--bulk", who="joe@acme.com"))
    assert "--confirm acme" in line and "all 2 of them" in line
    assert failed(run(sdb, "apps:transfer", "acme", "--bulk", "-c", "acmee", who="joe@acme.com")) == \
        "Error: Confirmation acmee did not match acme. Aborted."
    assert "drop --app" in failed(run(sdb, "apps:transfer", "acme", "--bulk", "-a", "joe-one",
                                      who="joe@acme.com"), 2)
    assert everything(sdb) == before and queries.audit_count(sdb) == events


def test_bulk_with_confirm_transfers_every_app_you_may_let_go(sdb):
    _bulk_setup(sdb)
    err = progress(run(sdb, "apps:transfer", "joe-team", "--bulk", "--confirm", "joe-team", "-l",
                       who="joe@acme.com"))
    # acme's apps are not joe's to move (he is a member there): only his personal apps go.
    assert err == (
        "Transferring applications to joe-team...\n"
        "Transferring joe-one... done\nLocking joe-one... done\n"
        "Transferring joe-two... done\nLocking joe-two... done\n"
    )
    moved = {a.name: a.locked for a in queries.apps(sdb, "joe@acme.com", "joe-team")}
    assert moved == {"joe-one": True, "joe-two": True}
    assert app_names(sdb) == ["myapp", "test", "website-prod", "website-staging"]


def test_bulk_admin_candidates_include_their_team_apps(sdb):
    ops.create_team(sdb, ADA, "other")
    err = progress(run(sdb, "apps:transfer", "other", "--bulk", "-c", "other"))
    assert err.splitlines()[0] == "Transferring applications to other..."
    assert app_names(sdb, "other") == ["myapp", "test", "website-prod", "website-staging"]
    assert app_names(sdb, "acme") == []


def test_bulk_on_a_terminal_asks_which_apps(sdb, monkeypatch):
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    _bulk_setup(sdb)
    result = run(sdb, "apps:transfer", "acme", "--bulk", who="joe@acme.com", input="9\n2\n")
    assert result.exit_code == 0 and result.stdout == ""
    assert "  1  joe-one (joe@acme.com)\n  2  joe-two (joe@acme.com)\n" in result.stderr
    assert "Give numbers from 1 to 2" in result.stderr  # 9 is not on the list: asked again
    assert result.stderr.endswith("Transferring joe-two... done\n")
    assert [a.name for a in queries.apps(sdb, "joe@acme.com") if a.team is None] == ["joe-one"]
    # --confirm on a terminal still shows the list: it names the recipient, not the apps
    stop = run(sdb, "apps:transfer", "acme", "--bulk", "-c", "acme", who="joe@acme.com",
               input="\n")
    assert "  1  joe-one (joe@acme.com)\n" in stop.stderr
    assert stop.exit_code == 1 and stop.stderr.endswith("Error: No apps chosen. Aborted.\n")
    assert [a.name for a in queries.apps(sdb, "joe@acme.com") if a.team is None] == ["joe-one"]


def test_bulk_reports_each_refusal_and_goes_on(sdb):
    _bulk_setup(sdb)
    ops.add_member(sdb, JOE, "joe-team", "val@acme.com", "viewer")
    ops.create_app(sdb, ops.Actor("val@acme.com"), "val-app")
    before, events = everything(sdb), queries.audit_count(sdb)
    # val is only a viewer of joe-team: the store refuses her transfer in, and says so.
    result = run(sdb, "apps:transfer", "joe-team", "--bulk", "-c", "joe-team", who="val@acme.com")
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "Transferring applications to joe-team..."
    assert lines[1] == "Transferring val-app... !"  # which app failed, as Heroku marks it
    assert lines[2].startswith("Error: ") and "viewer" in lines[2]
    assert everything(sdb) == before
    assert queries.audit_count(sdb) == events + 1  # one denied event, written by the store


def test_bulk_with_nothing_to_transfer(sdb):
    assert "no apps you may transfer" in failed(
        run(sdb, "apps:transfer", "acme", "--bulk", "-c", "acme", who="val@acme.com"))


# -- aliases, help, whoami, auth:2fa ----------------------------------------------------------------


def test_aliases_do_what_their_commands_do(sdb):
    assert progress(run(sdb, "lock", "--app", "myapp")) == "Locking myapp... done\n"
    assert progress(run(sdb, "unlock", "-a", "myapp")) == "Unlocking myapp... done\n"
    assert progress(run(sdb, "join", "-a", "myapp", who="val@acme.com")) == "Joining myapp... done\n"
    assert progress(run(sdb, "leave", "-a", "myapp", who="val@acme.com")) == "Leaving myapp... done\n"
    assert progress(run(sdb, "create", "newapp", "--team", "acme")) == \
        "Creating newapp in team acme... done\n"
    listing = "=== Apps in team acme\nmyapp\nnewapp\ntest\nwebsite-prod (locked)\nwebsite-staging\n"
    for name in ("apps", "list", "apps:list"):
        assert data(run(sdb, name, "--team", "acme")) == listing


def test_an_alias_reports_usage_errors_under_its_own_name(sdb):
    result = run(sdb, "lock")
    assert failed(result, 2).startswith("Error: Missing option '--app'")
    assert "See 'teamaccess lock --help'." in result.stderr
    assert "(or set TEAMACCESS_APP)" in result.stderr  # the stand-in is named where it's missing


def test_aliases_stay_out_of_the_command_list_and_show_in_help(sdb):
    listing = data(run(sdb, "--help", who=None))
    commands = {line.split()[0] for line in listing.split("Commands:")[1].splitlines() if line.strip()}
    assert {"apps:lock", "apps:destroy", "help", "auth:whoami", "auth:2fa"} <= commands
    assert not {"lock", "destroy", "apps:delete", "list", "apps:list", "whoami"} & commands
    assert "Aliases: destroy, apps:delete." in data(run(sdb, "apps:destroy", "--help", who=None))
    assert "Aliases: list, apps:list." in data(run(sdb, "apps", "--help", who=None))


def test_help_command(sdb):
    assert data(run(sdb, "help", who=None)) == data(run(sdb, "--help", who=None))
    assert data(run(sdb, "help", "apps:lock", who=None)) == data(run(sdb, "apps:lock", "--help", who=None))
    assert data(run(sdb, "help", "lock", who=None)) == data(run(sdb, "lock", "--help", who=None))
    members = data(run(sdb, "help", "members", who=None))
    assert members.startswith("Usage: teamaccess members [OPTIONS]")
    assert "Commands in members:" in members and "members:add" in members
    auth = data(run(sdb, "help", "auth", who=None))  # a topic without a command of its name
    assert auth.startswith("Commands in auth:") and "auth:2fa" in auth and "auth:whoami" in auth
    assert failed(run(sdb, "help", "nope", who=None), 2).startswith(
        "Error: No such command or topic: nope. Run 'teamaccess help' for the list.")


def test_whoami(sdb, monkeypatch):
    assert data(run(sdb, "whoami", who="joe@acme.com")) == "joe@acme.com\n"
    assert data(run(sdb, "auth:whoami")) == "ada@acme.com\n"
    monkeypatch.setattr("teamaccess.store.identity.os_login", lambda: "ha_nobody")
    assert "No account is bound to your login 'ha_nobody'" in failed(run(sdb, "whoami", who=None))


def test_auth_2fa(sdb):
    assert data(run(sdb, "auth:2fa", who="joe@acme.com")) == "Two-factor authentication is not enabled\n"
    progress(run(sdb, "account:mfa", "--enable", who="joe@acme.com"))
    assert data(run(sdb, "auth:2fa", who="joe@acme.com")) == "Two-factor authentication is enabled\n"
    assert data(run(sdb, "2fa", who="joe@acme.com")) == "Two-factor authentication is enabled\n"
    assert "No account nobody@acme.com" in failed(run(sdb, "auth:2fa", who="nobody@acme.com"))


# -- TEAMACCESS_APP and TEAMACCESS_TEAM -------------------------------------------------------------


def test_teamaccess_app_stands_in_for_app(sdb):
    env = {"TEAMACCESS_APP": "myapp"}
    assert progress(run(sdb, "apps:lock", env=env)) == "Locking myapp... done\n"
    assert progress(run(sdb, "unlock", env=env)) == "Unlocking myapp... done\n"
    assert progress(run(sdb, "apps:lock", "--app", "test", env=env)) == "Locking test... done\n"
    assert "ada@acme.com" in data(run(sdb, "access", env=env))
    assert progress(run(sdb, "apps:destroy", "-c", "myapp", env=env)) == \
        "Destroying myapp (including all add-ons)... done\n"
    assert app_names(sdb) == ["test", "website-prod", "website-staging"]


def test_teamaccess_team_stands_in_for_team(sdb):
    env = {"TEAMACCESS_TEAM": "acme-widgets"}
    assert progress(run(sdb, "members:add", "joe@acme.com", "--role", "member", env=env)) == \
        "Adding joe@acme.com to acme-widgets as member... done\n"
    assert progress(run(sdb, "create", "widget-app", env=env)) == \
        "Creating widget-app in team acme-widgets... done\n"
    assert data(run(sdb, "apps", env=env)) == "=== Apps in team acme-widgets\nwidget-app\n"
    assert [t["name"] for t in json.loads(data(run(sdb, "teams", "--json", env=env)))
            if t["default"]] == ["acme-widgets"]


# -- JSON: ids, timestamps, Heroku's fields -----------------------------------------------------------

JSON_LISTS = [
    ("members", "--team", "acme"),
    ("apps",),
    ("apps", "--team", "acme"),
    ("teams",),
    ("access", "--app", "test"),
    ("access", "--app", "ada-own"),
    ("members:access", "sam@freelance.dev", "--team", "acme"),
    ("audit", "--team", "acme"),
]


def _ids(db: Database) -> dict[tuple[str, ...], list]:
    out = {}
    for argv in JSON_LISTS:
        rows = json.loads(data(run(db, *argv, "--json")))
        assert rows, argv
        out[argv] = [r["id"] for r in rows]
    return out


def test_every_json_list_has_ids_stable_across_runs(sdb, tmp_path):
    ops.create_app(sdb, ADA, "ada-own")
    first = _ids(sdb)
    for argv, ids in first.items():
        assert all(i is not None for i in ids) and len(set(ids)) == len(ids), argv
        if argv[0] != "audit":  # the audit log keeps its own integer ids
            assert all(UUID.match(i) for i in ids), argv
    sdb.close()
    again = Database(sdb.path)  # a fresh run: a new connection, nothing cached
    assert _ids(again) == first
    # a change elsewhere doesn't move anyone's id; a backup copy has the same ids
    ops.add_member(again, ADA, "acme", "new@acme.com", "viewer")
    ops.lock_app(again, ADA, "test")
    ops.update_access(again, ADA, "test", "sam@freelance.dev", "manage")
    members = json.loads(data(run(again, "members", "--team", "acme", "--json")))
    old = dict(zip((m["email"] for m in members if m["email"] != "new@acme.com"),
                   first[("members", "--team", "acme")], strict=True))
    assert {m["email"]: m["id"] for m in members if m["email"] in old} == old
    copy = Database(again.backup(tmp_path / "copy.db"))
    assert _ids(copy) == _ids(again)
    copy.close()
    again.close()


def test_ids_differ_between_databases_with_the_same_rows(tmp_path):
    one, two = Database(tmp_path / "one.db"), Database(tmp_path / "two.db")
    for db in (one, two):
        seed(db)
    assert json.loads(data(run(one, "apps", "--json")))[0]["id"] != \
        json.loads(data(run(two, "apps", "--json")))[0]["id"]
    one.close()
    two.close()


def test_ids_are_kind_specific(sdb):
    team = json.loads(data(run(sdb, "teams", "--json")))
    apps = json.loads(data(run(sdb, "apps", "--json")))
    members = json.loads(data(run(sdb, "members", "--team", "acme", "--json")))
    access = json.loads(data(run(sdb, "access", "-a", "test", "--json")))
    every = [r["id"] for rows in (team, apps, members, access) for r in rows]
    assert len(every) == len(set(every))


def test_teams_json_has_heroku_fields(sdb):
    teams = json.loads(data(run(sdb, "teams", "--json")))
    assert [(t["name"], t["role"], t["type"], t["default"]) for t in teams] == [
        ("acme", "admin", "enterprise", False), ("acme-widgets", "admin", "enterprise", False)]
    assert all(t["created_at"].endswith("Z") and t["updated_at"] for t in teams)
    only = json.loads(data(run(sdb, "teams", "--json", who="joe@acme.com")))
    assert [(t["name"], t["role"], t["default"]) for t in only] == [("acme", "member", True)]


def test_apps_json_owner_is_never_null(sdb):
    ops.create_app(sdb, ADA, "ada-own")
    owners = {a["name"]: a["owner"] for a in json.loads(data(run(sdb, "apps", "--json")))}
    assert owners["ada-own"] == {"email": "ada@acme.com"}
    assert owners["myapp"] == {"email": "acme@herokumanager.com"}
    assert all(o is not None for o in owners.values())
    prod = next(a for a in json.loads(data(run(sdb, "apps", "--json"))) if a["name"] == "website-prod")
    assert prod["created_at"] < prod["updated_at"] == prod["locked_at"]  # locking moved it


def test_members_json_has_id_and_timestamps(sdb):
    val = json.loads(data(run(sdb, "members", "--team", "acme", "--role", "viewer", "--json")))[0]
    assert UUID.match(val["id"]) and val["email"] == "val@acme.com"
    assert val["created_at"] == val["updated_at"] and val["created_at"].endswith("Z")


def test_access_json_calls_a_personal_apps_owner_owner(sdb):
    ops.create_app(sdb, ADA, "ada-own")
    table = data(run(sdb, "access", "--app", "ada-own")).splitlines()
    assert table[2].split()[:2] == ["ada@acme.com", "owner"]
    rows = json.loads(data(run(sdb, "access", "--app", "ada-own", "--json")))
    assert [(r["email"], r["role"]) for r in rows] == [("ada@acme.com", "owner")]
    team = {r["email"]: r for r in json.loads(data(run(sdb, "access", "-a", "test", "--json")))}
    assert team["sam@freelance.dev"]["role"] == "collaborator"
    assert team["sam@freelance.dev"]["created_at"].endswith("Z")  # the grant's
    assert team["joe@acme.com"]["role"] == "member" and team["joe@acme.com"]["created_at"] is None


@pytest.mark.postgres
def test_ids_are_stable_on_postgresql(pg_db):
    seed(pg_db)
    first = {argv: json.loads(data(run(pg_db, *argv, "--json")))
             for argv in (("members", "--team", "acme"), ("apps",), ("teams",),
                          ("access", "--app", "test"))}
    for argv, rows in first.items():
        assert all(UUID.match(r["id"]) for r in rows), argv
        assert json.loads(data(run(pg_db, *argv, "--json"))) == rows, argv


def test_public_id_is_uuid5_of_kind_key_and_time_in_any_zone():
    import uuid
    from datetime import UTC, datetime, timedelta, timezone

    from teamaccess.store.ids import NAMESPACE, public_id

    naive = datetime(2026, 3, 4, 5, 6, 7, 89)
    expected = str(uuid.uuid5(NAMESPACE, "app/42/2026-03-04T05:06:07.000089"))
    assert public_id("app", 42, naive) == expected
    assert public_id("app", 42, naive.replace(tzinfo=UTC)) == expected
    two_hours_east = (naive + timedelta(hours=2)).replace(tzinfo=timezone(timedelta(hours=2)))
    assert public_id("app", 42, two_hours_east) == expected
    assert public_id("app", 43, naive) != expected != public_id("team", 42, naive)
    assert public_id("app", 42, naive + timedelta(microseconds=1)) != expected


def test_a_long_target_in_a_refused_attempt_is_cut_in_the_audit_table(sdb):
    long_email = "x" * 290 + "@acme.com"  # over 254 characters: refused, and logged
    refused = run(sdb, "members:add", long_email, "--team", "acme", "--role", "member")
    assert refused.exit_code == 1
    table = data(run(sdb, "audit", "--team", "acme", "-n", "1")).splitlines()
    assert "x" * 59 + "\u2026" in table[2].split()  # Target, cut with an ellipsis
    assert table[2].index(" denied ") < 200  # the outcome is no longer pushed 300 columns right
    whole = json.loads(data(run(sdb, "audit", "--team", "acme", "-n", "1", "--json")))
    assert len(whole[0]["target"]["email"]) > 250  # --json keeps what the log holds
