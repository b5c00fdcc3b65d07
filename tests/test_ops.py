"""Each operation of store.ops, its success and its refusals, against the SPEC's rules 1-11.

Every refusal is checked the same way: the one-line message, the error's type, exactly one new
audit event (outcome ``denied``, the message as its reason), and every other table unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlmodel import SQLModel
from teamaccess.store import ops, queries, validate
from teamaccess.store.db import Database
from teamaccess.store.errors import Invalid, LastAdminRefused, NotFound, Refused, StoreError
from teamaccess.store.models import Account, App, AuditEvent, Grant

TEAM = "acme-widgets"
ADA = ops.Actor("ada@acme.com", "ada")  # admin
JOE = ops.Actor("joe@acme.com", "joe")  # member, creator of joeapp
TIM = ops.Actor("tim@acme.com", "tim")  # viewer
SAM = ops.Actor("sam@freelance.dev", "sam")  # collaborator on joeapp (view, deploy)
EVE = ops.Actor("eve@evil.example", "eve")  # outsider, has an account


# -- helpers ---------------------------------------------------------------------------------


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table but the audit log, in a stable order."""
    out = {}
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name == "audit_event":
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def audit_events(db: Database) -> list[AuditEvent]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def last_event(db: Database) -> AuditEvent:
    return audit_events(db)[-1]


def refused(db: Database, call, error: type[StoreError] = Refused, match: str | None = None):
    """Run ``call``, expect ``error``; check it changed nothing but one denied audit event."""
    before, events = snapshot(db), len(audit_events(db))
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert message and "\n" not in message, "a refusal is one line"
    if match is not None:
        assert match in message, message
    assert snapshot(db) == before, "a refused operation changed something"
    after = audit_events(db)
    assert len(after) == events + 1, "a refusal writes exactly one audit event"
    assert after[-1].outcome == "denied"
    assert after[-1].reason == message
    return info.value


def succeeded(db: Database, call):
    """Run ``call``; check it wrote exactly one ``ok`` audit event, and return (result, event)."""
    events = len(audit_events(db))
    result = call()
    after = audit_events(db)
    assert len(after) == events + 1
    assert after[-1].outcome == "ok"
    assert after[-1].reason is None
    return result, after[-1]


def grant_of(db: Database, app: str, email: str) -> tuple[str, ...] | None:
    view = queries.app_access(db, ADA.email, app)
    for row in view.rows:
        if row.email == email:
            return row.grant
    return None


def grants(db: Database) -> dict[tuple[str, str], tuple[tuple[str, ...], str]]:
    """Every grant row, read straight from the table: (app, email) -> (permissions, origin)."""
    with db.read() as s:
        rows = s.execute(
            select(App.name, Account.email, Grant)
            .join(App, App.id == Grant.app_id)
            .join(Account, Account.id == Grant.account_id)
        ).all()
        order = ("view", "deploy", "operate", "manage")
        return {
            (app, email): (tuple(p for p in order if p in g.permissions), g.origin)
            for app, email, g in rows
        }


def roles(db: Database) -> dict[str, str]:
    return {r.email: r.role for r in queries.roster(db, ADA.email, TEAM)}


@pytest.fixture
def db(tmp_path):
    """An empty database file, in memory-backed /dev/shm where there is one.

    Shadows conftest's ``db``: the same SQLite file and locking, without a disk sync for each
    of the fixture's commits (which made setup most of this module's time).
    """
    shm = Path("/dev/shm")
    where = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    database = Database(where / "teamaccess.db")
    yield database
    database.close()
    if where != tmp_path:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def team(db):
    """acme-widgets: ada admin, joe member (creator of joeapp), tim viewer, sam a collaborator."""
    ops.create_team(db, ADA, TEAM)
    ops.add_member(db, ADA, TEAM, JOE.email, "member")
    ops.add_member(db, ADA, TEAM, TIM.email, "viewer")
    ops.create_app(db, ADA, "myapp", TEAM)
    ops.create_app(db, JOE, "joeapp", TEAM)
    ops.grant_access(db, JOE, "joeapp", SAM.email, "deploy")
    ops.create_app(db, EVE, "evesapp")  # a personal app, which gives eve an account
    return db


# -- rule 1: every team has an admin ---------------------------------------------------------


def test_the_only_admin_cannot_be_demoted(team):
    err = refused(team, lambda: ops.set_role(team, ADA, TEAM, ADA.email, "member"),
                  LastAdminRefused, "only admin")
    assert err.rule == "at-least-one-admin"
    assert "add another admin first" in str(err)


def test_the_only_admin_cannot_be_demoted_through_members_add(team):
    refused(team, lambda: ops.add_member(team, ADA, TEAM, ADA.email, "viewer"),
            LastAdminRefused, "only admin")


def test_the_only_admin_cannot_be_removed(team):
    refused(team, lambda: ops.remove_member(team, ADA, TEAM, ADA.email), LastAdminRefused,
            "only admin")


def test_with_a_second_admin_the_first_may_step_down(team):
    ops.set_role(team, ADA, TEAM, JOE.email, "admin")
    change, ev = succeeded(team, lambda: ops.set_role(team, JOE, TEAM, ADA.email, "member"))
    assert (change.previous_role, change.role) == ("admin", "member")
    assert roles(team)[ADA.email] == "member"
    # ...and now joe is the only admin, so he is the one protected.
    refused(team, lambda: ops.remove_member(team, JOE, TEAM, JOE.email), LastAdminRefused)


def test_a_new_team_has_its_creator_as_admin(db):
    _, ev = succeeded(db, lambda: ops.create_team(db, ADA, "new-team"))
    assert [(r.email, r.role) for r in queries.roster(db, ADA.email, "new-team")] == [
        (ADA.email, "admin")
    ]
    assert ev.action == "team.create"


def test_a_taken_team_name_is_refused(team):
    refused(team, lambda: ops.create_team(team, EVE, TEAM), Refused, "already exists")


# -- rule 2: adding users and setting roles --------------------------------------------------


def test_members_add_creates_a_team_user(team):
    change, ev = succeeded(team, lambda: ops.add_member(team, ADA, TEAM, " New@Acme.com ", "member"))
    assert change == ops.MemberChange(TEAM, "new@acme.com", "member", None)
    assert roles(team)["new@acme.com"] == "member"
    assert ev.action == "team_membership.create"
    assert ev.target_email == "new@acme.com"
    assert ev.before is None and json.loads(ev.after) == {"role": "member"}


def test_members_add_on_an_existing_user_sets_the_role(team):
    change, ev = succeeded(team, lambda: ops.add_member(team, ADA, TEAM, TIM.email, "member"))
    assert change.previous_role == "viewer" and change.role == "member"
    assert roles(team)[TIM.email] == "member"
    assert ev.action == "team_membership.update"
    assert json.loads(ev.before) == {"role": "viewer"}
    assert json.loads(ev.after) == {"role": "member"}


def test_members_set_changes_a_role_to_admin_or_member(team):
    change, ev = succeeded(team, lambda: ops.set_role(team, ADA, TEAM, JOE.email, "admin"))
    assert (change.previous_role, change.role) == ("member", "admin")
    assert roles(team)[JOE.email] == "admin"
    assert ev.action == "team_membership.update"


def test_members_set_refuses_the_viewer_role(team):
    err = refused(team, lambda: ops.set_role(team, ADA, TEAM, JOE.email, "viewer"), Invalid)
    assert "admin, member" in str(err) and "viewer'" in str(err)


def test_members_set_refuses_a_collaborator_until_members_add(team):
    err = refused(team, lambda: ops.set_role(team, ADA, TEAM, SAM.email, "member"), Refused,
                  "only a collaborator")
    assert "members:add" in str(err)
    ops.add_member(team, ADA, TEAM, SAM.email, "member")
    assert roles(team)[SAM.email] == "member"


def test_members_set_refuses_a_stranger(team):
    refused(team, lambda: ops.set_role(team, ADA, TEAM, "nobody@acme.com", "member"), Refused,
            "not a user")


def test_setting_the_same_role_is_refused(team):
    refused(team, lambda: ops.add_member(team, ADA, TEAM, JOE.email, "member"), Refused,
            "already a member")


def test_an_unknown_role_is_refused_listing_the_valid_ones(team):
    err = refused(team, lambda: ops.add_member(team, ADA, TEAM, "x@acme.com", "owner"), Invalid)
    assert "admin, member, viewer" in str(err)


def test_a_bad_email_is_refused_saying_what_is_wrong(team):
    err = refused(team, lambda: ops.add_member(team, ADA, TEAM, "joe at acme", "member"), Invalid)
    assert "local@domain.tld" in str(err)


@pytest.mark.parametrize("actor", [JOE, TIM, SAM, EVE], ids=lambda a: a.email)
def test_only_admins_manage_users(team, actor):
    refused(team, lambda: ops.add_member(team, actor, TEAM, "new@acme.com", "member"))
    refused(team, lambda: ops.set_role(team, actor, TEAM, TIM.email, "member"))
    refused(team, lambda: ops.remove_member(team, actor, TEAM, TIM.email))


def test_an_unknown_team_is_not_found(team):
    refused(team, lambda: ops.add_member(team, ADA, "no-such-team", JOE.email, "member"),
            NotFound, "teamaccess teams")


# -- rule 3: removal keeps explicit grants and lists them ------------------------------------


def test_removal_lists_the_grants_kept_and_leaves_a_collaborator(team):
    ops.create_app(team, JOE, "another", TEAM)
    removal, ev = succeeded(team, lambda: ops.remove_member(team, ADA, TEAM, JOE.email))
    assert removal.kept_grants == ("another", "joeapp")
    assert removal.role == "member"
    assert roles(team)[JOE.email] == "collaborator"  # the membership is gone, the grants stay
    assert queries.relation_to(team, JOE.email, TEAM).value == "collaborator"
    # Role-based access ends at once: only the granted apps are left.
    assert [a.name for a in queries.apps(team, JOE.email, TEAM)] == ["another", "joeapp"]
    assert grant_of(team, "joeapp", JOE.email) == ("view", "deploy", "operate", "manage")
    assert ev.action == "team_membership.destroy"
    assert json.loads(ev.before) == {"role": "member"}
    assert json.loads(ev.after) == {"kept_grants": ["another", "joeapp"]}


def test_removal_without_grants_lists_none(team):
    removal, _ = succeeded(team, lambda: ops.remove_member(team, ADA, TEAM, TIM.email))
    assert removal.kept_grants == ()
    assert queries.relation_to(team, TIM.email, TEAM).value == "outsider"
    with pytest.raises(Refused):
        queries.apps(team, TIM.email, TEAM)


def test_removing_a_non_member_is_refused(team):
    refused(team, lambda: ops.remove_member(team, ADA, TEAM, SAM.email), NotFound,
            "is not a user")


# -- rule 4: collaborators see only their apps -----------------------------------------------


def test_a_collaborator_sees_only_the_granted_app(team):
    assert [a.name for a in queries.apps(team, SAM.email, TEAM)] == ["joeapp"]
    for read in (queries.roster, queries.resources, queries.billing, queries.audit):
        with pytest.raises(Refused):
            read(team, SAM.email, TEAM)
    # An app of the team they hold no grant on does not exist for them (Heroku's 404).
    with pytest.raises(NotFound, match="Couldn't find that app: myapp"):
        queries.app_access(team, SAM.email, "myapp")


def test_a_collaborator_cannot_create_an_app_in_the_team(team):
    refused(team, lambda: ops.create_app(team, SAM, "samsapp", TEAM), Refused, "collaborator")


def test_a_collaborator_cannot_transfer_an_app_in(team):
    ops.create_app(team, SAM, "sams-own")
    refused(team, lambda: ops.transfer_app(team, SAM, "sams-own", TEAM), Refused, "collaborator")


# -- rule 5: grants --------------------------------------------------------------------------


def test_access_add_always_includes_view(team):
    change, ev = succeeded(team, lambda: ops.grant_access(team, ADA, "myapp", TIM.email, "operate"))
    assert change.permissions == ("view", "operate")
    assert grant_of(team, "myapp", TIM.email) == ("view", "operate")
    assert ev.action == "collaborator.create"
    assert ev.target_email == TIM.email and ev.app_name == "myapp" and ev.team_name == TEAM
    assert json.loads(ev.after) == {"permissions": ["view", "operate"]}
    with team.read() as s:
        assert all(g.can_view for g in s.scalars(select(Grant)))


def test_access_add_refuses_an_unknown_permission(team):
    err = refused(team, lambda: ops.grant_access(team, ADA, "myapp", TIM.email, "deploy,sudo"),
                  Invalid, "sudo")
    assert "view, deploy, operate, manage" in str(err)


def test_granting_to_a_team_admin_is_refused_as_redundant(team):
    refused(team, lambda: ops.grant_access(team, JOE, "joeapp", ADA.email, "deploy"), Refused,
            "already has every permission as a team admin")


def test_updating_a_team_admins_grant_is_refused_as_redundant(team):
    ops.set_role(team, ADA, TEAM, JOE.email, "admin")  # joe keeps his creator grant
    refused(team, lambda: ops.update_access(team, ADA, "joeapp", JOE.email, "deploy"), Refused,
            "already has every permission as a team admin")


def test_a_team_admin_joining_is_refused_as_redundant(team):
    refused(team, lambda: ops.join_app(team, ADA, "myapp"), Refused,
            "already has every permission as a team admin")


def test_removing_a_grant_an_admin_still_holds_from_before_is_allowed(team):
    ops.set_role(team, ADA, TEAM, JOE.email, "admin")
    change, ev = succeeded(team, lambda: ops.revoke_access(team, ADA, "joeapp", JOE.email))
    assert change.previous == ("view", "deploy", "operate", "manage")
    assert grant_of(team, "joeapp", JOE.email) is None
    assert ev.action == "collaborator.destroy"


def test_access_add_on_an_existing_grant_is_refused(team):
    err = refused(team, lambda: ops.grant_access(team, JOE, "joeapp", SAM.email, "operate"),
                  Refused, "already has access")
    assert "use access:update" in str(err)


def test_access_update_replaces_the_whole_set(team):
    change, ev = succeeded(team, lambda: ops.update_access(team, JOE, "joeapp", SAM.email, "operate"))
    assert change.previous == ("view", "deploy")
    assert change.permissions == ("view", "operate")
    assert grant_of(team, "joeapp", SAM.email) == ("view", "operate")
    assert ev.action == "collaborator.update"
    assert json.loads(ev.before) == {"permissions": ["view", "deploy"]}
    assert json.loads(ev.after) == {"permissions": ["view", "operate"]}


def test_access_update_to_view_only_drops_the_rest(team):
    ops.update_access(team, JOE, "joeapp", SAM.email, [])
    assert grant_of(team, "joeapp", SAM.email) == ("view",)


def test_access_update_without_a_grant_is_refused(team):
    refused(team, lambda: ops.update_access(team, ADA, "myapp", TIM.email, "deploy"), NotFound,
            "access:add")


def test_access_update_to_the_same_set_is_refused(team):
    refused(team, lambda: ops.update_access(team, JOE, "joeapp", SAM.email, "view,deploy"))


@pytest.mark.parametrize("actor", [TIM, SAM, EVE], ids=lambda a: a.email)
def test_only_admins_and_manage_holders_change_access(team, actor):
    # An outsider is told the app doesn't exist (Heroku's 404), not who owns it.
    error = NotFound if actor is EVE else Refused
    refused(team, lambda: ops.grant_access(team, actor, "joeapp", "new@acme.com", "view"), error)
    refused(team, lambda: ops.update_access(team, actor, "joeapp", SAM.email, "operate"), error)
    refused(team, lambda: ops.revoke_access(team, actor, "joeapp", JOE.email), error)


def test_a_member_without_manage_cannot_change_access(team):
    refused(team, lambda: ops.grant_access(team, JOE, "myapp", TIM.email, "view"), Refused,
            "manage")


def test_a_collaborator_with_manage_may_grant(team):
    ops.update_access(team, JOE, "joeapp", SAM.email, "manage")
    succeeded(team, lambda: ops.grant_access(team, SAM, "joeapp", TIM.email, "deploy"))
    assert grant_of(team, "joeapp", TIM.email) == ("view", "deploy")


def test_personal_apps_cannot_be_shared(team):
    refused(team, lambda: ops.grant_access(team, EVE, "evesapp", JOE.email, "view"), Refused,
            "move it into a team")


def test_revoking_what_does_not_exist_is_refused(team):
    refused(team, lambda: ops.revoke_access(team, ADA, "myapp", TIM.email), NotFound)


def test_anyone_may_drop_their_own_grant(team):
    succeeded(team, lambda: ops.revoke_access(team, SAM, "joeapp", SAM.email))
    assert grant_of(team, "joeapp", SAM.email) is None


# -- the team page's "add a collaborator" ----------------------------------------------------


def test_an_admin_adds_a_view_only_collaborator(team):
    change, ev = succeeded(team, lambda: ops.add_collaborator(team, ADA, TEAM, "li@partner.co", "myapp"))
    assert change.permissions == ("view",)
    assert grants(team)[("myapp", "li@partner.co")] == (("view",), "collaborator")
    assert [a.name for a in queries.apps(team, "li@partner.co", TEAM)] == ["myapp"]
    assert ev.action == "collaborator.create" and ev.app_name == "myapp" and ev.team_name == TEAM


@pytest.mark.parametrize("actor", [JOE, TIM, SAM, EVE], ids=lambda a: a.email)
def test_only_an_admin_adds_a_collaborator_from_the_team_page(team, actor):
    refused(team, lambda: ops.add_collaborator(team, actor, TEAM, "li@partner.co", "myapp"))


def test_a_team_user_is_not_added_as_a_collaborator(team):
    refused(team, lambda: ops.add_collaborator(team, ADA, TEAM, TIM.email, "myapp"), Refused,
            "access pane")
    refused(team, lambda: ops.add_collaborator(team, ADA, TEAM, ADA.email, "myapp"), Refused,
            "already has every permission as a team admin")


def test_adding_an_existing_collaborator_again_is_refused(team):
    refused(team, lambda: ops.add_collaborator(team, ADA, TEAM, SAM.email, "joeapp"), Refused,
            "use access:update")


def test_a_collaborator_is_added_only_to_the_teams_apps(team):
    refused(team, lambda: ops.add_collaborator(team, ADA, TEAM, SAM.email, "evesapp"), Refused,
            "not an app of")


# -- join and leave --------------------------------------------------------------------------


def test_a_member_joins_an_unlocked_app_with_a_view_grant(team):
    change, ev = succeeded(team, lambda: ops.join_app(team, TIM, "myapp"))
    assert change.permissions == ("view",)
    assert grant_of(team, "myapp", TIM.email) == ("view",)
    assert ev.action == "collaborator.create" and ev.target_email == TIM.email


def test_joining_a_locked_app_is_refused(team):
    ops.lock_app(team, ADA, "myapp")
    refused(team, lambda: ops.join_app(team, TIM, "myapp"), Refused, "locked")


def test_joining_twice_is_refused(team):
    ops.join_app(team, TIM, "myapp")
    refused(team, lambda: ops.join_app(team, TIM, "myapp"), Refused, "already has access")


@pytest.mark.parametrize("actor", [SAM, EVE], ids=lambda a: a.email)
def test_non_users_cannot_join(team, actor):
    # Neither holds a grant on myapp: for them it does not exist.
    refused(team, lambda: ops.join_app(team, actor, "myapp"), NotFound,
            "Couldn't find that app: myapp")


def test_leave_drops_your_own_grant(team):
    change, ev = succeeded(team, lambda: ops.leave_app(team, SAM, "joeapp"))
    assert change.previous == ("view", "deploy") and change.permissions == ()
    assert grant_of(team, "joeapp", SAM.email) is None
    assert ev.action == "collaborator.destroy"
    assert json.loads(ev.before) == {"permissions": ["view", "deploy"]}


def test_leave_without_a_grant_is_refused(team):
    refused(team, lambda: ops.leave_app(team, TIM, "myapp"), Refused, "no grant")


# -- rule 6: creating and transferring in ----------------------------------------------------


def test_a_member_creating_an_app_gets_an_all_four_grant(team):
    change, ev = succeeded(team, lambda: ops.create_app(team, JOE, "newapp", TEAM))
    assert change == ops.AppChange("newapp", TEAM, None, False)
    assert grants(team)[("newapp", JOE.email)] == (("view", "deploy", "operate", "manage"),
                                                   "creator")
    assert ev.action == "app.create" and ev.app_name == "newapp" and ev.team_name == TEAM


def test_an_admin_creating_an_app_gets_no_grant(team):
    ops.create_app(team, ADA, "adminapp", TEAM)
    assert grant_of(team, "adminapp", ADA.email) is None
    rows = {r.email: r for r in queries.app_access(team, ADA.email, "adminapp").rows}
    assert rows[ADA.email].permissions == ("view", "deploy", "operate", "manage")


def test_create_locked_locks_in_the_same_step(team):
    change, ev = succeeded(team, lambda: ops.create_app(team, JOE, "lockedapp", TEAM, locked=True))
    assert change.locked
    (row,) = [a for a in queries.apps(team, ADA.email, TEAM) if a.name == "lockedapp"]
    assert row.locked and row.locked_at is not None
    # The creator still has everything through the grant; a viewer (who joined before) keeps view.
    assert grant_of(team, "lockedapp", JOE.email) == ("view", "deploy", "operate", "manage")


def test_a_viewer_cannot_create_an_app(team):
    refused(team, lambda: ops.create_app(team, TIM, "viewersapp", TEAM), Refused, "viewer")


def test_a_taken_app_name_is_refused(team):
    refused(team, lambda: ops.create_app(team, JOE, "myapp", TEAM), Refused, "already taken")


def test_a_bad_app_name_is_refused(team):
    refused(team, lambda: ops.create_app(team, JOE, "My_App", TEAM), Invalid, "3-30")


def test_a_personal_app_cannot_be_created_locked(team):
    refused(team, lambda: ops.create_app(team, JOE, "joes-own", locked=True), Invalid, "--team")


def test_a_member_transfers_their_personal_app_in_and_gets_a_grant(team):
    ops.create_app(team, JOE, "joes-own")
    change, ev = succeeded(team, lambda: ops.transfer_app(team, JOE, "joes-own", TEAM, locked=True))
    assert change.team == TEAM and change.owner is None and change.locked
    assert grant_of(team, "joes-own", JOE.email) == ("view", "deploy", "operate", "manage")
    assert ev.action == "app_transfer.create" and ev.team_name == TEAM
    assert grants(team)[("joes-own", JOE.email)] == (("view", "deploy", "operate", "manage"),
                                                     "transfer")


def test_an_admin_transferring_in_gets_no_grant(team):
    ops.create_app(team, ADA, "adas-own")
    ops.transfer_app(team, ADA, "adas-own", TEAM)
    assert grant_of(team, "adas-own", ADA.email) is None


def test_nobody_transfers_someone_elses_personal_app(team):
    refused(team, lambda: ops.transfer_app(team, ADA, "evesapp", TEAM), NotFound,
            "Couldn't find that app: evesapp")


def test_a_viewer_cannot_transfer_in(team):
    ops.create_app(team, TIM, "tims-own")
    refused(team, lambda: ops.transfer_app(team, TIM, "tims-own", TEAM), Refused, "viewer")


# -- rule 7: transferring out ----------------------------------------------------------------


def test_transfer_out_removes_every_grant(team):
    ops.lock_app(team, ADA, "joeapp")
    change, ev = succeeded(team, lambda: ops.transfer_app(team, ADA, "joeapp", EVE.email))
    assert change.team is None and change.owner == EVE.email and not change.locked
    assert change.removed_grants == (JOE.email, SAM.email)
    assert [key for key in grants(team) if key[0] == "joeapp"] == []
    assert "joeapp" not in [a.name for a in queries.apps(team, ADA.email, TEAM)]
    assert "joeapp" in [a.name for a in queries.apps(team, EVE.email)]
    assert json.loads(ev.after) == {"owner": EVE.email,
                                    "removed_grants": [JOE.email, SAM.email]}


def test_only_an_admin_transfers_out(team):
    # joe has manage on joeapp, but moving it out of the team is an admin's call.
    refused(team, lambda: ops.transfer_app(team, JOE, "joeapp", JOE.email), Refused, "admin")


def test_transfer_to_an_unknown_account_is_refused(team):
    refused(team, lambda: ops.transfer_app(team, ADA, "joeapp", "ghost@acme.com"), NotFound)


# -- rule 8: lock and unlock -----------------------------------------------------------------


def test_lock_and_unlock(team):
    change, ev = succeeded(team, lambda: ops.lock_app(team, ADA, "myapp"))
    assert change.locked
    assert ev.action == "app.update"
    assert json.loads(ev.before) == {"locked": False} and json.loads(ev.after) == {"locked": True}
    change, ev = succeeded(team, lambda: ops.unlock_app(team, ADA, "myapp"))
    assert not change.locked
    assert json.loads(ev.after) == {"locked": False}


def test_locking_a_locked_app_gives_the_seeds_message(team):
    ops.lock_app(team, ADA, "myapp")
    err = refused(team, lambda: ops.lock_app(team, ADA, "myapp"))
    assert str(err) == "cannot lock myapp. This app is already locked."


def test_unlocking_an_unlocked_app_gives_the_seeds_message(team):
    err = refused(team, lambda: ops.unlock_app(team, ADA, "myapp"))
    assert str(err) == "cannot unlock myapp. This app is not locked."


def test_a_manage_holder_may_lock(team):
    succeeded(team, lambda: ops.lock_app(team, JOE, "joeapp"))


@pytest.mark.parametrize("actor", [JOE, TIM, SAM, EVE], ids=lambda a: a.email)
def test_others_may_not_lock(team, actor):
    if actor in (SAM, EVE):  # no grant on myapp and no role: it does not exist for them
        refused(team, lambda: ops.lock_app(team, actor, "myapp"), NotFound, "Couldn't find that app")
    else:
        refused(team, lambda: ops.lock_app(team, actor, "myapp"), Refused, "cannot lock myapp")


def test_a_personal_app_cannot_be_locked(team):
    refused(team, lambda: ops.lock_app(team, EVE, "evesapp"), Refused, "Only team apps")


def test_a_lock_freezes_access_for_users_added_after_it(team):
    ops.lock_app(team, ADA, "myapp")
    ops.add_member(team, ADA, TEAM, "late@acme.com", "member")
    before = {a.name: a.permissions for a in queries.apps(team, TIM.email, TEAM)}
    late = {a.name: a.permissions for a in queries.apps(team, "late@acme.com", TEAM)}
    assert before["myapp"] == ("view",)  # tim joined before the lock: kept
    assert late["myapp"] == ()  # listed (locked apps are listed) but no access
    with pytest.raises(Refused):
        queries.app_access(team, "late@acme.com", "myapp")
    ops.grant_access(team, ADA, "myapp", "late@acme.com", "view")  # explicitly added
    assert queries.app_access(team, "late@acme.com", "myapp").actor_permissions == ("view",)


# -- destroy and rename ----------------------------------------------------------------------


def test_a_manage_holder_destroys_an_app_with_its_grants(team):
    change, ev = succeeded(team, lambda: ops.destroy_app(team, JOE, "joeapp"))
    assert change.removed_grants == (JOE.email, SAM.email)
    assert "joeapp" not in [a.name for a in queries.apps(team, ADA.email, TEAM)]
    with team.read() as s:
        assert s.scalars(select(Grant)).all() == []
    assert ev.action == "app.destroy" and ev.app_name == "joeapp" and ev.team_name == TEAM


@pytest.mark.parametrize("actor", [TIM, SAM, EVE], ids=lambda a: a.email)
def test_others_may_not_destroy(team, actor):
    error = NotFound if actor is EVE else Refused
    refused(team, lambda: ops.destroy_app(team, actor, "joeapp"), error, "joeapp")


def test_an_unknown_app_is_not_found(team):
    refused(team, lambda: ops.destroy_app(team, ADA, "ghost-app"), NotFound, "ghost-app")


def test_an_admin_renames_the_team(team):
    new, ev = succeeded(team, lambda: ops.rename_team(team, ADA, TEAM, "acme-gadgets"))
    assert new == "acme-gadgets"
    assert ev.action == "team.update"
    assert json.loads(ev.before) == {"name": TEAM} and json.loads(ev.after) == {"name": "acme-gadgets"}
    assert [t.name for t in queries.teams(team, ADA.email)] == ["acme-gadgets"]


@pytest.mark.parametrize("actor", [JOE, TIM, SAM, EVE], ids=lambda a: a.email)
def test_only_an_admin_renames_the_team(team, actor):
    refused(team, lambda: ops.rename_team(team, actor, TEAM, "acme-gadgets"))


# -- rule 9: MFA -----------------------------------------------------------------------------


def test_mfa_is_changed_by_its_owner_only(team):
    others = {r.email: r.mfa for r in queries.roster(team, ADA.email, TEAM) if r.email != JOE.email}
    _, ev = succeeded(team, lambda: ops.set_mfa(team, JOE, True))
    mfa = {r.email: r.mfa for r in queries.roster(team, ADA.email, TEAM)}
    assert mfa.pop(JOE.email) is True
    assert mfa == others
    assert ev.action == "account.update" and ev.target_email == JOE.email
    assert ev.actor_email == JOE.email
    assert json.loads(ev.before) == {"mfa": False} and json.loads(ev.after) == {"mfa": True}


def test_mfa_already_in_that_state_is_refused(team):
    refused(team, lambda: ops.set_mfa(team, JOE, False), Refused, "already disabled")


def test_mfa_of_an_unknown_account_is_refused(team):
    refused(team, lambda: ops.set_mfa(team, ops.Actor("ghost@acme.com"), True), NotFound)


def test_the_mfa_change_shows_in_the_team_audit_log(team):
    ops.set_mfa(team, TIM, True)
    assert queries.audit(team, ADA.email, TEAM)[0].action == "account.update"


# -- rule 10: the audit log ------------------------------------------------------------------


def test_an_ok_event_records_every_field(team):
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    ops.grant_access(team, ops.Actor("joe@acme.com", "joe-login"), "joeapp", TIM.email, "deploy")
    ev = last_event(team)
    at = ev.at.replace(tzinfo=None)
    assert start <= at <= datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)
    assert (ev.actor_email, ev.actor_login) == ("joe@acme.com", "joe-login")
    assert ev.action == "collaborator.create"
    assert (ev.team_name, ev.app_name, ev.target_email) == (TEAM, "joeapp", TIM.email)
    assert ev.team_id is not None
    assert ev.before is None
    assert json.loads(ev.after) == {"permissions": ["view", "deploy"]}
    assert ev.outcome == "ok"


def test_a_denied_event_records_who_tried_what_and_why(team):
    err = refused(team, lambda: ops.add_member(team, ops.Actor(TIM.email, "tim-login"), TEAM,
                                               "mallory@example.com", "admin"))
    ev = last_event(team)
    assert (ev.actor_email, ev.actor_login) == (TIM.email, "tim-login")
    assert ev.action == "team_membership.create"
    assert (ev.team_name, ev.target_email) == (TEAM, "mallory@example.com")
    assert ev.outcome == "denied" and ev.reason == str(err)
    assert queries.audit(team, ADA.email, TEAM)[0].outcome == "denied"


SPEC_ACTIONS = {
    "team_membership.create", "team_membership.update", "team_membership.destroy",
    "collaborator.create", "collaborator.update", "collaborator.destroy",
    "app.create", "app.update", "app.destroy", "app_transfer.create", "team.update",
    "account.update",
    "team.create",  # not in rule 10's list (the SPEC has no team creation row); Heroku's name
}


def test_every_event_uses_a_heroku_audit_action_name(team):
    ops.set_role(team, ADA, TEAM, JOE.email, "admin")
    ops.remove_member(team, ADA, TEAM, TIM.email)
    ops.update_access(team, JOE, "joeapp", SAM.email, "operate")
    ops.revoke_access(team, JOE, "joeapp", SAM.email)
    ops.lock_app(team, ADA, "myapp")
    ops.transfer_app(team, ADA, "joeapp", EVE.email)
    ops.destroy_app(team, ADA, "myapp")
    ops.rename_team(team, ADA, TEAM, "acme-gadgets")
    ops.set_mfa(team, ADA, True)
    actions = {e.action for e in audit_events(team)}
    assert actions <= SPEC_ACTIONS
    assert actions == SPEC_ACTIONS  # and the run above used every one


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_event SET outcome = 'ok'", "DELETE FROM audit_event"],
    ids=["update", "delete"],
)
def test_the_audit_log_is_append_only(team, statement):
    events = [(e.id, e.outcome, e.reason) for e in audit_events(team)]
    with pytest.raises(Exception, match="append-only"):
        with team.engine.begin() as conn:
            conn.execute(text(statement))
    # Also through a plain sqlite3 connection, as anyone with the file could try.
    raw = sqlite3.connect(team.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(statement)
    finally:
        raw.close()
    assert [(e.id, e.outcome, e.reason) for e in audit_events(team)] == events


# -- rule 11: refusals are one line and change nothing ----------------------------------------


def test_a_refusal_with_an_email_that_does_not_exist_creates_no_account(team):
    # A denied grant must not leave the target's new account behind.
    refused(team, lambda: ops.grant_access(team, TIM, "myapp", "brand-new@acme.com", "view"))
    assert queries.account(team, "brand-new@acme.com") is None


def test_a_refusal_names_the_rule_that_refused(team):
    err = refused(team, lambda: ops.add_member(team, JOE, TEAM, "new@acme.com", "member"))
    assert err.rule == "team:manage_members"
    assert "admin" in str(err)


# -- SPEC "Input": what the operations accept ------------------------------------------------

@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("joe@acme.com", "joe@acme.com"),
        ("  Joe.Smith+ops@Acme-Widgets.co.uk ", "joe.smith+ops@acme-widgets.co.uk"),
        ("a_b%c-d@x.io", "a_b%c-d@x.io"),
        ("x" * 64 + "@" + "d" * 185 + ".com", "x" * 64 + "@" + "d" * 185 + ".com"),  # 254
    ],
    ids=["plain", "trimmed and lower-cased", "every allowed local character", "254 characters"],
)
def test_valid_emails(given, stored):
    assert validate.email(given) == stored


@pytest.mark.parametrize(
    "given",
    ["", "   ", "joe", "joe@", "@acme.com", "joe@acme", "joe@acme.c", "joe@@acme.com",
     "jo e@acme.com", "joe@acme..com", "joe@acme.c0m", "jöe@acme.com", "joe@acme.com\x1b[31m",
     "<b>joe</b>@acme.com", "x" * 64 + "@" + "d" * 186 + ".com"],
    ids=["empty", "blank", "no at", "no domain", "no local part", "no top-level part",
         "one-letter top-level part", "two ats", "space", "empty label", "digit in tld",
         "non-ascii", "escape sequence", "markup", "255 characters"],
)
def test_invalid_emails_are_refused_in_one_line(given):
    with pytest.raises(Invalid) as info:
        validate.email(given)
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message
    assert "email" in message


@pytest.mark.parametrize(
    ("given", "kind", "ok"),
    [
        ("abc", "app", True), ("ab", "app", False), ("a" * 30, "app", True),
        ("a" * 31, "app", False), ("my-app-2", "app", True), ("my-app-", "app", False),
        ("2app", "app", False), ("My-app", "app", False), ("my_app", "app", False),
        ("ab", "team", True), ("a", "team", False), ("acme-widgets", "team", True),
        ("acme widgets", "team", False), ("-acme", "team", False),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else str(v),
)
def test_app_and_team_names(given, kind, ok):
    check = validate.app_name if kind == "app" else validate.team_name
    if ok:
        assert check(given) == given
    else:
        with pytest.raises(Invalid, match=f"Invalid {kind} name"):
            check(given)


def test_permissions_parse_and_always_hold_view():
    assert validate.permissions(None) == {"view"}
    assert validate.permissions(" Deploy , operate,") == {"view", "deploy", "operate"}
    assert validate.permissions(["manage"]) == {"view", "manage"}
    with pytest.raises(Invalid, match="view, deploy, operate, manage"):
        validate.permissions("admin")


# A naive reading of SPEC "Input" for emails, compared with validate.email on random text.
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"


def naive_email_ok(value: str) -> bool:
    text = value.strip().lower()
    if not text or len(text) > 254 or text.count("@") != 1:
        return False
    local, domain = text.split("@")
    if not local or any(c not in _LETTERS + _DIGITS + "._%+-" for c in local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or any(not label for label in labels):
        return False
    if any(c not in _LETTERS + _DIGITS + "-" for label in labels for c in label):
        return False
    tld = labels[-1]
    return len(tld) >= 2 and all(c in _LETTERS for c in tld)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZk09._%+-@. \t\n\x1bé\u212a")), max_size=20))
def test_email_rule_agrees_with_a_naive_reading(value):
    try:
        validate.email(value)
        accepted = True
    except Invalid as err:
        accepted = False
        assert "\n" not in str(err)
    assert accepted is naive_email_ok(value), repr(value)
