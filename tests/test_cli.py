"""The command line through click's CliRunner: every command's output, refusals, --json and exits."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from conftest import data as ok
from conftest import failed
from conftest import progress as done_ok
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo
from teamaccess.tui import cli as cli_module
from teamaccess.tui import errorlog
from teamaccess.tui.cli import cli

ADA = ops.Actor("ada@acme.com", "ada")




@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TEAMACCESS_DB", "TEAMACCESS_AS", "TEAMACCESS_TEAM"):
        monkeypatch.delenv(var, raising=False)


def run(db: Database, *args: str, who: str | None = "ada@acme.com", input: str | None = None,
        env: dict[str, str] | None = None):
    """Invoke the real ``cli`` with --db (and --as) after the command, as Heroku users type."""
    extra = ["--db", str(db.path)] + (["--as", who] if who else [])
    return CliRunner().invoke(cli, [*args, *extra], input=input, env=env, prog_name="teamaccess")





def roster(db, team="acme"):
    return [(r.email, r.role) for r in queries.roster(db, "ada@acme.com", team)]


# -- the seed's transcript, in process --------------------------------------------------------


def test_seed_transcript_lines(sdb):
    assert done_ok(run(sdb, "members:add", "joe@acme.com", "--team", "acme-widgets", "--role", "member")) == \
        "Adding joe@acme.com to acme-widgets as member... done\n"
    assert done_ok(run(sdb, "members:set", "joe@acme.com", "--team", "acme-widgets", "--role", "admin")) == \
        "Adding joe@acme.com to acme-widgets as admin... done\n"
    assert done_ok(run(sdb, "members:remove", "joe@acme.com", "--team", "acme-widgets")) == \
        "Removing joe@acme.com from acme-widgets... done\n"
    assert done_ok(run(sdb, "apps:lock", "--app", "myapp")) == "Locking myapp... done\n"
    assert ok(run(sdb, "list", "--team", "acme")) == (
        "=== Apps in team acme\nmyapp (locked)\ntest\nwebsite-prod (locked)\nwebsite-staging\n"
    )
    assert done_ok(run(sdb, "apps:unlock", "--app", "myapp")) == "Unlocking myapp... done\n"


def test_lock_errors_read_as_the_spec(sdb):
    before = queries.audit_count(sdb)
    assert failed(run(sdb, "apps:lock", "--app", "website-prod")) == \
        "Error: cannot lock website-prod. This app is already locked."
    assert failed(run(sdb, "apps:unlock", "--app", "myapp")) == \
        "Error: cannot unlock myapp. This app is not locked."
    assert queries.audit_count(sdb) == before + 2  # one denied event each
    locked = {a.name: a.locked for a in queries.apps(sdb, "ada@acme.com", "acme")}
    assert locked == {"myapp": False, "test": False, "website-prod": True, "website-staging": False}


# -- members ---------------------------------------------------------------------------------


def test_members_table_shows_role_and_mfa(sdb):
    ops.set_mfa(sdb, ops.Actor("joe@acme.com"), True)
    lines = ok(run(sdb, "members", "--team", "acme")).splitlines()
    assert lines[0].split() == ["Email", "Role", "MFA", "Apps"]
    assert set(lines[1]) <= {"─", " "}
    rows = [line.split() for line in lines[2:]]
    # sam holds a grant on a team app without a membership: a collaborator (SPEC "Words")
    assert rows == [["ada@acme.com", "admin", "disabled"], ["joe@acme.com", "member", "enabled"],
                    ["sam@freelance.dev", "collaborator", "disabled", "test"],
                    ["val@acme.com", "viewer", "disabled"]]


def test_members_role_filter_and_json(sdb):
    out = json.loads(ok(run(sdb, "members", "--team", "acme", "--role", "viewer", "--json")))
    assert [(m["email"], m["role"], m["two_factor_authentication"]) for m in out] == [
        ("val@acme.com", "viewer", False)
    ]
    assert out[0]["user"]["email"] == "val@acme.com"
    assert out[0]["created_at"].endswith("Z")


def test_members_refused_for_a_collaborator(sdb):
    line = failed(run(sdb, "members", "--team", "acme", who="sam@freelance.dev"))
    assert "collaborator" in line and "admin or member or viewer" in line


def test_members_add_by_a_member_is_refused_and_changes_nothing(sdb):
    before, events = roster(sdb), queries.audit_count(sdb)
    line = failed(run(sdb, "members:add", "eve@acme.com", "--team", "acme", "--role", "admin",
                      who="joe@acme.com"))
    assert "must be a team admin" in line
    assert roster(sdb) == before
    assert queries.audit_count(sdb) == events + 1
    assert queries.audit(sdb, "ada@acme.com", "acme", limit=1)[0].outcome == "denied"


def test_members_add_bad_role_names_the_valid_ones(sdb):
    before = roster(sdb)
    assert failed(run(sdb, "members:add", "eve@acme.com", "--team", "acme", "--role", "owner")) == \
        "Error: Invalid role 'owner': use one of admin, member, viewer."
    assert roster(sdb) == before


def test_members_set_viewer_is_refused(sdb):
    line = failed(run(sdb, "members:set", "val@acme.com", "--team", "acme", "--role", "viewer"))
    assert "admin, member" in line
    assert ("val@acme.com", "viewer") in roster(sdb)


def test_members_set_collaborator_must_be_added_first(sdb):
    line = failed(run(sdb, "members:set", "sam@freelance.dev", "--team", "acme", "--role", "member"))
    assert "only a collaborator" in line and "members:add" in line


def test_members_remove_lists_kept_grants_after_the_exact_line(sdb):
    ops.grant_access(sdb, ADA, "myapp", "joe@acme.com", "deploy")
    out = done_ok(run(sdb, "members:remove", "joe@acme.com", "--team", "acme")).splitlines()
    assert out[0] == "Removing joe@acme.com from acme... done"
    assert "myapp" in out[1] and "collaborator" in out[1]
    assert "access:remove joe@acme.com" in out[2]
    assert dict(roster(sdb))["joe@acme.com"] == "collaborator"  # no membership, a grant kept


def test_last_admin_cannot_be_removed(sdb):
    line = failed(run(sdb, "members:remove", "ada@acme.com", "--team", "acme"))
    assert "only admin" in line
    assert ("ada@acme.com", "admin") in roster(sdb)


def test_members_access_lists_apps_with_sources(sdb):
    out = ok(run(sdb, "members:access", "joe@acme.com", "--team", "acme")).splitlines()
    assert out[0] == "=== joe@acme.com in acme"
    body = "\n".join(out[3:])
    assert "myapp" in body and "member of acme, app unlocked (view)" in body
    # joe joined after website-prod was locked: no row for it
    assert "website-prod" not in body
    data = json.loads(ok(run(sdb, "members:access", "sam@freelance.dev", "--team", "acme", "--json")))
    assert [d["app"]["name"] for d in data] == ["test"]
    assert [p["name"] for p in data[0]["permissions"]] == ["deploy", "view"]
    assert data[0]["sources"][0]["source"] == "explicit grant"


# -- access ----------------------------------------------------------------------------------


def test_access_table_and_json(sdb):
    lines = ok(run(sdb, "access", "--app", "test")).splitlines()
    assert lines[0].split() == ["Email", "Role", "Permissions", "MFA", "Expires"]
    by_email = {line.split()[0]: line for line in lines[2:]}
    assert "deploy, manage, operate, view" in by_email["ada@acme.com"]
    assert "collaborator  deploy, view" in by_email["sam@freelance.dev"]
    data = json.loads(ok(run(sdb, "access", "--app", "test", "--json")))
    sam = next(d for d in data if d["email"] == "sam@freelance.dev")
    assert sam["user"] == {"email": "sam@freelance.dev", "two_factor_authentication": False}
    assert sam["role"] == "collaborator"
    assert sam["permissions"] == [{"name": "deploy"}, {"name": "view"}]
    assert sam["app"] == {"name": "test"} and sam["grant"] == ["deploy", "view"]


def test_access_add_prints_sorted_permissions(sdb):
    assert done_ok(run(sdb, "access:add", "li@partner.co", "--app", "myapp",
                       "--permissions", "operate,deploy")) == \
        "Adding li@partner.co access to the app myapp with deploy, operate, view permissions... done\n"
    why = {r.permission: r.held for r in queries.why(sdb, "ada@acme.com", "myapp", "li@partner.co")}
    assert why == {"view": True, "deploy": True, "operate": True, "manage": False}


def test_access_add_twice_and_to_admin_are_refused(sdb):
    events = queries.audit_count(sdb)
    assert "use access:update" in failed(run(sdb, "access:add", "sam@freelance.dev", "--app", "test"))
    assert "every permission as a team admin" in failed(
        run(sdb, "access:add", "ada@acme.com", "--app", "test"))
    assert queries.audit_count(sdb) == events + 2
    row = next(r for r in queries.app_access(sdb, "ada@acme.com", "test").rows
               if r.email == "sam@freelance.dev")
    assert row.grant == ("view", "deploy")


def test_access_add_unknown_permission(sdb):
    line = failed(run(sdb, "access:add", "li@partner.co", "--app", "myapp", "--permissions", "root"))
    assert "Invalid permission 'root'" in line and "view, deploy, operate, manage" in line


def test_access_update_and_remove(sdb):
    assert done_ok(run(sdb, "access:update", "sam@freelance.dev", "--app", "test", "-p", "manage")) == \
        "Updating sam@freelance.dev in application test with manage,view permissions... done\n"
    assert done_ok(run(sdb, "access:remove", "sam@freelance.dev", "--app", "test")) == \
        "Removing sam@freelance.dev access from the app test... done\n"
    assert all(r.email != "sam@freelance.dev"
               for r in queries.app_access(sdb, "ada@acme.com", "test").rows)


def test_access_by_member_without_manage_is_refused(sdb):
    line = failed(run(sdb, "access:add", "li@partner.co", "--app", "myapp", who="joe@acme.com"))
    assert "manage" in line


def test_access_why(sdb):
    out = ok(run(sdb, "access:why", "joe@acme.com", "--app", "website-prod")).splitlines()
    assert out[0] == "=== joe@acme.com on website-prod"
    rows = {line.split()[0]: line for line in out[3:]}
    assert rows["view"].split()[1] == "no" and "locked" in rows["view"]
    data = json.loads(ok(run(sdb, "access:why", "ada@acme.com", "--app", "test", "--json")))
    assert all(d["held"] for d in data) and data[0]["reasons"] == ["admin of acme"]


# -- apps ------------------------------------------------------------------------------------


def test_apps_json_has_api_names(sdb):
    data = json.loads(ok(run(sdb, "apps", "--team", "acme", "--json")))
    assert [a["name"] for a in data] == ["myapp", "test", "website-prod", "website-staging"]
    prod = data[2]
    assert prod["locked"] is True and prod["team"] == {"name": "acme"}
    assert prod["owner"] == {"email": "acme@herokumanager.com"}  # as Heroku reports a team app
    assert prod["permissions"] == ["deploy", "manage", "operate", "view"]


def test_apps_without_team_groups_personal_and_team_apps(sdb):
    ops.create_app(sdb, ADA, "ada-sandbox")
    out = ok(run(sdb, "apps")).splitlines()
    assert out[:3] == ["=== ada@acme.com Apps", "ada-sandbox", ""]
    assert out[3] == "=== Apps in team acme"
    collab = ok(run(sdb, "apps", who="sam@freelance.dev")).splitlines()
    assert collab == ["=== Apps in team acme", "test"]


def test_apps_collaborator_sees_only_granted(sdb):
    assert ok(run(sdb, "list", "--team", "acme", who="sam@freelance.dev")) == \
        "=== Apps in team acme\ntest\n"


def test_apps_create_in_team_and_locked(sdb):
    assert done_ok(run(sdb, "apps:create", "newapp", "--team", "acme", "--locked", who="joe@acme.com")) == \
        "Creating newapp in team acme (locked)... done\n"
    row = next(a for a in queries.apps(sdb, "joe@acme.com", "acme") if a.name == "newapp")
    assert row.locked and row.permissions == ("view", "deploy", "operate", "manage")


def test_apps_create_refused_for_viewer(sdb):
    line = failed(run(sdb, "apps:create", "newapp", "--team", "acme", who="val@acme.com"))
    assert "viewer" in line
    assert "newapp" not in [a.name for a in queries.apps(sdb, "ada@acme.com", "acme")]


def test_transfer_out_needs_confirmation_without_a_terminal(sdb):
    ops.create_team(sdb, ops.Actor("bob@other.com"), "other")
    line = failed(run(sdb, "apps:transfer", "bob@other.com", "--app", "test"))
    assert "--confirm test" in line
    assert failed(run(sdb, "apps:transfer", "bob@other.com", "--app", "test", "--confirm", "tset")) == \
        "Error: Confirmation tset did not match test. Aborted."
    assert [a.team for a in queries.apps(sdb, "ada@acme.com", "acme") if a.name == "test"] == ["acme"]


def test_transfer_out_with_confirm_removes_grants(sdb):
    ops.create_team(sdb, ops.Actor("bob@other.com"), "other")
    out = done_ok(run(sdb, "apps:transfer", "bob@other.com", "--app", "test", "--confirm", "test"))
    assert out.splitlines()[0] == "Transferring test to bob@other.com... done"
    assert "sam@freelance.dev" in out.splitlines()[1]
    assert [a.owner for a in queries.apps(sdb, "bob@other.com") if a.name == "test"] == ["bob@other.com"]


def test_transfer_out_prompt_on_a_terminal(sdb, monkeypatch):
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    ops.create_team(sdb, ops.Actor("bob@other.com"), "other")
    wrong = run(sdb, "apps:transfer", "bob@other.com", "--app", "test", input="nope\n")
    assert wrong.exit_code == 1 and "did not match test. Aborted." in wrong.stderr
    assert [a.team for a in queries.apps(sdb, "ada@acme.com", "acme") if a.name == "test"] == ["acme"]
    right = run(sdb, "apps:transfer", "bob@other.com", "--app", "test", input="test\n")
    assert right.exit_code == 0 and "To proceed, type test" in right.stderr
    assert "Transferring test to bob@other.com... done\n" in right.stderr and right.stdout == ""


def test_transfer_between_teams_needs_confirmation(sdb):
    ops.create_team(sdb, ADA, "other")
    assert "--confirm test" in failed(run(sdb, "apps:transfer", "other", "--app", "test"))
    assert done_ok(run(sdb, "apps:transfer", "other", "--app", "test", "--confirm", "test")).startswith(
        "Transferring test to other... done")
    assert [a.team for a in queries.apps(sdb, "ada@acme.com") if a.name == "test"] == ["other"]


def test_transfer_into_team_needs_no_confirmation(sdb):
    ops.create_app(sdb, ops.Actor("joe@acme.com"), "joe-app")
    assert done_ok(run(sdb, "apps:transfer", "acme", "--app", "joe-app", "--locked",
                       who="joe@acme.com")) == \
        "Transferring joe-app to acme... done\nLocking joe-app... done\n"
    row = next(a for a in queries.apps(sdb, "joe@acme.com", "acme") if a.name == "joe-app")
    assert row.locked and "manage" in row.permissions


def test_join_and_leave(sdb):
    assert done_ok(run(sdb, "apps:join", "--app", "myapp", who="val@acme.com")) == "Joining myapp... done\n"
    assert done_ok(run(sdb, "apps:leave", "--app", "myapp", who="val@acme.com")) == "Leaving myapp... done\n"
    assert "already has every permission" in failed(run(sdb, "apps:join", "--app", "myapp"))
    assert "locked" in failed(run(sdb, "apps:join", "--app", "website-prod", who="val@acme.com"))


def test_destroy_needs_confirm(sdb):
    line = failed(run(sdb, "apps:destroy", "--app", "myapp"))
    assert "--confirm myapp" in line
    assert "myapp" in [a.name for a in queries.apps(sdb, "ada@acme.com", "acme")]
    assert done_ok(run(sdb, "apps:destroy", "--app", "myapp", "--confirm", "myapp")) == \
        "Destroying myapp (including all add-ons)... done\n"
    assert "myapp" not in [a.name for a in queries.apps(sdb, "ada@acme.com", "acme")]


def test_destroy_refused_for_member_changes_nothing(sdb):
    line = failed(run(sdb, "apps:destroy", "--app", "myapp", "--confirm", "myapp", who="joe@acme.com"))
    assert "may destroy" in line
    assert "myapp" in [a.name for a in queries.apps(sdb, "ada@acme.com", "acme")]


def test_unknown_app(sdb):
    assert failed(run(sdb, "apps:lock", "--app", "nope")) == \
        "Error: Couldn't find that app: nope. Run 'teamaccess apps' to list yours."


# -- teams, accounts -------------------------------------------------------------------------


def test_teams_and_create_and_rename(sdb):
    assert done_ok(run(sdb, "teams:create", "new-team")) == "Creating new-team... done\n"
    lines = ok(run(sdb, "teams")).splitlines()
    assert [line.split() for line in lines[2:]] == [["acme", "admin"], ["acme-widgets", "admin"],
                                                   ["new-team", "admin"]]
    assert done_ok(run(sdb, "teams:rename", "renamed", "--team", "new-team")) == \
        "Renaming new-team to renamed... done\n"
    data = json.loads(ok(run(sdb, "teams", "--json", who="sam@freelance.dev")))
    assert [(t["name"], t["role"], t["type"], t["default"]) for t in data] == [
        ("acme", "collaborator", "enterprise", True)]


def test_rename_refused_for_member(sdb):
    assert "must be a team admin" in failed(
        run(sdb, "teams:rename", "x-team", "--team", "acme", who="joe@acme.com"))
    assert [t.name for t in queries.teams(sdb, "ada@acme.com")] == ["acme", "acme-widgets"]


def test_account_mfa(sdb):
    assert ok(run(sdb, "account:mfa", who="joe@acme.com")) == "MFA is disabled for joe@acme.com.\n"
    assert done_ok(run(sdb, "account:mfa", "--enable", who="joe@acme.com")) == \
        "Enabling MFA for joe@acme.com... done\n"
    assert "already enabled" in failed(run(sdb, "account:mfa", "--enable", who="joe@acme.com"))
    assert ok(run(sdb, "account:mfa", who="joe@acme.com")) == "MFA is enabled for joe@acme.com.\n"


def test_accounts_bind_then_act_without_as(sdb, monkeypatch):
    monkeypatch.setattr("teamaccess.store.identity.os_login", lambda: "ada")
    assert done_ok(run(sdb, "accounts:bind", "ada", "ada@acme.com")) == \
        "Binding login ada to ada@acme.com... done\n"
    assert ok(run(sdb, "teams", who=None)).splitlines()[2].split() == ["acme", "admin"]


# -- team views ------------------------------------------------------------------------------


def test_audit_table_and_json(sdb):
    lines = ok(run(sdb, "audit", "--team", "acme", "-n", "3")).splitlines()
    assert lines[0].split()[:4] == ["When", "Actor", "Via", "Action"]
    assert len(lines) == 5
    # the OS login each event was made under is shown beside the account (issue 11)
    newest = queries.audit(sdb, "ada@acme.com", "acme", limit=1)[0]
    assert lines[2].split()[1:3] == ["ada@acme.com", newest.actor_login or "?"]
    data = json.loads(ok(run(sdb, "audit", "--team", "acme", "--json")))
    assert data[0]["action"] == "collaborator.create"
    assert data[0]["actor"]["email"] == "ada@acme.com" and data[0]["outcome"] == "ok"
    assert "must be a team admin" in failed(run(sdb, "audit", "--team", "acme", who="joe@acme.com"))


def test_resources_and_billing_on_the_demo(demo_db):
    res = json.loads(ok(run(demo_db, "resources", "--team", "acme-widgets", "--json",
                            who="joe@acme.com")))
    assert {"app", "kind", "name", "plan", "quantity", "monthly_cents"} <= set(res[0])
    bill = json.loads(ok(run(demo_db, "billing", "--team", "acme-widgets", "--json")))
    assert bill["total_cents"] == sum(a["monthly_cents"] for a in bill["apps"]) > 0
    text = ok(run(demo_db, "billing", "--team", "acme-widgets"))
    assert text.splitlines()[-1].startswith("Total: $")
    assert "must be a team admin" in failed(
        run(demo_db, "billing", "--team", "acme-widgets", who="joe@acme.com"))
    assert "collaborator" in failed(
        run(demo_db, "resources", "--team", "acme-widgets", who="sam@freelance.dev"))


# -- import / export / backup ----------------------------------------------------------------


def test_export_import_round_trip_through_the_cli(demo_db, tmp_path):
    first = tmp_path / "first.json"
    assert done_ok(run(demo_db, "export", "--team", "acme-widgets", "-o", str(first))) == \
        f"Exporting acme-widgets to {first}... done\n"
    empty = Database(tmp_path / "empty.db")
    out = done_ok(run(empty, "import", str(first))).splitlines()
    assert out[0] == f"Importing acme-widgets from {first}... done"
    assert out[1] == "Added 21 team users, 12 apps and 20 grants to the new team acme-widgets."
    again = json.loads(ok(run(empty, "export", "--team", "acme-widgets")))
    expected = json.loads(first.read_text())
    # MFA and names are each account's own: an import never sets them (issue 11 item 4)
    for row in expected["members"]:
        row["two_factor_authentication"], row["user"]["name"] = False, None
    for rows in expected["access"].values():
        for row in rows:
            row["user"]["two_factor_authentication"] = False
    assert again == expected
    empty.close()


def test_import_bad_row_names_it_and_changes_nothing(sdb, tmp_path):
    doc = {"team": "fresh", "members": [
        {"email": "a@acme.com", "role": "member"}, {"email": "b@acme.com", "role": "member"},
        {"email": "c@acme.com", "role": "member"}, {"email": "not-an-email", "role": "member"}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    events = queries.audit_count(sdb)
    line = failed(run(sdb, "import", str(path)))
    assert line.startswith("Error: members[3].email: Invalid email 'not-an-email'")
    assert [t.name for t in queries.teams(sdb, "ada@acme.com")] == ["acme", "acme-widgets"]
    assert queries.account(sdb, "a@acme.com") is None
    assert queries.audit_count(sdb) == events + 1


def test_import_not_json_and_missing_file(sdb, tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{nope")
    assert "is not JSON (line 1 column 2" in failed(run(sdb, "import", str(path)))
    assert "Can't read" in failed(run(sdb, "import", str(tmp_path / "missing.json")))


def test_import_into_existing_team_needs_its_admin(sdb, tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"team": "acme", "members": [{"email": "eve@x.com", "role": "admin"}]}))
    before = roster(sdb)
    assert "must be a team admin" in failed(run(sdb, "import", str(path), who="joe@acme.com"))
    assert roster(sdb) == before


def test_import_reads_stdin(sdb):
    doc = json.dumps({"team": "acme", "members": [{"email": "new@acme.com", "role": "viewer"}]})
    out = done_ok(run(sdb, "import", "-", input=doc)).splitlines()
    assert out == ["Importing acme from -... done",
                   "Added 1 team user, 0 apps and 0 grants to acme."]
    assert ("new@acme.com", "viewer") in roster(sdb)


def test_backup(sdb, tmp_path):
    dest = tmp_path / "copy.db"
    assert done_ok(run(sdb, "backup", str(dest), who=None)) == f"Backing up to {dest}... done\n"
    copy = Database(dest)
    assert roster(copy) == roster(sdb)
    copy.close()
    assert "exists already" in failed(run(sdb, "backup", str(dest), who=None))


# -- who, where, which team ------------------------------------------------------------------


def test_no_actor_is_one_line_saying_how_to_fix(sdb, monkeypatch):
    monkeypatch.setattr("teamaccess.store.identity.os_login", lambda: "nobody-here")
    line = failed(run(sdb, "teams", who=None))
    assert "No account is bound to your login 'nobody-here'" in line and "--as EMAIL" in line


def test_bad_as_email_says_which_setting(sdb):
    assert failed(run(sdb, "teams", who="not an email")).startswith(
        "Error: --as/TEAMACCESS_AS: Invalid email 'not an email'")


def test_global_options_before_and_after_the_command(sdb):
    before = CliRunner().invoke(cli, ["--db", str(sdb.path), "--as", "joe@acme.com", "teams"])
    after = run(sdb, "teams", who="joe@acme.com")
    assert ok(before) == ok(after) and "member" in ok(before)
    env = CliRunner().invoke(cli, ["teams"], env={"TEAMACCESS_DB": str(sdb.path),
                                                  "TEAMACCESS_AS": "joe@acme.com"})
    assert ok(env) == ok(after)


def test_team_defaults(sdb):
    # joe belongs to acme only
    assert ok(run(sdb, "members", who="joe@acme.com")).count("@acme.com") == 3
    line = failed(run(sdb, "members"), code=2)
    assert "Which team? You belong to acme, acme-widgets" in line
    assert ok(run(sdb, "members", env={"TEAMACCESS_TEAM": "acme-widgets"})).count("@") == 1
    assert "belong to none" in failed(run(sdb, "members", who="nobody@x.com"), code=2)


def test_usage_errors_exit_2_on_one_line(sdb):
    assert failed(run(sdb, "members:add", "--team", "acme"), code=2) == \
        "Error: Missing argument 'EMAIL'. See 'teamaccess members:add --help'."
    assert "No such command" in failed(run(sdb, "members:frobnicate"), code=2)
    assert "--role" in failed(run(sdb, "members:add", "x@y.com", "--team", "acme"), code=2)


def test_unexpected_errors_are_one_line(sdb, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queries, "teams", boom)
    log = errorlog.log_path()
    assert failed(run(sdb, "teams")) == \
        f"Error: unexpected RuntimeError: disk on fire (please report this; details in {log})"
    # ...and the traceback is in the log the line names, for whoever reads the report.
    written = log.read_text()
    assert "Traceback" in written and "RuntimeError: disk on fire" in written and "in boom" in written


def test_user_data_is_printed_without_control_sequences(sdb):
    evil = "\x1b[2J\x1b]0;pwn\x07x@acme.com"
    failed(run(sdb, "members:add", evil, "--team", "acme", "--role", "member"))
    out = ok(run(sdb, "audit", "--team", "acme", "-n", "1"))
    assert "\x1b" not in out and "\x07" not in out and "?[2J" in out
    err = run(sdb, "members", "--team", "\x1b[31mred").stderr
    assert "\x1b" not in err and "?[31mred" in err


def test_version():
    result = CliRunner().invoke(cli, ["--version"], prog_name="teamaccess")
    assert result.exit_code == 0 and result.stdout.startswith("teamaccess 0.")


def test_help_documents_completion_and_commands():
    out = CliRunner().invoke(cli, ["--help"], prog_name="teamaccess").stdout
    assert "_TEAMACCESS_COMPLETE=bash_source teamaccess" in out
    for name in ("members:add", "access:why", "apps:transfer", "import", "export", "demo"):
        assert name in out


def test_shell_completion_lists_topic_commands():
    result = CliRunner().invoke(
        cli, [], prog_name="teamaccess",
        env={"_TEAMACCESS_COMPLETE": "bash_complete", "COMP_WORDS": "teamaccess members:",
             "COMP_CWORD": "1"},
    )
    names = {line.split(",", 1)[1] for line in result.stdout.splitlines()}
    assert {"members:add", "members:set", "members:remove", "members:access"} <= names


def complete(words: str, env: dict[str, str] | None = None) -> set[str]:
    result = CliRunner().invoke(
        cli, [], prog_name="teamaccess",
        env={"_TEAMACCESS_COMPLETE": "bash_complete", "COMP_WORDS": words,
             "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)), **(env or {})},
    )
    return {line.split(",", 1)[1] for line in result.stdout.splitlines() if line}


def test_completion_of_app_and_team_names(sdb):
    where = f"--db {sdb.path} --as "
    assert complete(f"teamaccess apps:lock {where}joe@acme.com --app web") == \
        {"website-prod", "website-staging"}
    assert complete(f"teamaccess apps:lock {where}sam@freelance.dev --app ") == {"test"}
    assert complete(f"teamaccess members {where}ada@acme.com --team acme") == {"acme", "acme-widgets"}


def test_completion_never_creates_a_database(tmp_path):
    missing = tmp_path / "nothing.db"
    assert complete(f"teamaccess members --db {missing} --as a@b.co --team ") == set()
    assert not missing.exists()


# -- the dashboard doors ---------------------------------------------------------------------


def test_no_command_opens_the_dashboard_for_the_actor(sdb, monkeypatch):
    opened = []
    monkeypatch.setattr(cli_module, "open_dashboard",
                        lambda db, actor, team: opened.append((db.path, actor.email, team)))
    result = CliRunner().invoke(cli, ["--db", str(sdb.path), "--as", "joe@acme.com"])
    assert result.exit_code == 0, result.stderr
    assert opened == [(sdb.path, "joe@acme.com", None)]


def test_demo_builds_beside_the_default_database(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(cli_module, "open_dashboard",
                        lambda db, actor, team: opened.append((db.path, actor.email, team)))
    monkeypatch.setattr(cli_module, "default_path", lambda: tmp_path / "data" / "teamaccess.db")
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.stderr
    assert opened == [(tmp_path / "data" / "demo.db", "ada@acme.com", "acme-widgets")]
    assert not (tmp_path / "data" / "teamaccess.db").exists()
    # a second run reuses it, acting as someone else on request
    result = CliRunner().invoke(cli, ["demo", "--as", "joe@acme.com"])
    assert result.exit_code == 0 and opened[-1][1] == "joe@acme.com"
    db = Database(tmp_path / "data" / "demo.db")
    assert len(queries.roster(db, "ada@acme.com", "acme-widgets")) == 21 + 4  # + collaborators
    db.close()


def test_demo_beside_teamaccess_db_never_in_it(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(cli_module, "open_dashboard",
                        lambda db, actor, team: opened.append((db.path, actor.email, team)))
    real = tmp_path / "work" / "team.db"
    result = CliRunner().invoke(cli, ["demo"], env={"TEAMACCESS_DB": str(real)})
    assert result.exit_code == 0, result.stderr
    assert opened == [(tmp_path / "work" / "demo.db", "ada@acme.com", "acme-widgets")]
    assert not real.exists()


def test_demo_with_db_option(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(cli_module, "open_dashboard",
                        lambda db, actor, team: opened.append((db.path, actor.email, team)))
    result = CliRunner().invoke(cli, ["demo", "--db", str(tmp_path / "mine.db")])
    assert result.exit_code == 0 and opened[0][0] == tmp_path / "mine.db"


def test_build_demo_is_what_demo_uses(demo_db):
    assert build_demo(demo_db) is False  # idempotent: the demo command may call it every time


def test_every_spec_command_is_there():
    spec = """members members:add members:set members:remove members:access access access:add
    access:update access:remove access:why apps list apps:create apps:transfer apps:join
    apps:leave apps:destroy apps:lock apps:unlock teams teams:create teams:rename account:mfa
    audit resources billing import export accounts:bind backup demo lock unlock join leave create
    destroy apps:delete apps:list help whoami auth:whoami auth:2fa""".split()
    for name in spec:  # --db and --as work after every command (aliases included)
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, name
        params = {p.name for p in command.params}
        assert {"db", "as_email"} <= params, name


# -- every command's refusal leaves everything as it was ----------------------------------------


def everything(db: Database) -> tuple:
    """All that a command could change, read as the admin (plus joe's MFA and the login binding)."""
    teams = tuple(queries.teams(db, "ada@acme.com"))
    rows: list = [teams]
    for t in teams:
        rows.append(tuple(queries.roster(db, "ada@acme.com", t.name)))
        for app in queries.apps(db, "ada@acme.com", t.name):
            rows.append((app, queries.app_access(db, "ada@acme.com", app.name).rows))
    joe = queries.account(db, "joe@acme.com")
    return tuple(rows), joe.mfa_enabled, joe.os_login


REFUSALS = [
    # (who, argv, a fragment of the one-line error, writes a denied audit event)
    ("joe@acme.com", ["members:add", "x@acme.com", "--team", "acme", "--role", "member"], "must be a team admin", True),
    ("joe@acme.com", ["members:set", "val@acme.com", "--team", "acme", "--role", "member"], "must be a team admin", True),
    ("joe@acme.com", ["members:remove", "val@acme.com", "--team", "acme"], "must be a team admin", True),
    ("ada@acme.com", ["members:remove", "nobody@acme.com", "--team", "acme"], "is not a user of acme", True),
    ("sam@freelance.dev", ["members:access", "joe@acme.com", "--team", "acme"], "collaborator", False),
    ("out@else.com", ["access", "--app", "myapp"], "Couldn't find that app: myapp", False),
    ("joe@acme.com", ["access:update", "sam@freelance.dev", "--app", "test", "-p", "manage"], "manage", True),
    ("ada@acme.com", ["access:update", "val@acme.com", "--app", "test", "-p", "deploy"], "use access:add", True),
    ("joe@acme.com", ["access:remove", "sam@freelance.dev", "--app", "test"], "manage", True),
    ("out@else.com", ["access:why", "joe@acme.com", "--app", "myapp"], "Couldn't find that app: myapp", False),
    ("out@else.com", ["apps", "--team", "acme"], "not a user of acme", False),
    ("sam@freelance.dev", ["apps:create", "sneaky", "--team", "acme"], "collaborator", True),
    ("joe@acme.com", ["apps:transfer", "acme-widgets", "--app", "test", "--confirm", "test"], "must be a team admin", True),
    ("joe@acme.com", ["apps:leave", "--app", "myapp"], "holds no grant", True),
    ("joe@acme.com", ["apps:lock", "--app", "myapp"], "Only team admins and accounts with manage", True),
    ("joe@acme.com", ["apps:unlock", "--app", "website-prod"], "Only team admins and accounts with manage", True),
    ("ada@acme.com", ["teams:create", "acme"], "already exists", True),
    ("joe@acme.com", ["account:mfa", "--disable"], "already disabled", True),
    ("joe@acme.com", ["accounts:bind", "joe", "nobody@acme.com"], "No account nobody@acme.com", True),
    ("joe@acme.com", ["export", "--team", "acme"], "must be a team admin", False),
    ("joe@acme.com", ["resources", "--team", "acme-widgets"], "not a user of acme-widgets", False),
]


@pytest.mark.parametrize(("who", "argv", "fragment", "audited"), REFUSALS,
                         ids=[" ".join(r[1][:1]) + f"-{i}" for i, r in enumerate(REFUSALS)])
def test_refusals_change_nothing(sdb, who, argv, fragment, audited):
    before, events = everything(sdb), queries.audit_count(sdb)
    line = failed(run(sdb, *argv, who=who))
    assert fragment in line
    assert everything(sdb) == before
    assert queries.audit_count(sdb) == events + (1 if audited else 0)


def test_personal_app_access_shows_the_owner_and_cannot_be_shared(sdb):
    ops.create_app(sdb, ADA, "ada-sandbox")
    lines = ok(run(sdb, "access", "--app", "ada-sandbox")).splitlines()
    assert lines[2].split() == ["ada@acme.com", "owner", "deploy,", "manage,", "operate,", "view",
                                "disabled"]
    assert "move it into a team" in failed(run(sdb, "access:add", "joe@acme.com", "--app", "ada-sandbox"))
    assert "Only team apps can be locked" in failed(run(sdb, "apps:lock", "--app", "ada-sandbox"))


def test_a_destroy_the_store_would_refuse_is_refused_and_logged_without_a_prompt(sdb):
    # joe has no manage on myapp: no confirmation is asked, the store's refusal is shown and
    # written to the log (SPEC rule 10: every refused attempt to change).
    before, events = everything(sdb), queries.audit_count(sdb)
    line = failed(run(sdb, "apps:destroy", "--app", "myapp", who="joe@acme.com"))
    assert "--confirm" not in line and "manage" in line
    assert everything(sdb) == before and queries.audit_count(sdb) == events + 1


def test_audit_limit_has_a_ceiling_not_an_overflow(sdb):
    result = run(sdb, "audit", "--team", "acme", "-n", "99999999999999999999")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_list_elements_encode_exactly_as_the_standard_encoder_does():
    from datetime import UTC, datetime

    from teamaccess.tui.cli import _element_encoder, _json_default

    reference = json.JSONEncoder(ensure_ascii=True, default=_json_default).encode
    encode = _element_encoder()
    values = [
        {"email": "ada@acme.com", "two_factor_authentication": True, "n": 3, "x": None},
        {"name": "Zoë \u202e\x1b[31m\u0000 \"quoted\" \\ back\nslash", "tags": ["a", 1, 2.5, False]},
        {"created_at": datetime(2024, 6, 3, 12, 0, tzinfo=UTC), "nested": {"deep": [{}]}},
        "plain string", 7, [], {},
    ]
    for value in values:
        assert encode(value) == reference(value)
    with pytest.raises(TypeError):
        encode({"bad": object()})
