"""The dashboard driven like a person (Textual's Pilot): every flow changes the database, shows it,
shows the store's reason when refused, and backs out on escape without a change."""

from __future__ import annotations

from conftest import column, make, open_apps, open_pane, press, rows, settle, status, sync
from sqlalchemy import select, text
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.models import Account
from teamaccess.tui.app import TeamAccessApp
from teamaccess.tui.screens.access import AccessScreen
from teamaccess.tui.widgets.dialogs import (
    AddUserDialog,
    CollaboratorDialog,
    ConfirmDialog,
    CreateAppDialog,
    DestroyDialog,
    GrantDialog,
    HelpScreen,
    PermissionsDialog,
    RoleDialog,
    TeamSwitcher,
    TransferInDialog,
    TransferOutDialog,
)
from textual.widgets import Checkbox, Input, Select

TEAM = "acme-widgets"
ADA = ops.Actor("ada@acme.com", "ada")
SIZE = (100, 30)


def roster_roles(db: Database) -> dict[str, str]:
    return {m.email: m.role for m in queries.roster(db, "ada@acme.com", TEAM)}


def footer_keys(app: TeamAccessApp) -> set[str]:
    """The ids of the bindings the footer offers now (enabled ones)."""
    return {a.binding.id for a in app.screen.active_bindings.values()
            if a.enabled and a.binding.id and a.binding.show}


# -- roster ----------------------------------------------------------------------------------


@sync
async def test_roster_lists_every_user_with_mfa_badges_and_a_count(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        shown = {r[0]: r for r in rows(app)}
        expected = queries.roster(demo, "ada@acme.com", TEAM)
        assert set(shown) == {m.email for m in expected}
        for m in expected:
            assert shown[m.email][2] == m.role
            assert ("no MFA" in shown[m.email][3]) == (not m.mfa)
        without = sum(1 for m in expected if not m.mfa)
        assert f"no MFA: {without}" in status(app)
        assert app.roster_shown_at is not None and app.roster_shown_at >= app.started_at


@sync
async def test_filter_as_you_type_then_escape_clears_it(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "slash", "j", "o")
        assert column(app) == ["joe@acme.com", "john@acme.com", "katherine@acme.com"]  # Johnson
        await press(pilot, app, "escape")
        assert len(rows(app)) == len(roster_roles(demo))
        assert not app.main.active_view.filter_text


@sync
async def test_no_mfa_toggle_and_sort(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "m")
        no_mfa = {m.email for m in queries.roster(demo, "ada@acme.com", TEAM) if not m.mfa}
        assert set(column(app)) == no_mfa
        await press(pilot, app, "m", "s")  # sort by name
        names = column(app, 1)
        assert names == sorted(names, key=str.lower) and names[0] == "Ada Lovelace"
        await press(pilot, app, "s")  # by role: admins first
        assert column(app, 2)[0] == "admin" and column(app, 2)[-1] == "collaborator"


@sync
async def test_add_user(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "a")
        dialog = app.screen
        assert isinstance(dialog, AddUserDialog)
        dialog.query_one("#email", Input).value = "newbie@acme.com"
        dialog.query_one("#role-viewer").value = True
        await press(pilot, app, "ctrl+s")
        assert roster_roles(demo)["newbie@acme.com"] == "viewer"
        assert "newbie@acme.com" in column(app)
        assert "Added newbie@acme.com" in app.last_message


@sync
async def test_add_user_with_a_bad_email_keeps_the_form_and_changes_nothing(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        before = roster_roles(demo)
        await press(pilot, app, "a")
        dialog = app.screen
        dialog.query_one("#email", Input).value = "not an email"
        await press(pilot, app, "enter")
        assert app.screen is dialog  # still open, saying why
        assert "Invalid email" in str(dialog.query_one("#error").render())
        await press(pilot, app, "escape")
        assert not isinstance(app.screen, AddUserDialog)
        assert roster_roles(demo) == before


@sync
async def test_escape_from_add_user_changes_nothing(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        events = queries.audit_count(demo)
        await press(pilot, app, "a")
        app.screen.query_one("#email", Input).value = "never@acme.com"
        await press(pilot, app, "escape")
        assert "never@acme.com" not in roster_roles(demo)
        assert queries.audit_count(demo) == events


@sync
async def test_change_role(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.main.active_view.table.move_cursor(row=column(app).index("joe@acme.com"))
        await press(pilot, app, "e")
        dialog = app.screen
        assert isinstance(dialog, RoleDialog)
        dialog.query_one("#role-admin").value = True
        await press(pilot, app, "ctrl+s")
        assert roster_roles(demo)["joe@acme.com"] == "admin"
        assert rows(app)[column(app).index("joe@acme.com")][2] == "admin"


@sync
async def test_refused_role_change_shows_the_store_reason(tmp_path):
    db = Database(tmp_path / "solo.db")
    ops.create_team(db, ADA, "solo")
    ops.add_member(db, ADA, "solo", "joe@acme.com", "admin")
    app = make(db, team="solo")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.main.active_view.table.move_cursor(row=column(app).index("joe@acme.com"))
        await press(pilot, app, "e")
        # joe demotes ada elsewhere meanwhile: the store refuses what the form allowed
        ops.set_role(db, ops.Actor("joe@acme.com"), "solo", "ada@acme.com", "member")
        app.screen.query_one("#role-member").value = True
        await press(pilot, app, "ctrl+s")
        error = str(app.screen.query_one("#error").render())
        assert "You are a member of solo" in error
        await press(pilot, app, "escape")
        assert roster_roles_of(db, "solo") == {"ada@acme.com": "member", "joe@acme.com": "admin"}
    db.close()


def roster_roles_of(db: Database, team: str) -> dict[str, str]:
    return {m.email: m.role for m in queries.roster(db, "ada@acme.com", team)}


@sync
async def test_remove_user_confirms_naming_user_and_kept_grants(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.main.active_view.table.move_cursor(row=column(app).index("joe@acme.com"))
        await press(pilot, app, "d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        body = str(dialog.query_one(".dialog-body").render())
        assert "joe@acme.com" in body
        for kept in ("test", "website-prod", "website-staging"):
            assert kept in body
        await press(pilot, app, "n")
        assert "joe@acme.com" in roster_roles(demo)
        await press(pilot, app, "d")
        await press(pilot, app, "y")
        assert roster_roles(demo)["joe@acme.com"] == "collaborator"  # grants kept (SPEC rule 3)
        assert rows(app)[column(app).index("joe@acme.com")][2] == "collaborator"
        assert "grants remain on: test, website-prod, website-staging" in app.last_message


@sync
async def test_add_collaborator(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "c")
        dialog = app.screen
        assert isinstance(dialog, CollaboratorDialog)
        dialog.query_one("#email", Input).value = "pat@partner.co"
        dialog.query_one("#app", Select).value = "docs-site"
        await press(pilot, app, "ctrl+s")
        why = queries.why(demo, "ada@acme.com", "docs-site", "pat@partner.co")
        assert [w.permission for w in why if w.held] == ["view"]


# -- apps ------------------------------------------------------------------------------------


def app_row(db: Database, name: str, who: str = "ada@acme.com") -> queries.AppRow | None:
    return next((a for a in queries.apps(db, who, TEAM) if a.name == name), None)


@sync
async def test_apps_list_with_lock_words_and_own_permissions(demo):
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app)
        shown = {r[0]: r for r in rows(app)}
        assert shown["website-prod"][1] == "locked" and shown["test"][1] == "open"
        assert shown["website-prod"][3] == "view deploy (grant)"  # what john holds is a grant
        assert shown["admin-panel"][3] == "none (locked)"


@sync
async def test_create_locked_app_lock_unlock(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app)
        await press(pilot, app, "n")
        dialog = app.screen
        assert isinstance(dialog, CreateAppDialog)
        dialog.query_one("#name", Input).value = "fresh-app"
        dialog.query_one("#locked", Checkbox).value = True
        await press(pilot, app, "ctrl+s")
        assert app_row(demo, "fresh-app").locked
        assert rows(app)[column(app).index("fresh-app")][1] == "locked"
        app.main.active_view.table.move_cursor(row=column(app).index("fresh-app"))
        await settle(pilot, app)
        assert "apps.lock" not in footer_keys(app) and "apps.unlock" in footer_keys(app)
        await press(pilot, app, "u")
        assert not app_row(demo, "fresh-app").locked
        await press(pilot, app, "l")
        assert app_row(demo, "fresh-app").locked


@sync
async def test_refused_lock_shows_the_store_reason_and_changes_nothing(demo):
    app = make(demo)  # no watcher: the screen still thinks "test" is open
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app, "test")
        ops.lock_app(demo, ADA, "test")  # someone else was quicker
        locked_at = app_row(demo, "test").locked_at
        await press(pilot, app, "l")
        assert app.last_error == "Cannot lock test. This app is already locked."
        assert app_row(demo, "test").locked_at == locked_at
        assert rows(app)[column(app).index("test")][1] == "locked"  # and the list caught up


@sync
async def test_join_and_leave_as_a_member(demo):
    app = make(demo, "joe@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app, "api-staging")
        assert "apps.join" in footer_keys(app) and "apps.leave" not in footer_keys(app)
        await press(pilot, app, "plus")
        view = queries.app_access(demo, "ada@acme.com", "api-staging")
        assert next(r for r in view.rows if r.email == "joe@acme.com").grant == ("view",)
        assert "apps.leave" in footer_keys(app) and "apps.join" not in footer_keys(app)
        await press(pilot, app, "minus")
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, app, "y")
        view = queries.app_access(demo, "ada@acme.com", "api-staging")
        assert next(r for r in view.rows if r.email == "joe@acme.com").grant is None


@sync
async def test_transfer_out_confirms_listing_grants_then_escape_or_yes(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app, "website-staging")
        await press(pilot, app, "o")
        assert isinstance(app.screen, TransferOutDialog)
        app.screen.query_one("#recipient", Input).value = "joe@acme.com"
        await press(pilot, app, "ctrl+s")
        confirm = app.screen
        assert isinstance(confirm, ConfirmDialog)
        body = str(confirm.query_one(".dialog-body").render())
        assert "sam@freelance.dev" in body and "joe@acme.com" in body
        await press(pilot, app, "escape")
        assert app_row(demo, "website-staging") is not None
        await press(pilot, app, "o")
        app.screen.query_one("#recipient", Input).value = "joe@acme.com"
        await press(pilot, app, "ctrl+s")
        await press(pilot, app, "y")
        assert app_row(demo, "website-staging") is None
        assert "website-staging" not in column(app)
        mine = queries.apps(demo, "joe@acme.com")
        assert any(a.name == "website-staging" and a.owner == "joe@acme.com" for a in mine)


@sync
async def test_transfer_in_a_personal_app(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app)
        await press(pilot, app, "i")
        dialog = app.screen
        assert isinstance(dialog, TransferInDialog)
        dialog.query_one("#app", Select).value = "ada-sandbox"
        await press(pilot, app, "ctrl+s")
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, app, "y")
        assert app_row(demo, "ada-sandbox") is not None
        assert "ada-sandbox" in column(app)


@sync
async def test_destroy_asks_first(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app, "ml-models")
        await press(pilot, app, "d")
        assert isinstance(app.screen, DestroyDialog)
        await press(pilot, app, "escape")
        assert app_row(demo, "ml-models") is not None
        await press(pilot, app, "d", *"ml-models", "enter")  # the name typed, as Heroku asks
        assert app_row(demo, "ml-models") is None
        assert "ml-models" not in column(app)


# -- access pane -----------------------------------------------------------------------------


@sync
async def test_access_pane_shows_who_and_why(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        shown = {r[0]: r for r in rows(app)}
        assert shown["ada@acme.com"][4] == "admin of acme-widgets"
        assert shown["joe@acme.com"][2] == "V D O M" and "created the app" in shown["joe@acme.com"][4]
        assert shown["john@acme.com"][2] == "V D · ·" and "explicit grant" in shown["john@acme.com"][4]
        assert "since before the lock" in shown["alan@acme.com"][4]
        assert "guido@acme.com" not in shown  # joined after the lock, no grant
        await press(pilot, app, "escape")
        assert not isinstance(app.screen, AccessScreen)


@sync
async def test_grant_change_revoke(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        await press(pilot, app, "a")
        dialog = app.screen
        assert isinstance(dialog, GrantDialog)
        dialog.query_one("#email", Input).value = "pat@partner.co"
        dialog.query_one("#perm-deploy", Checkbox).value = True
        await press(pilot, app, "ctrl+s")
        grant = lambda: next((r.grant for r in queries.app_access(  # noqa: E731
            demo, "ada@acme.com", "api-staging").rows if r.email == "pat@partner.co"), None)
        assert grant() == ("view", "deploy")
        assert "pat@partner.co" in column(app)
        app.screen.view.table.move_cursor(row=column(app).index("pat@partner.co"))
        await press(pilot, app, "e")
        dialog = app.screen
        assert isinstance(dialog, PermissionsDialog)
        assert dialog.query_one("#perm-view", Checkbox).disabled
        dialog.query_one("#perm-deploy", Checkbox).value = False
        dialog.query_one("#perm-manage", Checkbox).value = True
        await press(pilot, app, "ctrl+s")
        assert grant() == ("view", "manage")
        assert rows(app)[column(app).index("pat@partner.co")][2] == "V · · M"
        await press(pilot, app, "d")
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, app, "n")
        assert grant() == ("view", "manage")
        await press(pilot, app, "d", "y")
        assert grant() is None
        assert "pat@partner.co" not in column(app)


@sync
async def test_grant_to_an_admin_is_refused_with_the_reason(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        events = queries.audit_count(demo)
        await press(pilot, app, "a")
        app.screen.query_one("#email", Input).value = "grace@acme.com"
        await press(pilot, app, "ctrl+s")
        assert "already has every permission as a team admin" in str(
            app.screen.query_one("#error").render())
        await press(pilot, app, "escape")
        assert queries.audit_count(demo) == events + 1  # the denied attempt, nothing else
        assert all(r.grant is None for r in queries.app_access(demo, "ada@acme.com", "api-staging").rows
                   if r.email == "grace@acme.com")


@sync
async def test_member_sees_an_unlocked_pane_read_only(demo):
    app = make(demo, "alan@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        assert rows(app)
        keys = footer_keys(app)
        assert not keys & {"access.grant", "access.change", "access.revoke", "access.lock"}
        assert "read-only" in str(app.screen.query_one("#summary").render())
        await press(pilot, app, "a")  # not offered, so nothing opens
        assert isinstance(app.screen, AccessScreen)


@sync
async def test_locked_app_without_view_says_so(demo):
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "admin-panel")
        view = app.screen.view
        assert view.refusal and "is locked" in view.refusal and "grant" in view.refusal
        assert "locked" in str(view.query_one(".refusal").render())


# -- roles -----------------------------------------------------------------------------------


@sync
async def test_member_is_offered_no_member_management_and_no_billing_or_audit(demo):
    app = make(demo, "joe@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert len(rows(app)) == len(roster_roles(demo))  # members may list the team
        assert not footer_keys(app) & {"roster.add", "roster.role", "roster.remove",
                                       "roster.collaborator"}
        titles = [t for t, _h, _c in app.palette_commands(app.screen)]
        assert not any("Add a team user" in t or "Remove" in t for t in titles)
        await press(pilot, app, "a")
        assert not isinstance(app.screen, AddUserDialog)
        await press(pilot, app, "5")
        assert "must be a team admin" in app.main.active_view.refusal
        await press(pilot, app, "3")
        assert "must be a team admin" in app.main.active_view.refusal
        await press(pilot, app, "2")
        keys = footer_keys(app)
        assert "apps.create" in keys and "apps.transfer_in" in keys
        assert "apps.transfer_out" not in keys


@sync
async def test_viewer_may_not_create_apps(demo):
    app = make(demo, "tim@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app, "docs-site")
        keys = footer_keys(app)
        assert "apps.create" not in keys and "apps.transfer_in" not in keys
        assert "apps.lock" in keys and "apps.destroy" in keys  # tim holds manage on docs-site
        await press(pilot, app, "4")
        assert rows(app)  # viewers see resources


@sync
async def test_collaborator_sees_only_granted_apps(demo):
    app = make(demo, "sam@freelance.dev")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.relation.value == "collaborator"
        assert app.main.query_one("#tabs").active == "apps"  # starts where they can see
        assert column(app) == ["marketing-site", "website-staging"]
        assert not footer_keys(app) & {"apps.create", "apps.transfer_in", "apps.lock"}
        for tab in ("1", "3", "4", "5"):
            await press(pilot, app, tab)
            assert app.main.active_view.refusal
        await press(pilot, app, "1")
        assert "collaborator" in app.main.active_view.refusal


@sync
async def test_admin_palette_lists_the_roster_actions(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        titles = [t for t, _h, _c in app.palette_commands(app.screen)]
        for wanted in ("Add a team user with a role", "Remove the selected user from the team",
                       "Go to Apps", "Go to Billing"):
            assert wanted in titles
        await press(pilot, app, "ctrl+p")
        await press(pilot, app, *"billing")
        await press(pilot, app, "enter")
        assert app.main.query_one("#tabs").active == "billing"


# -- keys, help, teams, size -------------------------------------------------------------------


@sync
async def test_help_opens_and_escape_closes(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Add a team user" in str(app.screen.query_one(".help-body Static").render())
        await press(pilot, app, "escape")
        assert not isinstance(app.screen, HelpScreen)
        await press(pilot, app, "f1")
        assert isinstance(app.screen, HelpScreen)


@sync
async def test_team_switcher(demo):
    ops.create_team(demo, ADA, "second-team")
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "t")
        assert isinstance(app.screen, TeamSwitcher)
        await press(pilot, app, "escape")
        assert app.team == TEAM
        await press(pilot, app, "t", "j", "enter")
        assert app.team == "second-team"
        assert column(app) == ["ada@acme.com"]
        assert "second-team" in str(app.main.query_one("HeaderBar").render())


@sync
async def test_team_is_chosen_when_not_given(demo):
    app = make(demo, "joe@acme.com", team=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.team == TEAM and len(rows(app)) == len(roster_roles(demo))


@sync
async def test_below_80x24_says_so(demo):
    app = make(demo)
    async with app.run_test(size=(70, 20)) as pilot:
        await settle(pilot, app)
        note = app.screen.query_one(".too-small")
        assert note.display and note.region.width > 0
        assert app.main.query_one("TabbedContent").region.width == 0


# -- live updates and literal text ---------------------------------------------------------------


@sync
async def test_outside_changes_appear_keeping_cursor_and_filter(demo):
    app = make(demo, watch=True, poll_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "slash", "a", "c", "m", "e", "enter")
        view = app.main.active_view
        view.table.move_cursor(row=column(app).index("ken@acme.com"))
        await settle(pilot, app)
        outsider = ops.Actor("grace@acme.com", "grace")
        ops.add_member(demo, outsider, TEAM, "aaron@acme.com", "member")  # sorts first
        ops.set_mfa(demo, ops.Actor("ken@acme.com"), False)
        for _ in range(100):
            await pilot.pause(0.02)
            if "aaron@acme.com" in column(app) and "no MFA" in rows(app)[column(app).index("ken@acme.com")][3]:
                break
        else:
            raise AssertionError("the roster did not follow the outside change")
        assert column(app)[0] == "aaron@acme.com"
        assert view.filter_text == "acme"
        assert view.table.cursor_key == "ken@acme.com"


@sync
async def test_markup_and_escapes_in_user_data_are_shown_literally(demo):
    evil_name = "[bold red]Mallory[/] \x1b[31mred\x1b[0m"
    with demo.engine.begin() as conn:
        conn.execute(text("UPDATE account SET name = :n WHERE email = 'joe@acme.com'"),
                     {"n": evil_name})
        conn.execute(text(
            "INSERT INTO audit_event (at, actor_email, action, team_id, team_name, app_name, "
            "outcome, reason) SELECT '2030-01-01 00:00:00', '[link=x]evil@acme.com[/link]', "
            "'app.update', id, name, '[reverse]app', 'denied', 'no \x1b]0;pwned\x07 [b]way[/b]' "
            "FROM team WHERE name = 'acme-widgets'"))
    with demo.read() as s:
        assert s.scalars(select(Account.name).where(Account.email == "joe@acme.com")).one() == evil_name
    app = make(demo)
    async with app.run_test(size=(180, 30)) as pilot:  # wide enough for every cell in full
        await settle(pilot, app)
        joe = rows(app)[column(app).index("joe@acme.com")]
        assert joe[1] == "[bold red]Mallory[/] ␛[31mred␛[0m"
        roster_svg = app.export_screenshot()
        assert "Mallory[/]" in roster_svg and "\x1b" not in roster_svg
        await press(pilot, app, "3")
        first = rows(app)[0]
        assert first[2] == "[link=x]evil@acme.com[/link]"
        assert first[5] == "[reverse]app"  # after the Via column
        assert first[7] == "no ␛]0;pwned␇ [b]way[/b]"
        audit_svg = app.export_screenshot()
        assert "evil@acme.com[/link]" in audit_svg and "\x1b" not in audit_svg


@sync
async def test_audit_newest_first_filter_and_details(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "3")
        whens = column(app, 1)
        assert whens == sorted(whens, reverse=True) and len(whens) == 7
        await press(pilot, app, "slash", *"denied", "enter")
        assert column(app, 6) == ["mallory@example.com"]  # Target, after the Via column
        await press(pilot, app, "enter")
        assert isinstance(app.screen, HelpScreen)
        assert "to add, change or remove team users" in " ".join(str(  # wrapped, indented
            app.screen.query_one(".help-body Static").render()).split())
        await press(pilot, app, "escape")
        assert not isinstance(app.screen, HelpScreen)


@sync
async def test_enter_on_a_user_shows_what_they_can_reach(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.main.active_view.table.move_cursor(row=column(app).index("john@acme.com"))
        await press(pilot, app, "enter")
        assert isinstance(app.screen, HelpScreen)
        body = str(app.screen.query_one(".help-body Static").render())
        assert "website-prod" in body and "view deploy" in body
        assert "admin-panel" not in body  # locked before john joined
        await press(pilot, app, "escape")
        assert not isinstance(app.screen, HelpScreen)


@sync
async def test_escape_clears_the_filter_before_leaving_the_pane(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        await press(pilot, app, "slash", *"joe", "enter")
        assert column(app) == ["joe@acme.com"]
        await press(pilot, app, "escape")
        assert isinstance(app.screen, AccessScreen) and len(column(app)) > 1
        await press(pilot, app, "escape")
        assert not isinstance(app.screen, AccessScreen)


@sync
async def test_a_big_roster_shows_a_window_that_grows_as_you_scroll(tmp_path):
    from teamaccess.store.demo import generate

    db = Database(tmp_path / "big.db")
    generate(db, team="bigco", users=300, apps=5, grants=20)
    admin = "user000000@bigco.example.com"
    app = make(db, admin, team="bigco")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        view = app.main.active_view
        window = view.WINDOW
        assert len(rows(app)) == window < 300
        assert f"showing the first {window} of 300" in status(app)
        view.table.move_cursor(row=window - 1)
        await settle(pilot, app)
        assert len(rows(app)) == 2 * window
        await press(pilot, app, "slash", *"user00029")
        assert column(app) == [f"user00029{i}@bigco.example.com" for i in range(10)]
        assert "showing the first" not in status(app)
    db.close()
