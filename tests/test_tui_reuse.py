"""The dashboard keeps one access screen, built before anyone opens it, and refills it for each
app: what is refilled never shows what came before (rows, filter, refusal)."""

from __future__ import annotations

import threading

from conftest import column, make, open_pane, press, settle, status, sync
from teamaccess.store import queries
from teamaccess.tui.screens.access import AccessScreen


def pane_emails(db, who: str, app_name: str) -> set[str]:
    return {r.email for r in queries.app_access(db, who, app_name).rows}


# -- one access screen, refilled -----------------------------------------------------------


@sync
async def test_access_screen_is_built_before_anyone_opens_it_and_reused(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        kept = app._access
        assert kept is not None and kept.is_running and kept not in app.screen_stack
        await open_pane(pilot, app, "website-prod")
        assert app.screen is kept
        await press(pilot, app, "escape")
        await open_pane(pilot, app, "api-staging")
        assert app.screen is kept
        assert set(column(app)) == pane_emails(demo_db, "ada@acme.com", "api-staging")


@sync
async def test_next_app_shows_none_of_the_last_apps_rows_or_filter(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        await press(pilot, app, "slash", *"john", "enter")
        assert column(app) == ["john@acme.com"]
        await press(pilot, app, "2")  # straight back to the apps, the filter still typed
        assert not isinstance(app.screen, AccessScreen)
        await open_pane(pilot, app, "api-staging")
        view = app.screen.view
        assert set(column(app)) == pane_emails(demo_db, "ada@acme.com", "api-staging")
        assert view.filter_text == "" and view.filter_box.value == ""
        assert not view.filter_box.has_class("-shown")
        assert "filter" not in status(app)
        summary = str(app.screen.query_one("#summary").render())
        assert "api-staging" in summary and "website-prod" not in summary


@sync
async def test_a_refusal_does_not_stay_for_the_next_app_nor_rows_for_a_refused_one(demo_db):
    app = make(demo_db, "john@acme.com")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "admin-panel")  # locked, john has no grant
        view = app.screen.view
        assert view.refusal and "is locked" in view.refusal and column(app) == []
        await press(pilot, app, "escape")
        await open_pane(pilot, app, "api-staging")
        assert view.refusal is None and not view.has_class("-refused")
        assert str(view.query_one(".refusal").render()) == ""
        assert set(column(app)) == pane_emails(demo_db, "john@acme.com", "api-staging")
        await press(pilot, app, "escape")
        await open_pane(pilot, app, "admin-panel")
        assert view.refusal and column(app) == []
        assert "no access" in str(app.screen.query_one("#summary").render())


@sync
async def test_a_slow_read_of_the_last_app_never_lands_in_the_next(demo_db, monkeypatch):
    release = threading.Event()
    real = queries.app_access

    def app_access(db, who, app_name, **kw):
        if app_name == "website-prod":
            release.wait(10)  # held until the second app is on screen
        return real(db, who, app_name, **kw)

    monkeypatch.setattr(queries, "app_access", app_access)
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        app.open_access("website-prod")
        for _ in range(100):  # a slow first page: the pane shows without rows after a moment
            await pilot.pause(0.01)
            if isinstance(app.screen, AccessScreen):
                break
        assert isinstance(app.screen, AccessScreen) and app.screen.view.table.row_count == 0
        app.pop_screen()
        app.open_access("api-staging")
        for _ in range(200):
            await pilot.pause(0.01)
            pane = app.screen
            if isinstance(pane, AccessScreen) and pane.view.loaded and not pane.view.filling:
                break
        release.set()
        await settle(pilot, app)
        assert app.screen.app_name == "api-staging"
        assert set(column(app)) == pane_emails(demo_db, "ada@acme.com", "api-staging")


@sync
async def test_opening_an_app_while_its_pane_is_open_shows_that_app(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        app.open_access("docs-site")
        await settle(pilot, app)
        assert app.screen.app_name == "docs-site"
        assert [s for s in app.screen_stack if isinstance(s, AccessScreen)] == [app.screen]
        assert set(column(app)) == pane_emails(demo_db, "ada@acme.com", "docs-site")


@sync
async def test_a_pane_opened_before_the_screen_was_built_builds_it_then(demo_db, monkeypatch):
    from teamaccess.tui.app import TeamAccessApp

    monkeypatch.setattr(TeamAccessApp, "_prepare_access", lambda self: setattr(self, "_preparing", False))
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        assert app._access is None
        await open_pane(pilot, app, "website-prod")
        assert app.screen is app._access
        assert set(column(app)) == pane_emails(demo_db, "ada@acme.com", "website-prod")


@sync
async def test_lock_acts_on_the_app_shown_when_the_key_was_pressed(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        held = []
        # Hold the operation as a slow worker start would, while the user opens another app.
        app.run_op = lambda op, describe: held.append(op)
        await pilot.press("l")
        assert len(held) == 1
        await pilot.press("escape")
        await open_pane(pilot, app, "docs-site")
        change = held[0]()
        assert change.app == "api-staging"
        assert queries.app_access(demo_db, "ada@acme.com", "api-staging").app.locked
        assert not queries.app_access(demo_db, "ada@acme.com", "docs-site").app.locked


@sync
async def test_leaving_the_pane_lets_its_rows_go_but_a_dialog_does_not(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        view = app.screen.view
        await press(pilot, app, "question_mark")  # the help screen covers the pane
        await press(pilot, app, "escape")
        assert view.items and view.table.row_count
        await press(pilot, app, "escape")  # back to the apps
        assert view.items == [] and view.table.row_count == 0 and not view.loaded
        await open_pane(pilot, app, "website-prod")
        assert set(column(app)) == pane_emails(demo_db, "ada@acme.com", "website-prod")


@sync
async def test_a_theme_set_while_the_pane_is_hidden_reaches_it(demo_db):
    # Opening the kept pane skips Textual's full restyle unless the theme changed meanwhile.
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        dark = app.screen.view.table.styles.background
        await press(pilot, app, "escape")
        app.theme = "textual-light"
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        light = app.screen.view.table.styles.background
        assert light != dark
        assert light == app.main.view("roster").table.styles.background
