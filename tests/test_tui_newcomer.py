"""Issue 12, "the dashboard from a newcomer's chair": one Pilot test per defect (each failed
before its fix), then what users of k9s, lazygit, htop, Posting and Harlequin expect."""

from __future__ import annotations

import pytest
from conftest import make, press, settle, sync
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.errors import StoreError
from teamaccess.tui.app import TeamAccessApp
from teamaccess.tui.screens.access import AccessScreen
from teamaccess.tui.screens.main import MainScreen
from teamaccess.tui.widgets.dialogs import ConfirmDialog, HelpScreen, RoleDialog

TEAM = "acme-widgets"
ADA = ops.Actor("ada@acme.com", "ada")
SIZE = (100, 30)


def front(app: TeamAccessApp):
    screen = app.screen
    return screen.view if isinstance(screen, AccessScreen) else app.main.active_view


def column(app: TeamAccessApp, index: int = 0) -> list[str]:
    """One column of the front list as shown, top to bottom."""
    table = front(app).table
    out = []
    for row in table.ordered_rows:
        cell = table.get_row(row.key)[index]
        out.append(cell.plain if hasattr(cell, "plain") else str(cell))
    return out


def select(app: TeamAccessApp, key: str) -> None:
    table = front(app).table
    table.move_cursor(row=table.get_row_index(key), animate=False)


def roles(db: Database) -> dict[str, str]:
    return {m.email: m.role for m in queries.roster(db, "ada@acme.com", TEAM)}


# -- 1. sort sorts -----------------------------------------------------------------------------


@sync
async def test_sort_reorders_at_once_and_marks_the_column_then_reverses(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "s")  # email -> name
        names = column(app, 1)
        assert names == sorted(names, key=str.lower)
        assert "▲" in front(app).table.columns["name"].label.plain  # type: ignore[index]
        await press(pilot, app, "s")  # -> role
        shown_roles = column(app, 2)
        order = ["admin", "member", "viewer", "collaborator"]
        assert shown_roles == sorted(shown_roles, key=order.index)
        await press(pilot, app, "S")  # reverse the role order
        assert column(app, 2) == sorted(shown_roles, key=order.index, reverse=True)
        assert "▼" in front(app).table.columns["role"].label.plain  # type: ignore[index]


# -- 3 and 9. your own role asks first; the last admin is refused before asking ---------------


@sync
async def test_demoting_yourself_asks_first_saying_you_and_what_you_lose(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select(app, "ada@acme.com")
        await press(pilot, app, "e")
        assert isinstance(app.screen, RoleDialog)
        app.screen.query_one("#role-viewer").value = True
        await press(pilot, app, "ctrl+s")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog), "no confirmation before demoting yourself"
        title = str(dialog.query_one(".dialog-title").render())
        body = str(dialog.query_one(".dialog-body").render())
        assert "yourself" in title and "viewer" in title
        assert "You can no longer" in body and "read the audit log" in body
        await press(pilot, app, "n")
        assert roles(demo)["ada@acme.com"] == "admin"  # no: nothing changed
        await press(pilot, app, "e")
        app.screen.query_one("#role-viewer").value = True
        await press(pilot, app, "ctrl+s", "y")
        assert roles(demo)["ada@acme.com"] == "viewer"


@sync
async def test_removing_yourself_asks_first_saying_you(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select(app, "ada@acme.com")
        await press(pilot, app, "d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "yourself" in str(dialog.query_one(".dialog-title").render())
        assert "You can no longer" in str(dialog.query_one(".dialog-body").render())
        await press(pilot, app, "escape")
        assert roles(demo)["ada@acme.com"] == "admin"


@sync
async def test_the_last_admin_is_refused_before_any_question(tmp_path):
    db = Database(tmp_path / "solo.db")
    ops.create_team(db, ADA, "solo")
    ops.add_member(db, ADA, "solo", "joe@acme.com", "member")
    events = queries.audit_count(db)
    app = make(db, team="solo")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select(app, "ada@acme.com")
        for key in ("e", "d"):
            await press(pilot, app, key)
            assert isinstance(app.screen, MainScreen), f"{key} asked a question it will refuse"
            assert "only admin of solo" in (app.last_error or "")
            app.last_error = None
    assert {m.email: m.role for m in queries.roster(db, ADA.email, "solo")}["ada@acme.com"] == "admin"
    assert queries.audit_count(db) == events  # refused before the store: nothing written
    db.close()


# -- 4. focus survives a live change ------------------------------------------------------------


@sync
async def test_the_list_keeps_focus_and_cursor_when_a_row_goes_and_comes_back(demo):
    app = make(demo, watch=True, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select(app, "joe@acme.com")
        view = front(app)
        # joe leaves and comes back from the CLI (no grants kept: a clean removal)
        for name in ("test", "website-prod", "website-staging"):
            ops.revoke_access(demo, ADA, name, "joe@acme.com")
        ops.remove_member(demo, ADA, TEAM, "joe@acme.com")
        for _ in range(100):
            await pilot.pause(0.02)
            if "joe@acme.com" not in column(app):
                break
        ops.add_member(demo, ADA, TEAM, "joe@acme.com", "member")
        for _ in range(100):
            await pilot.pause(0.02)
            if "joe@acme.com" in column(app):
                break
        await settle(pilot, app)
        assert app.focused is view.table, f"focus went to {app.focused!r}"
        assert view.table.cursor_row >= 0 and view.selected() is not None
        before = view.table.cursor_row
        await press(pilot, app, "j")
        assert view.table.cursor_row == before + 1


@sync
async def test_keys_work_again_when_your_own_role_goes_and_comes_back(demo):
    app = make(demo, "joe@acme.com", watch=True, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        view = front(app)
        ops.remove_member(demo, ADA, TEAM, "joe@acme.com")  # the roster refuses joe now
        for _ in range(100):
            await pilot.pause(0.02)
            if view.refusal is not None:
                break
        await settle(pilot, app)
        ops.add_member(demo, ADA, TEAM, "joe@acme.com", "member")
        for _ in range(100):
            await pilot.pause(0.02)
            if view.refusal is None and view.table.row_count:
                break
        await settle(pilot, app)
        await pilot.pause(0.1)
        assert app.focused is view.table, f"no key works: focus is {app.focused!r}"
        before = view.table.cursor_row
        await press(pilot, app, "j")
        assert view.table.cursor_row == before + 1


# -- 5. the audit log shows refusals first, cuts long cells, opens the full event -------------


@sync
async def test_audit_shows_a_refusal_at_80_columns_and_cuts_a_long_target(demo):
    long_target = "x" * 280 + "@example.com"
    with pytest.raises(StoreError):
        ops.add_member(demo, ops.Actor("joe@acme.com"), TEAM, long_target, "member")
    app = make(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "3")
        table = front(app).table
        first = list(table.columns)[0]
        assert first.value == "outcome"
        top = table.get_row_at(0)
        assert top[0].plain.startswith("✗"), "the newest event (a refusal) is not marked first"
        target = top[list(table.columns).index(table.columns["target"].key)]  # type: ignore[index]
        assert target.plain.endswith("…") and target.cell_len <= 28
        await press(pilot, app, "enter")
        body = str(app.screen.query_one(".help-body Static").render())
        # wrapped under its label: the lines joined without their indent are the target
        assert long_target in "".join(line.strip() for line in body.splitlines())


# -- 6. the no-MFA warning stands out without colour; 16 colours pick the ANSI theme ----------


def test_sixteen_colours_asked_for_by_textual_pick_the_ansi_theme(monkeypatch):
    from teamaccess.tui.app import pick_theme

    monkeypatch.delenv("TEAMACCESS_THEME", raising=False)
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert pick_theme() == "textual-dark"
    monkeypatch.setenv("TEXTUAL_COLOR_SYSTEM", "standard")
    assert pick_theme() == "ansi-dark"


@sync
async def test_no_mfa_badge_is_reversed_so_no_color_still_shows_it(demo, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        table = front(app).table
        badge = table.get_row("barbara@acme.com")[3]
        ok = table.get_row("ada@acme.com")[3]
        assert "✗" in badge.plain and "reverse" in str(badge.style)
        assert "reverse" not in str(ok.style)
        # and as drawn: the badge's cells are reversed, the ok badge's are not
        strips = app.screen._compositor.render_strips()
        lines = {"".join(s.text for s in [strip]): strip for strip in strips}
        line = next(strip for text_line, strip in lines.items() if "barbara@acme.com" in text_line)
        assert any(seg.style is not None and seg.style.reverse and "no MFA" in seg.text
                   for seg in line)


# -- 2. collaborators on the roster -------------------------------------------------------------


@sync
async def test_roster_shows_collaborators_and_enter_opens_the_grants_they_hold(demo):
    app = make(demo)
    async with app.run_test(size=(120, 30)) as pilot:  # wide enough for the apps in full
        await settle(pilot, app)
        row = front(app).table.get_row("ops@oncall-agency.io")
        assert row[2].plain == "collaborator" and "no MFA" in row[3].plain
        assert row[5].plain == "api-prod, website-prod"
        select(app, "ops@oncall-agency.io")
        await press(pilot, app, "enter")
        assert isinstance(app.screen, HelpScreen)
        title = str(app.screen.query_one(".dialog-title").render())
        body = str(app.screen.query_one(".help-body Static").render())
        assert "collaborator" in title and "2 apps" in title
        assert "api-prod" in body and "website-prod" in body and "explicit grant" in body
        await press(pilot, app, "escape")
        await press(pilot, app, "e")  # a collaborator has no role to change: says why
        assert isinstance(app.screen, MainScreen)
        assert "collaborator" in (app.last_error or "")


# -- 7. nothing important cut at 80 columns -------------------------------------------------


@sync
async def test_at_80_columns_the_role_team_key_and_permissions_are_whole(demo):
    ops.create_team(demo, ops.Actor("sam@freelance.dev"), "sams-shop")
    app = make(demo, "sam@freelance.dev")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        header = str(app.screen.query_one("HeaderBar").render())
        assert "role collaborator" in header and "t: switch team" in header
    app = make(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        select(app, "website-prod")
        await press(pilot, app, "enter")
        summary = str(app.screen.query_one("#summary").render())
        assert "you: view deploy operate manage" in summary
        # Every column fits the 80 columns, the Why cut to what is left (enter shows it whole).
        assert columns_fit(app)
        assert any(c.endswith("…") for c in column(app, 4))
        assert "1 explicit grants" not in str(front(app).query_one(".status").render())
        select(app, "joe@acme.com")
        await press(pilot, app, "enter")  # the detail view of a wide row
        assert isinstance(app.screen, HelpScreen)
        assert "explicit grant" in str(app.screen.query_one(".help-body Static").render())


# -- 8. keys that can't act say why in one line ---------------------------------------------


async def refused_by_key(pilot, app: TeamAccessApp, key: str) -> str:
    app.last_error = None
    await press(pilot, app, key)
    assert app.last_error, f"{key!r} did nothing and said nothing"
    return app.last_error


@sync
async def test_keys_that_cannot_act_say_why_and_change_nothing(demo):
    events = queries.audit_count(demo)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert "one team" in await refused_by_key(pilot, app, "t")
        await press(pilot, app, "2")
        select(app, "website-prod")  # locked
        assert "already locked" in await refused_by_key(pilot, app, "l")
        assert "admin" in await refused_by_key(pilot, app, "plus")  # an admin has every permission
        await press(pilot, app, "enter")
        select(app, "grace@acme.com")  # an admin: no explicit grant
        assert "no explicit grant" in await refused_by_key(pilot, app, "e")
        assert "no explicit grant" in await refused_by_key(pilot, app, "d")
        assert isinstance(app.screen, AccessScreen)
    app = make(demo, "john@acme.com")  # a member who joined after the lock
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert "team admin" in await refused_by_key(pilot, app, "a")
        await press(pilot, app, "2")
        select(app, "api-prod")
        assert "locked" in await refused_by_key(pilot, app, "plus")
    assert queries.audit_count(demo) == events


# -- 11. refusals name the key, not a CLI command ---------------------------------------------


@sync
async def test_a_refusal_in_the_dashboard_names_the_key_not_a_cli_command(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        select(app, "website-staging")
        await press(pilot, app, "enter", "a")
        app.screen.query_one("#email").value = "sam@freelance.dev"  # holds a grant already
        await press(pilot, app, "ctrl+s")
        error = str(app.screen.query_one("#error").render())
        assert "already has access" in error
        assert "access:update" not in error and "press e" in error


def test_every_cli_advice_of_the_store_has_dashboard_words():
    from teamaccess.tui.widgets.words import in_dashboard_words

    for said in ("joe@acme.com is not a user of acme: add them first with "
                 "'teamaccess members:add joe@acme.com --team acme --role member'.",
                 "Team x not found: run 'teamaccess teams' to see your teams.",
                 "Couldn't find that app: x. Run 'teamaccess apps' to list yours.",
                 "joe has no grant on x: use access:add.",
                 "joe is not a user of acme: run 'teamaccess members --team acme'."):
        shown = in_dashboard_words(said)
        assert "teamaccess " not in shown and ":add" not in shown, shown


# -- 10. a modal's footer shows its own keys; 13. help scrolls with j/k --------------------------


def footer_actions(app: TeamAccessApp) -> set[str]:
    from textual.widgets._footer import FooterKey

    return {key.action for key in app.screen.query(FooterKey)}


@sync
async def test_dialogs_show_their_own_keys_in_their_footer(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select(app, "joe@acme.com")
        await press(pilot, app, "d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.pause(0.1)
        shown = footer_actions(app)
        assert {"answer(True)", "answer(False)"} <= shown
        assert "add_user" not in shown and "remove_user" not in shown
        await press(pilot, app, "escape", "a")
        await pilot.pause(0.1)
        assert {"cancel", "submit"} <= footer_actions(app)


@sync
async def test_help_scrolls_with_j_and_k(demo):
    app = make(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        body = app.screen.query_one(".help-body")
        assert body.max_scroll_y > 0, "help fits: nothing to scroll in this test"
        await press(pilot, app, "j", "j")
        assert body.scroll_y == 2
        await press(pilot, app, "k")
        assert body.scroll_y == 1


# -- 12. keys typed during a switch apply to the screen they were typed for ---------------------


@sync
async def test_typing_ahead_at_50ms_per_key_ends_where_the_keys_say(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        for key in ("3", "2", "enter", "escape", "1"):
            await pilot.press(key)
            await pilot.pause(0.05)
        await settle(pilot, app)
        await pilot.pause(0.3)
        await settle(pilot, app)
        assert isinstance(app.screen, MainScreen), f"ended on {app.screen!r}"
        assert app.main.query_one("#tabs").active == "roster"
        assert app.focused is app.main.view("roster").table


@sync
async def test_escape_or_a_tab_typed_while_a_pane_opens_leaves_that_pane(demo, monkeypatch):
    slow_read = queries.app_access

    def slow(*args, **kwargs):
        import time

        time.sleep(0.4)  # a busy machine: the pane's rows take a while
        return slow_read(*args, **kwargs)

    monkeypatch.setattr(queries, "app_access", slow)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        for keys in (("enter", "escape"), ("enter", "1")):
            app.main.show_tab("apps")
            await settle(pilot, app)
            await pilot.press(*keys)  # the second before the pane's wait is over
            await pilot.pause(0.6)
            await settle(pilot, app)
            assert isinstance(app.screen, MainScreen), f"{keys}: the pane appeared after all"
        assert app.main.query_one("#tabs").active == "roster"


# -- 13. minor: the words of a join and a transfer in ----------------------------------------


@sync
async def test_join_shows_the_new_grant_and_transfer_in_of_a_personal_app_says_so(demo):
    app = make(demo, "alan@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        select(app, "api-staging")
        before = front(app).table.get_row("api-staging")[3].plain
        await press(pilot, app, "plus")
        after = front(app).table.get_row("api-staging")[3].plain
        assert after != before and "grant" in after
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2", "i")
        app.screen.query_one("#app").value = "ada-sandbox"
        await press(pilot, app, "ctrl+s")
        body = str(app.screen.query_one(".dialog-body").render())
        assert "personal app" in body and "old team" not in body and "Grants from" not in body


# -- what users of k9s, lazygit, htop, Posting and Harlequin expect ---------------------------


@sync
async def test_g_and_G_and_home_end_reach_the_ends_of_the_whole_list(tmp_path):
    from teamaccess.store.demo import generate

    db = Database(tmp_path / "big.db")
    generate(db, team="bigco", users=300, apps=5, grants=20, seed=3)
    admin = "user000000@bigco.example.com"
    app = make(db, admin, team="bigco")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        view = front(app)
        assert view.table.row_count < 300  # only a window is loaded
        await press(pilot, app, "G")
        assert view.selected().email == "user000299@bigco.example.com"
        await press(pilot, app, "g")
        assert view.table.cursor_row == 0
        await press(pilot, app, "end")
        assert view.selected().email == "user000299@bigco.example.com"
        await press(pilot, app, "home")
        assert view.selected().email == admin
        for _ in range(20):  # PageDown goes on past the loaded window too
            await press(pilot, app, "pagedown")
        assert view.selected().email == "user000299@bigco.example.com"
    db.close()


@sync
async def test_q_quits_from_a_list_but_not_from_a_text_box_or_a_dialog(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "slash", "q")
        assert app.is_running and front(app).filter_box.value == "q"
        await press(pilot, app, "escape")
        select(app, "joe@acme.com")
        await press(pilot, app, "d", "q")  # backs out of the question
        assert app.is_running and isinstance(app.screen, MainScreen)
        assert "joe@acme.com" in roles(demo)
        await pilot.press("q")
        await pilot.pause(0.2)
        assert not app.is_running


@sync
async def test_destroy_needs_the_app_name_typed(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        select(app, "ml-models")
        await press(pilot, app, "d")
        app.screen.query_one("#confirm").value = "ml-model"
        await press(pilot, app, "ctrl+s")
        assert "Type the app's name" in str(app.screen.query_one("#error").render())
        assert any(a.name == "ml-models" for a in queries.apps(demo, ADA.email, TEAM))
        app.screen.query_one("#confirm").value = "ml-models"
        await press(pilot, app, "ctrl+s")
        assert all(a.name != "ml-models" for a in queries.apps(demo, ADA.email, TEAM))
        assert "ml-models" not in column(app)


@sync
async def test_empty_lists_say_what_to_press(tmp_path):
    db = Database(tmp_path / "new.db")
    ops.create_team(db, ADA, "fresh")
    app = make(db, team="fresh")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        assert "press n" in str(front(app).query_one(".status").render())
        await press(pilot, app, "1", "slash", *"zzz", "enter")
        assert "escape clears" in str(front(app).query_one(".status").render())
    db.close()


@sync
async def test_the_cursor_lands_on_what_you_just_added(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "a")
        app.screen.query_one("#email").value = "zed@acme.com"
        await press(pilot, app, "ctrl+s")
        await settle(pilot, app)
        assert front(app).selected().email == "zed@acme.com"
        await press(pilot, app, "2")
        select(app, "admin-panel")
        await press(pilot, app, "n")
        app.screen.query_one("#name").value = "zzz-last"
        await press(pilot, app, "ctrl+s")
        await settle(pilot, app)
        assert front(app).selected().name == "zzz-last"


@sync
async def test_the_footer_shows_the_no_mfa_toggle_state(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)

        def label() -> str:
            from textual.widgets._footer import FooterKey

            return next(k.description for k in app.screen.query(FooterKey) if k.action == "toggle_mfa")

        await pilot.pause(0.1)
        assert label().endswith("off")
        await press(pilot, app, "m")
        await pilot.pause(0.1)
        assert label().endswith("on")


# -- Round 2 (the reviewer drove main again) ----------------------------------------------------


def burst(app: TeamAccessApp, *keys: str) -> None:
    """Keys arriving in one read, as ``tmux send-keys 3 2 Enter Escape 1`` delivers them."""
    from textual import events

    chars = {"enter": "\r", "escape": "\x1b", "tab": "\t"}
    for key in keys:
        app.post_message(events.Key(key, chars.get(key, key if len(key) == 1 else None)))


@sync
async def test_keys_sent_in_one_go_apply_to_the_screen_they_were_typed_for(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        burst(app, "3", "2", "enter", "escape", "1")
        await pilot.pause(0.5)
        await settle(pilot, app)
        await pilot.pause(0.3)
        await settle(pilot, app)
        assert isinstance(app.screen, MainScreen), f"ended on {app.screen!r}"
        assert app.main.query_one("#tabs").active == "roster"
        assert app.focused is app.main.view("roster").table


@sync
async def test_keys_sent_in_one_go_open_the_pane_they_were_typed_for(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        burst(app, "3", "2", "enter")
        await pilot.pause(0.5)
        await settle(pilot, app)
        await pilot.pause(0.3)
        await settle(pilot, app)
        assert isinstance(app.screen, AccessScreen), f"ended on {app.screen!r}"
        apps_table = app.main.view("apps").table
        assert app.screen.app_name == apps_table.ordered_rows[0].key.value


@sync
async def test_escape_then_a_digit_read_as_one_character_are_both_keys(demo):
    """A terminal's escape followed by 1 within ESCDELAY reaches Textual as "¡"."""
    from textual import events

    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        burst(app, "3", "2", "enter")
        app.post_message(events.Key("inverted_exclamation_mark", "¡"))
        await pilot.pause(0.5)
        await settle(pilot, app)
        await pilot.pause(0.3)
        await settle(pilot, app)
        assert isinstance(app.screen, MainScreen), f"ended on {app.screen!r}"
        assert app.main.query_one("#tabs").active == "roster"


@sync
async def test_focus_comes_back_after_the_terminal_was_too_small(demo):
    app = make(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        # The roster's list, then a dialog over it, then the access pane.
        await pilot.resize_terminal(60, 20)
        await pilot.pause(0.2)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        await settle(pilot, app)
        assert app.focused is app.main.view("roster").table
        await press(pilot, app, "n")  # the add-user dialog
        dialog = app.screen
        box = app.focused
        assert box is not None and box.screen is dialog
        await pilot.resize_terminal(60, 20)
        await pilot.pause(0.2)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert app.screen is dialog and app.focused is box
        await press(pilot, app, "escape", "2", "enter")
        assert isinstance(app.screen, AccessScreen)
        table = app.focused
        await pilot.resize_terminal(60, 20)
        await pilot.pause(0.2)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert app.focused is table
        await press(pilot, app, "escape")
        assert app.focused is app.main.view("apps").table


@sync
async def test_no_color_no_mfa_badge_is_black_on_white_and_the_ok_badge_dim(demo, monkeypatch):
    """Under NO_COLOR Textual greys every colour: the warning must not be two near greys."""
    from rich.style import Style

    monkeypatch.setenv("NO_COLOR", "1")
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        table = front(app).table
        badge = Style.parse(str(table.get_row("barbara@acme.com")[3].style))
        ok = Style.parse(str(table.get_row("ada@acme.com")[3].style))
        assert badge.bold and badge.reverse
        fg, bg = badge.color.get_truecolor(), badge.bgcolor.get_truecolor()
        assert sum(fg) - sum(bg) > 3 * 200  # near white on near black, reversed
        assert ok.dim and not ok.reverse


@sync
async def test_refusals_and_questions_about_yourself_say_you(tmp_path):
    db = Database(tmp_path / "solo.db")
    ops.create_team(db, ADA, "solo")
    ops.add_member(db, ADA, "solo", "joe@acme.com", "member")
    ops.create_app(db, ADA, "web", team="solo")
    events = queries.audit_count(db)
    app = make(db, team="solo")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select(app, "ada@acme.com")
        for key in ("e", "d"):
            said = await refused_by_key(pilot, app, key)
            assert "you are the only admin of solo" in said, said
            assert "ada@acme.com" not in said and not said.endswith("..")
        assert "yourself" in app.last_error or "your own role" in app.last_error
        await press(pilot, app, "2")
        said = await refused_by_key(pilot, app, "plus")
        assert said.startswith("You already have every permission"), said
    assert queries.audit_count(db) == events
    db.close()


@sync
async def test_d_on_an_empty_roster_says_remove_and_l_on_a_locked_app_says_locked_first(demo):
    events = queries.audit_count(demo)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "slash", *"zzzz", "enter")
        assert "nobody to remove" in await refused_by_key(pilot, app, "d")
        assert "nobody to change" in await refused_by_key(pilot, app, "e")
    app = make(demo, "joe@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        select(app, "admin-panel")
        said = await refused_by_key(pilot, app, "l")
        assert said.startswith("admin-panel is already locked"), said
    assert queries.audit_count(demo) == events


@sync
async def test_a_collaborator_leaving_is_told_they_lose_the_app(demo):
    app = make(demo, "sam@freelance.dev")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select(app, "website-staging")
        await press(pilot, app, "minus")
        assert isinstance(app.screen, ConfirmDialog)
        body = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "lose access" in body and "team role" not in body
        await press(pilot, app, "n")


def footer_labels(app: TeamAccessApp) -> dict[str, str]:
    from textual.widgets._footer import FooterKey

    return {key.action: key.description for key in app.screen.query(FooterKey)}


@sync
async def test_the_command_palette_shows_its_own_keys_not_the_screens(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        from textual.command import CommandPalette

        assert isinstance(app.screen, CommandPalette)
        shown = footer_labels(app)
        assert shown.get("escape") == "Close", shown
        assert "filter" not in shown and "help" not in shown
        await pilot.press("escape")


@sync
async def test_a_dialogs_footer_names_ctrl_s_as_its_button_does(demo):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        select(app, "test")
        await press(pilot, app, "d")
        await pilot.pause(0.1)
        assert footer_labels(app).get("submit") == "Destroy"
        await press(pilot, app, "escape", "n")
        await pilot.pause(0.1)
        assert footer_labels(app).get("submit") == "Create"


@sync
async def test_a_long_reason_wraps_under_itself_and_help_lists_g_and_end(demo):
    from teamaccess.tui.widgets.dialogs import HelpScreen as Help

    app = make(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "question_mark")
        body = str(app.screen.query_one(".help-body Static").render())
        assert "g / G" in body and "home / end" in body
        await press(pilot, app, "escape")
        reason = "only team admins and accounts with manage on the app may change " * 3
        app.push_screen(Help("Audit event 1", [("outcome", "denied"), ("reason", reason)]))
        await settle(pilot, app)
        lines = str(app.screen.query_one(".help-body Static").render()).splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("reason"))
        rest = [line for line in lines[at + 1:] if line.strip()]
        assert len(rest) >= 2, lines
        assert all(line.startswith(" " * len("outcome  ")) for line in rest), lines
        assert all(len(line) <= 80 - 6 for line in lines), lines


@sync
async def test_outcomes_show_one_at_a_time_on_the_footers_line(demo):
    from textual.widgets._toast import Toast

    app = make(demo)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, app)
        app.report("Added someone@acme.com as a member of acme-widgets.")
        await pilot.pause(0.3)
        app.report("joe@acme.com is already a member of acme-widgets.", error=True)
        await pilot.pause(0.3)
        toasts = list(app.screen.query(Toast))
        assert len(toasts) == 1, toasts
        region = toasts[0].region
        assert region.height == 1 and region.y == 23, region  # the footer's row, not the table's
        assert region.width == 80
        assert app.REFUSAL_SECONDS <= 5 and app.OUTCOME_SECONDS <= 3


def columns_fit(app: TeamAccessApp) -> bool:
    table = front(app).table
    total = sum(column.get_render_width(table) for column in table.columns.values())
    return total <= table.scrollable_content_region.width


@sync
async def test_every_column_fits_the_width_cut_with_an_ellipsis(demo):
    ops.add_collaborator(demo, ADA, TEAM, "x" * 40 + "@far-away-agency.example", "website-staging")
    app = make(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        assert columns_fit(app), "the roster's last column is off screen at 80"
        assert any(cell.endswith("…") for cell in column(app, 0))  # the long email, cut
        assert set(column(app, 2)) <= {"admin", "member", "viewer", "collaborator"}  # whole
        await press(pilot, app, "3")
        await pilot.pause(0.2)
        assert columns_fit(app), "the audit's last column is off screen at 80"
        assert column(app, 0)[0].startswith(("✓", "✗"))
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.3)
        await settle(pilot, app)
        assert columns_fit(app), "the audit's last column is off screen at 120"
        details = column(app, 6)
        assert all(len(d) >= 12 for d in details if d.endswith("…")), details
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        await press(pilot, app, "1")
        await pilot.pause(0.2)
        assert columns_fit(app)
