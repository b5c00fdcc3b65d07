"""Team export and import: the round trip, Heroku-shaped input, all-or-nothing refusals, merging."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from teamaccess.store import ops, portable, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import generate
from teamaccess.store.errors import Invalid, LastAdminRefused, NotFound, Refused
from teamaccess.tui.cli import cli

ADA = ops.Actor("ada@acme.com", "ada")


@pytest.fixture
def other(tmp_path):
    """A second, empty database."""
    database = Database(tmp_path / "other.db")
    yield database
    database.close()


def snapshot(db: Database) -> tuple:
    """Everything an import could touch, to check that a refused one changed nothing."""
    teams = queries.teams(db, "ada@acme.com")
    state = [tuple(teams)]
    for t in teams:
        state.append(tuple(queries.roster(db, "ada@acme.com", t.name)))
        for app in queries.apps(db, "ada@acme.com", t.name):
            state.append((app, queries.app_access(db, "ada@acme.com", app.name).rows))
    return tuple(state), queries.account(db, "new@acme.com")


def as_imported(doc: dict) -> dict:
    """``doc`` as an import into a fresh database keeps it: without MFA and names, which only
    each account sets for itself (SPEC rule 9, issue 11 item 4)."""
    doc = copy.deepcopy(doc)
    for row in doc["members"]:
        row["two_factor_authentication"], row["user"]["name"] = False, None
    for rows in doc["access"].values():
        for row in rows:
            row["user"]["two_factor_authentication"] = False
    return doc


def last_event(db: Database, team: str = "acme-widgets"):
    return queries.audit(db, "ada@acme.com", team, limit=1)[0]


# -- round trip ------------------------------------------------------------------------------


def test_round_trip_of_the_demo_team_is_identical(demo_db, other):
    first = portable.export_team(demo_db, "ada@acme.com", "acme-widgets")
    result = portable.import_team(other, ADA, copy.deepcopy(first))
    assert result.created_team and result.members_added == 21 and result.apps_added == 12
    assert result.grants_added == 20 and result.admin_rows_skipped == 0
    assert portable.export_team(other, "ada@acme.com", "acme-widgets") == as_imported(first)


def test_round_trip_keeps_what_everyone_can_do(demo_db, other):
    portable.import_team(other, ADA, portable.export_team(demo_db, "ada@acme.com", "acme-widgets"))
    for who in ("john@acme.com", "joe@acme.com", "sam@freelance.dev", "guido@acme.com"):
        for app in ("website-prod", "api-prod", "docs-site"):
            # imported grants say "explicit grant": the document has no field for their origin
            assert [(r.permission, r.held) for r in queries.why(other, "ada@acme.com", app, who)] == \
                [(r.permission, r.held) for r in queries.why(demo_db, "ada@acme.com", app, who)]


def test_export_shape(demo_db):
    doc = portable.export_team(demo_db, "ada@acme.com", "acme-widgets")
    assert set(doc) == {"team", "members", "apps", "access"}
    assert doc["members"][0]["email"] == "ada@acme.com"
    assert {"email", "role", "two_factor_authentication"} <= set(doc["members"][0])
    prod = next(a for a in doc["apps"] if a["name"] == "website-prod")
    assert prod["locked"] is True and prod["locked_at"].endswith("Z")
    sam = next(r for r in doc["access"]["website-staging"] if r["email"] == "sam@freelance.dev")
    assert sam["permissions"] == [{"name": "deploy"}, {"name": "view"}]
    assert sam["role"] == "collaborator"


def test_export_needs_an_admin(demo_db):
    with pytest.raises(Refused, match="You are a member of acme-widgets; to export the team"):
        portable.export_team(demo_db, "joe@acme.com", "acme-widgets")
    with pytest.raises(NotFound):
        portable.export_team(demo_db, "ada@acme.com", "nope")


# -- Heroku-shaped input ---------------------------------------------------------------------


def test_heroku_rows_are_understood(other):
    doc = {
        "team": "acme",
        "members": [
            {"email": "ada@acme.com", "role": "admin", "two_factor_authentication": True,
             "federated": False, "id": "01234567-89ab-cdef-0123-456789abcdef"},
            {"email": "Joe@Acme.com ", "role": "member", "two_factor_authentication": True,
             "user": {"email": "joe@acme.com", "name": "Joe Smith"}},
            {"email": "val@acme.com", "role": "viewer"},
        ],
        "apps": [{"name": "myapp", "locked": True, "region": {"name": "us"}},
                 {"name": "test"}],
        "access": {
            "myapp": [
                {"user": {"email": "ada@acme.com"}, "role": "admin",
                 "permissions": [{"name": "view"}, {"name": "manage"}]},
                {"user": {"email": "sam@freelance.dev"}, "role": "collaborator",
                 "permissions": [{"name": "view", "description": "..."}, {"name": "deploy"}]},
            ],
            "test": [{"email": "joe@acme.com", "permissions": ["view", "operate"]}],
        },
    }
    result = portable.import_team(other, ops.Actor("ada@acme.com"), doc)
    assert (result.members_added, result.apps_added, result.grants_added,
            result.admin_rows_skipped) == (3, 2, 2, 1)
    assert [(r.email, r.role, r.mfa, r.name) for r in queries.roster(other, "ada@acme.com", "acme")] == [
        ("ada@acme.com", "admin", False, None), ("joe@acme.com", "member", False, None),
        ("sam@freelance.dev", "collaborator", False, None),
        ("val@acme.com", "viewer", False, None)]  # MFA and names are each account's own
    why = {r.permission: r.held for r in queries.why(other, "ada@acme.com", "myapp", "sam@freelance.dev")}
    assert why == {"view": True, "deploy": True, "operate": False, "manage": False}
    # the document's users count as having joined before its locks
    assert queries.why(other, "ada@acme.com", "myapp", "val@acme.com")[0].held
    events = queries.audit(other, "ada@acme.com", "acme")
    assert all(e.outcome == "ok" and e.team == "acme" for e in events)
    assert [e.action for e in reversed(events)] == [
        "team.create", "team_membership.create", "team_membership.create",
        "app.create", "app.create", "collaborator.create", "collaborator.create"]


def test_new_team_makes_the_importer_its_admin(other):
    result = portable.import_team(other, ops.Actor("boss@acme.com"),
                                  {"team": "fresh", "members": [{"email": "a@acme.com", "role": "member"}]})
    assert result.members_added == 2
    assert [(r.email, r.role) for r in queries.roster(other, "boss@acme.com", "fresh")] == [
        ("a@acme.com", "member"), ("boss@acme.com", "admin")]


# -- all or nothing ------------------------------------------------------------------------------


BAD_ROWS = [
    ({"members": [{"email": "a@acme.com", "role": "member"}] * 1 + [
        {"email": "b@acme.com", "role": "member"}, {"email": "c@acme.com", "role": "member"},
        {"email": "nope", "role": "member"}]}, r"^members\[3\]\.email: Invalid email 'nope'"),
    ({"members": [{"email": "a@acme.com", "role": "owner"}]}, r"^members\[0\]\.role: Invalid role"),
    ({"members": [{"email": "a@acme.com", "role": "member"}, {"email": "A@acme.com", "role": "admin"}]},
     r"^members\[1\]\.email: a@acme\.com is listed twice \(also members\[0\]\)"),
    ({"members": ["a@acme.com"]}, r"^members\[0\]: expected an object"),
    ({"members": [{"email": "a@acme.com", "role": "member", "two_factor_authentication": "yes"}]},
     r"^members\[0\]\.two_factor_authentication: expected true or false"),
    ({"members": [{"email": "a@acme.com", "role": "member", "created_at": "yesterday"}]},
     r"^members\[0\]\.created_at: expected an ISO 8601 time"),
    ({"apps": [{"name": "Bad_Name"}]}, r"^apps\[0\]\.name: Invalid app name"),
    ({"apps": [{"name": "ok-app", "locked": 1}]}, r"^apps\[0\]\.locked: expected true or false"),
    ({"apps": [{"name": "ok-app"}], "access": {"ok-app": [{"email": "x@y.com", "permissions": ["root"]}]}},
     r"^access\.ok-app\[0\]\.permissions: Invalid permission 'root'"),
    ({"apps": [{"name": "ok-app"}], "access": {"ok-app": [{"permissions": ["view"]}]}},
     r"^access\.ok-app\[0\]\.email: Invalid email"),
    ({"access": {"ghost-app": [{"email": "x@y.com"}]}}, r"no app ghost-app in the document"),
    ({"members": {"email": "a@acme.com"}}, r"^members: expected a list"),
    *(({"members": [{"email": "a@acme.com", "role": "member", "user": {"name": f"Eve{ch}lyn"}}]},
       rf"^members\[0\]\.user\.name: .*\(U\+{ord(ch):04X}\).*remove it")
      for ch in ("\u202e", "\u200b", "\u2066", "\u2069", "\ufeff", "\u2028", "\u061c",
                 "\ud800")),
]


@pytest.mark.parametrize(("fragment", "message"), BAD_ROWS)
def test_a_bad_row_is_named_and_nothing_is_written(demo_db, fragment, message):
    doc = {"team": "acme-widgets", "members": [], **fragment}
    if isinstance(doc["members"], list):  # a valid row that must not be written either
        doc["members"] = [*doc["members"], {"email": "new@acme.com", "role": "member"}]
    before, events = snapshot(demo_db), queries.audit_count(demo_db)
    with pytest.raises(Invalid, match=message):
        portable.import_team(demo_db, ADA, doc)
    assert snapshot(demo_db) == before
    assert queries.audit_count(demo_db) == events + 1
    assert last_event(demo_db).outcome == "denied"


def test_not_an_object_or_bad_team(other):
    with pytest.raises(Invalid, match="must be a JSON object"):
        portable.import_team(other, ADA, [1, 2])
    with pytest.raises(Invalid, match=r"^team: Invalid team name"):
        portable.import_team(other, ADA, {"team": "X"})
    assert queries.teams(other, "ada@acme.com") == []
    assert queries.audit_count(other) == 2


def test_import_into_a_team_you_do_not_administer_is_refused(demo_db):
    before, events = snapshot(demo_db), queries.audit_count(demo_db)
    with pytest.raises(Refused, match="You are a member of acme-widgets"):
        portable.import_team(demo_db, ops.Actor("joe@acme.com"),
                             {"team": "acme-widgets", "members": [{"email": "new@acme.com", "role": "admin"}]})
    assert snapshot(demo_db) == before
    assert queries.audit_count(demo_db) == events + 1
    event = last_event(demo_db)
    assert (event.action, event.outcome, event.actor_email) == ("team.update", "denied", "joe@acme.com")


def test_app_name_taken_elsewhere_is_refused_naming_the_row(demo_db):
    before, events = snapshot(demo_db), queries.audit_count(demo_db)
    with pytest.raises(Refused, match=r"^apps\[1\]\.name: an app named ada-sandbox exists outside"):
        portable.import_team(demo_db, ADA, {"team": "acme-widgets",
                                            "members": [{"email": "new@acme.com", "role": "member"}],
                                            "apps": [{"name": "fresh-app"}, {"name": "ada-sandbox"}]})
    assert snapshot(demo_db) == before
    # the changes made before the refusal are rolled back with their events: one denied event
    assert queries.audit_count(demo_db) == events + 1
    event = last_event(demo_db)
    assert (event.action, event.outcome, event.team) == ("team.update", "denied", "acme-widgets")


def test_a_refused_import_into_a_new_team_is_not_logged_on_a_later_team(demo_db):
    """The new team is rolled back, so its id is free again: the denied event must not carry it."""
    events = queries.audit_count(demo_db)
    with pytest.raises(Refused, match="an app named ada-sandbox exists outside ghost"):
        portable.import_team(demo_db, ops.Actor("eve@evil.example", "eve"),
                             {"team": "ghost", "apps": [{"name": "ada-sandbox"}]})
    assert queries.audit_count(demo_db) == events + 1
    assert [t.name for t in queries.teams(demo_db, "eve@evil.example")] == []
    ops.create_team(demo_db, ADA, "fresh")
    log = queries.audit(demo_db, "ada@acme.com", "fresh")
    assert [(e.action, e.actor_email, e.outcome, e.team) for e in log] == [
        ("team.create", "ada@acme.com", "ok", "fresh")]


def test_import_may_not_leave_a_team_without_admin(db):
    ops.create_team(db, ADA, "solo")
    ops.add_member(db, ADA, "solo", "grace@acme.com", "member")
    with pytest.raises(LastAdminRefused):
        portable.import_team(db, ADA, {"team": "solo", "members": [
            {"email": "ada@acme.com", "role": "member"}]})
    assert [(r.email, r.role) for r in queries.roster(db, "ada@acme.com", "solo")] == [
        ("ada@acme.com", "admin"), ("grace@acme.com", "member")]


# -- merging into an existing team -------------------------------------------------------------


def test_merge_sets_roles_locks_and_grants_but_not_mfa(demo_db):
    doc = {
        "team": "acme-widgets",
        "members": [{"email": "joe@acme.com", "role": "viewer", "two_factor_authentication": False},
                    {"email": "new@acme.com", "role": "member", "two_factor_authentication": True}],
        "apps": [{"name": "docs-site", "locked": True}, {"name": "brand-new"}],
        "access": {"website-staging": [{"email": "sam@freelance.dev", "permissions": ["operate"]}],
                   "brand-new": [{"email": "li@partner.co", "permissions": ["deploy"]}]},
    }
    result = portable.import_team(demo_db, ADA, doc)
    assert (result.members_added, result.roles_changed, result.apps_added, result.locks_changed,
            result.grants_added, result.grants_changed) == (1, 1, 1, 1, 1, 1)
    assert result.summary() == [
        "Added 1 team user, 1 app and 1 grant to acme-widgets.",
        "Changed 1 role, 1 lock and 1 grant.",
    ]
    roster = {r.email: r for r in queries.roster(demo_db, "ada@acme.com", "acme-widgets")}
    assert roster["joe@acme.com"].role == "viewer"
    assert roster["joe@acme.com"].mfa is True  # only joe may change joe's MFA
    assert roster["new@acme.com"].mfa is False  # not even a new account takes the document's
    apps = {a.name: a for a in queries.apps(demo_db, "ada@acme.com", "acme-widgets")}
    assert apps["docs-site"].locked and not apps["brand-new"].locked
    sam = next(r for r in queries.app_access(demo_db, "ada@acme.com", "website-staging").rows
               if r.email == "sam@freelance.dev")
    assert sam.grant == ("view", "operate")


def test_each_change_is_logged_as_its_own_event_like_the_single_operations(demo_db):
    doc = {
        "team": "acme-widgets",
        "members": [{"email": "joe@acme.com", "role": "viewer"},
                    {"email": "new@acme.com", "role": "member"}],
        "apps": [{"name": "docs-site", "locked": True}, {"name": "brand-new"}],
        "access": {"website-staging": [{"email": "sam@freelance.dev", "permissions": ["operate"]}],
                   "brand-new": [{"email": "li@partner.co", "permissions": ["deploy"]}]},
    }
    events = queries.audit_count(demo_db)
    portable.import_team(demo_db, ADA, doc)
    assert queries.audit_count(demo_db) == events + 6
    log = list(reversed(queries.audit(demo_db, "ada@acme.com", "acme-widgets", limit=6)))
    assert {(e.actor_email, e.actor_login, e.team, e.outcome) for e in log} == {
        ("ada@acme.com", "ada", "acme-widgets", "ok")}
    assert [(e.action, e.app, e.target, e.before, e.after) for e in log] == [  # document order
        ("team_membership.update", None, "joe@acme.com", {"role": "member"}, {"role": "viewer"}),
        ("team_membership.create", None, "new@acme.com", None, {"role": "member"}),
        ("app.update", "docs-site", None, {"locked": False}, {"locked": True}),
        ("app.create", "brand-new", None, None, {"team": "acme-widgets", "locked": False}),
        ("collaborator.update", "website-staging", "sam@freelance.dev",
         {"permissions": ["view", "deploy"]}, {"permissions": ["view", "operate"]}),
        ("collaborator.create", "brand-new", "li@partner.co", None,
         {"permissions": ["view", "deploy"]}),
    ]


def test_a_new_team_is_logged_as_ops_create_team_logs_it(other):
    portable.import_team(other, ADA, {"team": "fresh", "members": [
        {"email": "ada@acme.com", "role": "member"}, {"email": "a@acme.com", "role": "viewer"}]})
    log = list(reversed(queries.audit(other, "ada@acme.com", "fresh")))
    assert [(e.action, e.target, e.after) for e in log] == [
        ("team.create", None, {"team": "fresh", "admin": "ada@acme.com"}),
        ("team_membership.create", "a@acme.com", {"role": "viewer"}),
    ]
    ops.add_member(other, ADA, "fresh", "b@acme.com", "member")
    with other.read() as s:  # the bulk-written times are stored as the single operations store them
        stored = s.execute(text("SELECT at FROM audit_event ORDER BY id")).scalars().all()
    assert len(stored) == 3 and len({len(at) for at in stored}) == 1 and stored == sorted(stored)


def test_importing_the_same_document_twice_changes_nothing_the_second_time(demo_db, other):
    doc = portable.export_team(demo_db, "ada@acme.com", "acme-widgets")
    portable.import_team(other, ADA, doc)
    events = queries.audit_count(other)
    again = portable.import_team(other, ADA, doc)
    assert again.counts() == dict.fromkeys(again.counts(), 0)
    assert queries.audit_count(other) == events  # no change, no event


def test_a_large_team_imports_in_one_transaction(tmp_path, other):
    """Correctness at scale (the speed is measured by tests/bench/bench_import.py)."""
    big = Database(tmp_path / "big.db")
    generate(big, team="bigco", users=1500, apps=150, grants=4000)
    admin = queries.roster(big, "user000000@bigco.example.com", "bigco", role="admin")[0].email
    doc = portable.export_team(big, admin, "bigco")
    result = portable.import_team(other, ops.Actor(admin), doc)
    assert result.members_added == 1500 and result.apps_added == 150
    # one event per change: the team (with its importer's admin role), the others, apps, grants
    assert queries.audit_count(other) == 1 + 1499 + 150 + result.grants_added
    assert result.grants_added + result.admin_rows_skipped == sum(len(v) for v in doc["access"].values())
    imported = as_imported(doc)
    assert portable.export_team(other, admin, "bigco") == {
        **imported, "access": {k: [r for r in v if r["role"] != "admin"]
                               for k, v in imported["access"].items()
                               if any(r["role"] != "admin" for r in v)}}
    big.close()


def test_round_trip_on_each_backend(demo_db, any_db):
    """Import (bulk inserts, bulk updates) and export also work on PostgreSQL."""
    first = portable.export_team(demo_db, "ada@acme.com", "acme-widgets")
    portable.import_team(any_db, ADA, copy.deepcopy(first))
    assert portable.export_team(any_db, "ada@acme.com", "acme-widgets") == as_imported(first)
    changed = copy.deepcopy(first)
    changed["members"][3]["role"] = "viewer"
    changed["apps"][0]["locked"] = False
    result = portable.import_team(any_db, ADA, changed)
    assert (result.roles_changed, result.locks_changed) == (1, 1)


# -- the command line: a file that is not JSON is one line, whatever is wrong with it ----------


def _cli_import(db: Database, path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["import", str(path), "--db", str(db.path), "--as", "ada@acme.com"],
                                prog_name="teamaccess")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("content", "why"), [
    (b"[" * 200_000, "nested too deeply"),
    (b'{"team": "acme", "members": [], "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
     "nested too deeply"),
    (b'{"team": "acme\xff"}', "not UTF-8 text"),
    (b'{"team": "acme", "n": ' + b"7" * 5000 + b"}", "digits"),
], ids=["deep", "deep-inside", "not-utf8", "huge-int"])
def test_cli_import_of_a_file_that_is_not_valid_json_is_one_line(demo_db, tmp_path, content, why):
    path = tmp_path / "deep.json"
    path.write_bytes(content)
    before, events = snapshot(demo_db), queries.audit_count(demo_db)
    code, out, err = _cli_import(demo_db, path)
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"Error: {path} is not valid JSON: ") and why in err
    assert err.rstrip().endswith("give the output of 'teamaccess export'.")
    assert snapshot(demo_db) == before and queries.audit_count(demo_db) == events


# -- any JSON at all: a parsed document or one Invalid line, never a crash -----------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["admin", "member", "view", "deploy", "a@b.co", "my-app", "2024-01-01"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_member = st.fixed_dictionaries({}, optional={
    "email": _json | st.just("joe@acme.com"), "role": _json | st.sampled_from(["admin", "viewer"]),
    "two_factor_authentication": _json, "created_at": _json, "user": _json,
})
_app = st.fixed_dictionaries({}, optional={"name": _json | st.just("my-app"), "locked": _json,
                                           "locked_at": _json})
_access_row = st.fixed_dictionaries({}, optional={
    "email": _json | st.just("sam@x.io"), "user": _json | st.just({"email": "li@y.io"}),
    "permissions": _json | st.lists(st.sampled_from(["view", "deploy", {"name": "manage"}, 3])),
})
_doc = _json | st.fixed_dictionaries({}, optional={
    "team": _json | st.just("acme"),
    "members": _json | st.lists(_member | _json, max_size=3),
    "apps": _json | st.lists(_app | _json, max_size=3),
    "access": _json | st.dictionaries(st.sampled_from(["my-app", "Bad", ""]),
                                      _json | st.lists(_access_row | _json, max_size=3), max_size=2),
})


@settings(max_examples=300, deadline=None)
@given(_doc)
def test_parse_never_crashes(doc):
    try:
        parsed = portable.parse(doc)
    except Invalid as err:
        message = str(err)
        assert message and "\n" not in message
    else:
        assert parsed.team == doc["team"]


# -- issue 11: forged MFA and names, bounded imports, a short write --------------------------------


def dump(db: Database) -> list[str]:
    """Every row of every table, to show that a refusal changed nothing at all."""
    import sqlite3

    with sqlite3.connect(db.path) as conn:
        return list(conn.iterdump())


def test_an_import_never_sets_mfa_or_names_that_a_real_team_then_shows(other):
    """The attack as reported: a new-team import creates ceo@acme.com with MFA on and a name."""
    eve = ops.Actor("eve@evil.example", "eve")
    portable.import_team(other, eve, {"team": "decoy", "members": [
        {"email": "ceo@acme.com", "role": "member", "two_factor_authentication": True,
         "user": {"name": "Ada Lovelace"}}],
        "apps": [{"name": "decoy-app"}],
        "access": {"decoy-app": [{"email": "cfo@acme.com", "permissions": ["view"],
                                  "user": {"two_factor_authentication": True}}]}})
    boss = ops.Actor("boss@acme.com", "boss")
    ops.create_team(other, boss, "acme")
    ops.add_member(other, boss, "acme", "ceo@acme.com", "member")
    ops.add_member(other, boss, "acme", "cfo@acme.com", "member")
    roster = {r.email: r for r in queries.roster(other, "boss@acme.com", "acme")}
    assert (roster["ceo@acme.com"].mfa, roster["ceo@acme.com"].name) == (False, None)
    assert (roster["cfo@acme.com"].mfa, roster["cfo@acme.com"].name) == (False, None)
    # nor in the importer's own team: only the account changes its own MFA (SPEC rule 9)
    assert {(r.email, r.mfa, r.name) for r in queries.roster(other, "eve@evil.example", "decoy")} \
        >= {("ceo@acme.com", False, None)}
    ops.set_mfa(other, ops.Actor("ceo@acme.com"), True)
    assert queries.account(other, "ceo@acme.com").mfa_enabled is True


def test_an_import_leaves_existing_accounts_mfa_and_names_alone(demo_db):
    doc = {"team": "acme-widgets", "members": [
        {"email": "joe@acme.com", "role": "member", "two_factor_authentication": False,
         "user": {"name": "Someone Else"}},
        {"email": "linus@acme.com", "role": "admin", "two_factor_authentication": True,
         "user": {"name": "Not Linus"}}]}
    before = {r.email: (r.mfa, r.name) for r in queries.roster(demo_db, "ada@acme.com", "acme-widgets")}
    portable.import_team(demo_db, ADA, doc)
    after = {r.email: (r.mfa, r.name) for r in queries.roster(demo_db, "ada@acme.com", "acme-widgets")}
    assert after == before
    assert after["joe@acme.com"] == (True, "Joe Smith") and after["linus@acme.com"] == (False, "Linus Torvalds")


def _rows(count: int, make) -> list:
    return [make(i) for i in range(count)]


OVER_THE_LIMITS = [
    ({"members": _rows(portable.MAX_MEMBERS + 1,
                       lambda i: {"email": f"u{i}@big.example.com", "role": "member"})},
     r"^members: 10,001 team users is more than one import may bring \(at most 10,000\); split"),
    ({"apps": _rows(portable.MAX_APPS + 1, lambda i: {"name": f"app-{i}"})},
     r"^apps: 2,001 apps is more than one import may bring \(at most 2,000\)"),
    ({"apps": [{"name": "one-app"}],
      "access": {"one-app": _rows(portable.MAX_ACCESS_ROWS + 1,
                                  lambda i: {"email": f"u{i}@big.example.com"})}},
     r"^access: 50,001 access rows is more than one import may bring \(at most 50,000\)"),
    ({"access": {f"app-{i}": [] for i in range(portable.MAX_APPS + 1)}},
     r"^access: 2,001 apps is more than one import may bring"),
]


@pytest.mark.parametrize(("fragment", "message"), OVER_THE_LIMITS,
                         ids=["members", "apps", "access-rows", "access-apps"])
def test_an_import_over_a_limit_is_refused_naming_it_and_changes_nothing(demo_db, fragment, message):
    doc = {"team": "acme-widgets", "members": [{"email": "new@acme.com", "role": "member"}], **fragment}
    before, events = dump(demo_db), queries.audit_count(demo_db)
    with pytest.raises(Invalid, match=message):
        portable.import_team(demo_db, ADA, doc)
    assert queries.audit_count(demo_db) == events + 1
    assert last_event(demo_db).outcome == "denied"
    after = dump(demo_db)
    assert [line for line in after if "audit_event" not in line] == \
        [line for line in before if "audit_event" not in line]
    assert len(after) == len(before) + 1  # only the denied event


def test_the_cli_refuses_a_document_larger_than_the_limit(demo_db, tmp_path, monkeypatch):
    monkeypatch.setattr(portable, "MAX_DOCUMENT_BYTES", 1024)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"team": "acme-widgets", "members": [
        {"email": f"u{i}@acme.com", "role": "member"} for i in range(100)]}))
    before, events = snapshot(demo_db), queries.audit_count(demo_db)
    code, out, err = _cli_import(demo_db, path)
    assert (code, out) == (1, "") and len(err.splitlines()) == 1
    assert err.startswith(f"Error: {path} is larger than one import may bring (")
    assert err.rstrip().endswith("split the team into several documents (imports merge into the team).")
    result = CliRunner().invoke(cli, ["import", "-", "--db", str(demo_db.path), "--as", "ada@acme.com"],
                                input=path.read_text(), prog_name="teamaccess")
    assert result.exit_code == 1 and "- is larger than one import may bring" in result.stderr
    assert snapshot(demo_db) == before and queries.audit_count(demo_db) == events


def maximum_document(team: str = "bigco", domain: str = "big.example.com") -> dict:
    """A new team at every limit at once: users, apps and access rows."""
    per_app = portable.MAX_ACCESS_ROWS // portable.MAX_APPS
    return {
        "team": team,
        "members": [{"email": f"u{i:05d}@{domain}", "role": "admin" if i < 5 else "member"}
                    for i in range(portable.MAX_MEMBERS)],
        "apps": [{"name": f"{team}-{j:04d}", "locked": j % 10 == 0} for j in range(portable.MAX_APPS)],
        "access": {f"{team}-{j:04d}": [
            {"email": f"u{(j * per_app + k) % portable.MAX_MEMBERS:05d}@{domain}",
             "permissions": ["view", "deploy"]} for k in range(per_app)]
            for j in range(portable.MAX_APPS)},
    }


WRITER = r"""
import json, sys, time
from pathlib import Path
from teamaccess.store import ops
from teamaccess.store.db import Database
from teamaccess.store.errors import StoreError
db, stop = Database(sys.argv[1]), Path(sys.argv[2])
boss = ops.Actor("boss@corp.example", "boss")
i = 0
while not stop.exists():
    start = time.monotonic()
    try:
        ops.add_member(db, boss, "corp", f"w{i}@corp.example", "member")
        outcome = "ok"
    except StoreError as err:
        outcome = str(err)
    print(json.dumps([start, time.monotonic(), outcome]), flush=True)
    i += 1
    time.sleep(0.02)
"""


def test_another_process_writes_while_a_maximum_size_import_writes(tmp_path, monkeypatch):
    """Issue 11 item 5: one import held the lock for 45 s and others' writes failed. Now the
    largest import allowed writes in one short transaction: another process's writes, made
    all through it, succeed within the store's busy timeout (they are never refused)."""
    import subprocess
    import sys
    import time

    db = Database(tmp_path / "shared.db")
    ops.create_team(db, ops.Actor("boss@corp.example", "boss"), "corp")
    doc = maximum_document()
    window: list[float] = []
    real_write = portable._Plan.write

    def timed_write(self, *args):
        window.append(time.monotonic())
        try:
            return real_write(self, *args)
        finally:
            window.append(time.monotonic())

    monkeypatch.setattr(portable._Plan, "write", timed_write)
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db.path), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        first = json.loads(writer.stdout.readline())  # the writer is writing
        result = portable.import_team(db, ops.Actor("u00000@big.example.com"), doc)
        time.sleep(0.3)
    finally:
        stop.touch()
        rest, _ = writer.communicate(timeout=60)
    writes = [first, *(json.loads(line) for line in rest.splitlines())]
    assert result.members_added == portable.MAX_MEMBERS and result.apps_added == portable.MAX_APPS
    assert result.grants_added + result.admin_rows_skipped == portable.MAX_ACCESS_ROWS
    assert [w for w in writes if w[2] != "ok"] == []  # no write was refused or timed out
    began, ended = window[0], window[-1]
    during = [w for w in writes if w[0] < ended and w[1] > began]
    assert during, (began, ended, writes[:3])  # some of them did wait on the import's write
    members = queries.roster(db, "boss@corp.example", "corp")
    assert len(members) == 1 + len(writes)
    db.close()


def test_a_write_between_the_decision_and_the_write_is_decided_again(tmp_path, monkeypatch):
    """Decided from a snapshot, written later: a change in between must not be overwritten."""
    db = Database(tmp_path / "race.db")
    calls = []
    real_decide = portable._decide

    def decide_then_someone_writes(s, actor, parsed):
        plan = real_decide(s, actor, parsed)
        if not calls:  # another writer creates the team the import was about to create
            ops.create_team(db, ops.Actor("mallory@evil.example"), "fresh")
        calls.append(plan)
        return plan

    monkeypatch.setattr(portable, "_decide", decide_then_someone_writes)
    with pytest.raises(Refused, match="You are not a user of fresh"):
        portable.import_team(db, ADA, {"team": "fresh", "members": [
            {"email": "a@acme.com", "role": "member"}]})
    assert len(calls) == 2  # decided again, inside the write
    assert [(r.email, r.role) for r in queries.roster(db, "mallory@evil.example", "fresh")] == [
        ("mallory@evil.example", "admin")]
    db.close()


def test_without_other_writers_the_import_is_decided_once_before_the_write(other, monkeypatch):
    calls = []
    real_decide = portable._decide
    monkeypatch.setattr(portable, "_decide", lambda *a: calls.append(1) or real_decide(*a))
    portable.import_team(other, ADA, {"team": "fresh", "members": [
        {"email": "a@acme.com", "role": "member"}]})
    assert len(calls) == 1


def test_the_last_admin_rule_is_the_policys(db, monkeypatch):
    from teamaccess.store import policy

    assert not policy.decide_admins_left("solo", 0) and policy.decide_admins_left("solo", 1)
    assert policy.decide_admins_left("solo", 0).rule == "at-least-one-admin"
    ops.create_team(db, ADA, "solo")
    seen = []
    real = portable.decide_admins_left
    monkeypatch.setattr(portable, "decide_admins_left",
                        lambda team, left: seen.append((team, left)) or real(team, left))
    with pytest.raises(LastAdminRefused, match="would leave solo without an admin"):
        portable.import_team(db, ADA, {"team": "solo", "members": [
            {"email": "ada@acme.com", "role": "member"}]})
    portable.import_team(db, ADA, {"team": "solo", "members": [
        {"email": "ada@acme.com", "role": "member"}, {"email": "b@acme.com", "role": "admin"}]})
    assert seen == [("solo", 0), ("solo", 1)]
