"""The footer of keys shows what a fresh build would, whatever changed: the keys on offer, or
only which of them are enabled."""

from __future__ import annotations

from conftest import column, make, open_pane, press, settle, sync
from teamaccess.store import ops
from textual.widgets import Footer


def footer_state(screen) -> list[tuple[str, bool]]:
    # FooterKey isn't exported by textual.widgets: select its keys by type name.
    return [(k.action, k.has_class("-disabled")) for k in screen.query_one(Footer).query("FooterKey")]


def expected_state(screen) -> list[tuple[str, bool]]:
    """What Textual's Footer would build now: one key per shown action, the first binding's
    enabled state deciding, then the palette key."""
    seen: dict[str, bool] = {}
    for key, active in screen.active_bindings.items():
        if active.binding.show or key == screen.app.COMMAND_PALETTE_BINDING:
            seen.setdefault(active.binding.action, not active.enabled)
    return list(seen.items())


@sync
async def test_footer_enables_keys_and_matches_a_fresh_build(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        screen, table = app.screen, app.screen.view.table
        table.move_cursor(row=column(app).index("ada@acme.com"))  # no explicit grant
        await settle(pilot, app)
        assert ("change", True) in footer_state(screen) and ("revoke", True) in footer_state(screen)
        table.move_cursor(row=column(app).index("john@acme.com"))  # holds a grant
        await settle(pilot, app)
        assert ("change", False) in footer_state(screen) and ("revoke", False) in footer_state(screen)
        assert sorted(footer_state(screen)) == sorted(expected_state(screen))


@sync
async def test_footer_is_rebuilt_when_the_keys_on_offer_change(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "2")
        screen, table = app.screen, app.main.active_view.table
        names = column(app)
        table.move_cursor(row=names.index("website-prod"))  # locked: unlock is offered
        await settle(pilot, app)
        actions = {a for a, _ in footer_state(screen)}
        assert "unlock" in actions and "lock" not in actions
        table.move_cursor(row=names.index("api-staging"))  # open: lock is offered
        await settle(pilot, app)
        actions = {a for a, _ in footer_state(screen)}
        assert "lock" in actions and "unlock" not in actions
        assert sorted(footer_state(screen)) == sorted(expected_state(screen))


@sync
async def test_footer_after_the_next_app_loads_is_what_a_fresh_pane_shows(demo_db):
    app = make(demo_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "website-prod")
        await press(pilot, app, "escape")
        await open_pane(pilot, app, "api-prod")  # the same keys on offer as the last app
        assert sorted(footer_state(app.screen)) == sorted(expected_state(app.screen))
        assert ("grant", False) in footer_state(app.screen)  # not left greyed from loading


@sync
async def test_a_refused_pane_offers_none_of_the_last_apps_keys(demo_db):
    ops.grant_access(demo_db, ops.Actor("ada@acme.com", "ada"), "api-staging", "john@acme.com",
                     ["view", "manage"])
    app = make(demo_db, "john@acme.com")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")  # john manages it
        assert "grant" in {a for a, _ in footer_state(app.screen)}
        await press(pilot, app, "escape")
        await open_pane(pilot, app, "admin-panel")  # locked: refused
        await press(pilot, app, "question_mark")
        await press(pilot, app, "escape")  # whatever rebuilds the footer, it stays right
        actions = {a for a, _ in footer_state(app.screen)}
        assert not actions & {"grant", "change", "revoke", "lock", "unlock", "filter"}
        assert sorted(footer_state(app.screen)) == sorted(expected_state(app.screen))
