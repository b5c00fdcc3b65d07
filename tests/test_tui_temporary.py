"""Temporary access in the dashboard, driven with Pilot on a clock the tests move (no sleeping):
the grant dialog's "Expires in" (and its one-line errors, nothing written), the permissions
dialog keeping, changing or removing an end, the access pane's time left counting down, and an
expired grant leaving the pane the moment it ends, without a write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import Clock, column, make, open_pane, press, rows, settle, status, sync
from sqlalchemy import select
from teamaccess.store import ops
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo
from teamaccess.store.models import Account, App, AuditEvent, Grant
from teamaccess.tui.screens.access import AccessScreen
from teamaccess.tui.widgets.dialogs import GrantDialog, HelpScreen, PermissionsDialog
from textual.widgets import Checkbox, Input

ADA = ops.Actor("ada@acme.com", "ada")
SIZE = (110, 30)
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def demo(tmp_path, clock):
    database = Database(tmp_path / "demo.db")
    build_demo(database)
    database.clock = clock
    yield database
    database.close()


def grants(db: Database) -> dict[tuple[str, str], tuple[tuple[str, ...], datetime | None]]:
    """Every grant: (app, email) -> (permissions, end), for "what changed" checks."""
    with db.read() as s:
        found = s.execute(select(App.name, Account.email, Grant).join(App, Grant.app_id == App.id)
                          .join(Account, Grant.account_id == Account.id)).all()
        return {(app, email): (tuple(sorted(g.permissions)), _aware(g.expires_at))
                for app, email, g in found}


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def audit_count(db: Database) -> int:
    with db.read() as s:
        return len(s.scalars(select(AuditEvent.id)).all())


def left_of(app, email: str) -> str:
    """The Left cell of one row of the open access pane."""
    return rows(app)[column(app).index(email)][3]


# -- the grant dialog --------------------------------------------------------------------------


@sync
async def test_grant_with_an_end_through_the_dialog_shows_time_left(demo, clock):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        await press(pilot, app, "a")
        dialog = app.screen
        assert isinstance(dialog, GrantDialog)
        dialog.query_one("#email", Input).value = "pat@partner.co"
        dialog.query_one("#perm-deploy", Checkbox).value = True
        dialog.query_one("#expires", Input).value = "8h"
        await press(pilot, app, "ctrl+s")
        assert isinstance(app.screen, AccessScreen)
        assert grants(demo)[("api-staging", "pat@partner.co")] == (
            ("deploy", "view"), T0 + timedelta(hours=8))
        assert left_of(app, "pat@partner.co") == "8h"
        assert "until 2026-03-02 17:00 UTC" in app.last_message
        assert "(1 temporary)" in status(app)


@pytest.mark.parametrize(("typed", "said"), [
    ("8x", "Invalid duration '8x': give a whole number and a unit s, m, h or d"),
    ("0m", "it must be more than zero"),
    ("91d", "the longest is 90d"),
])
@sync
async def test_a_bad_duration_is_said_in_the_dialog_and_nothing_is_written(demo, typed, said):
    before, events = grants(demo), audit_count(demo)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        await press(pilot, app, "a")
        dialog = app.screen
        dialog.query_one("#email", Input).value = "pat@partner.co"
        dialog.query_one("#expires", Input).value = typed
        await press(pilot, app, "ctrl+s")
        assert app.screen is dialog  # still open, saying why in one line
        error = str(dialog.query_one("#error").render())
        assert said in error and "\n" not in error.strip()
        await press(pilot, app, "escape")
        assert isinstance(app.screen, AccessScreen)
    assert grants(demo) == before and audit_count(demo) == events


# -- the permissions dialog: keep, change or remove the end -------------------------------------


async def _edit(pilot, app, email: str, *, expires: str = "", permanent: bool | None = None,
                operate: bool | None = None):
    app.screen.view.table.move_cursor(row=column(app).index(email))
    await settle(pilot, app)
    await press(pilot, app, "e")
    dialog = app.screen
    assert isinstance(dialog, PermissionsDialog)
    dialog.query_one("#expires", Input).value = expires
    if operate is not None:
        dialog.query_one("#perm-operate", Checkbox).value = operate
    app.ends_said = str(dialog.query_one("#ends-now").render())  # the dialog goes on saving
    if permanent is not None:
        dialog.query_one("#permanent", Checkbox).value = permanent
    await press(pilot, app, "ctrl+s")
    return dialog


@sync
async def test_permissions_dialog_keeps_changes_or_removes_the_end(demo, clock):
    ops.grant_access(demo, ADA, "api-staging", "pat@partner.co", ["deploy"],
                     expires_in=timedelta(hours=2))
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        assert left_of(app, "pat@partner.co") == "2h"
        # Empty: the end is kept while the permissions change.
        await _edit(pilot, app, "pat@partner.co", operate=True)
        assert "2026-03-02 11:00 UTC (2h left)" in app.ends_said
        assert grants(demo)[("api-staging", "pat@partner.co")] == (
            ("deploy", "operate", "view"), T0 + timedelta(hours=2))
        # Both a new end and "permanent": one line, nothing written.
        before, events = grants(demo), audit_count(demo)
        dialog = await _edit(pilot, app, "pat@partner.co", expires="1h", permanent=True)
        assert app.screen is dialog
        assert "not both" in str(dialog.query_one("#error").render())
        assert grants(demo) == before and audit_count(demo) == events
        await press(pilot, app, "escape")
        # A new end, measured from now.
        clock.move(minutes=10)
        await _edit(pilot, app, "pat@partner.co", expires="30m")
        assert grants(demo)[("api-staging", "pat@partner.co")] == (
            ("deploy", "operate", "view"), T0 + timedelta(minutes=40))
        assert left_of(app, "pat@partner.co") == "30m"
        # No end at all.
        await _edit(pilot, app, "pat@partner.co", permanent=True)
        assert "(30m left)" in app.ends_said
        assert grants(demo)[("api-staging", "pat@partner.co")][1] is None
        assert left_of(app, "pat@partner.co") == ""
        # A grant without an end offers no "permanent" box: there is nothing to remove.
        await press(pilot, app, "e")
        assert not list(app.screen.query("#permanent"))
        await press(pilot, app, "escape")


# -- time left counts down; an expired grant leaves the pane ---------------------------------------


@sync
async def test_time_left_counts_down_and_an_expired_grant_leaves_without_a_write(demo, clock):
    ops.grant_access(demo, ADA, "api-staging", "pat@partner.co", ["deploy"],
                     expires_in=timedelta(minutes=90))
    # A member's temporary grant: when it ends, their row stays with what the role gives.
    ops.grant_access(demo, ADA, "api-staging", "joe@acme.com", ["deploy", "operate"],
                     expires_in=timedelta(hours=3))
    app = make(demo)
    app.CLOCK_TICK = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        assert left_of(app, "pat@partner.co") == "1h 30m"
        assert left_of(app, "joe@acme.com") == "3h"
        assert rows(app)[column(app).index("joe@acme.com")][2] == "V D O ·"
        events = audit_count(demo)

        async def shows(email: str, text: str) -> bool:
            for _ in range(100):
                await pilot.pause(0.02)
                if email in column(app) and left_of(app, email) == text:
                    return True
            return False

        clock.move(minutes=31)  # under an hour left: redrawn at each tick, with seconds
        assert await shows("pat@partner.co", "59m")
        clock.move(seconds=1)
        assert await shows("pat@partner.co", "58m 59s")
        clock.move(minutes=58, seconds=59)  # the very moment it ends
        for _ in range(100):
            await pilot.pause(0.02)
            if "pat@partner.co" not in column(app):
                break
        else:
            raise AssertionError("the expired grant stayed in the access pane")
        await settle(pilot, app)
        assert left_of(app, "joe@acme.com") == "1h 30m"
        clock.move(hours=2)
        for _ in range(100):
            await pilot.pause(0.02)
            if left_of(app, "joe@acme.com") == "":
                break
        else:
            raise AssertionError("joe's expired grant still shows")
        await settle(pilot, app)
        assert rows(app)[column(app).index("joe@acme.com")][2] == "V · · ·"  # the member role
        assert audit_count(demo) == events  # decided at read time: nothing was written
        assert "(1 temporary)" not in status(app)


@sync
async def test_details_show_when_a_grant_ends(demo, clock):
    ops.grant_access(demo, ADA, "api-staging", "pat@partner.co", ["deploy"],
                     expires_in=timedelta(days=2, hours=3))
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        assert left_of(app, "pat@partner.co") == "2d 3h"
        app.screen.view.table.move_cursor(row=column(app).index("pat@partner.co"))
        await settle(pilot, app)
        await press(pilot, app, "enter")
        assert isinstance(app.screen, HelpScreen)
        body = str(app.screen.query_one(".help-body Static").render())
        assert "2026-03-04 12:00:00 UTC (2d 3h left)" in body


@sync
async def test_the_roster_and_apps_tab_follow_a_grant_ending_and_a_request_lapsing(demo, clock):
    """Nothing is written when a grant ends or a request lapses, so nothing announces it: the
    dashboard reloads itself at that moment (store.queries.next_deadline), not at the next
    unrelated write (attacker review, finding 3)."""
    ops.grant_access(demo, ADA, "api-staging", "pat@partner.co", ["deploy"],
                     expires_in=timedelta(minutes=90))
    ops.request_access(demo, ops.Actor("john@acme.com"), "admin-panel", ["deploy"], "hotfix")
    app = make(demo)
    app.CLOCK_TICK = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert "pat@partner.co" in column(app)  # a collaborator, on the roster
        tabs = app.main.query_one("TabbedContent")
        assert "(1 request)" in str(tabs.get_tab("apps").label)
        events = audit_count(demo)
        clock.move(minutes=90)
        for _ in range(400):
            await pilot.pause(0.02)
            if "pat@partner.co" not in column(app):
                break
        else:
            raise AssertionError("the roster still lists a collaborator whose only grant ended")
        clock.move(days=7)
        for _ in range(400):
            await pilot.pause(0.02)
            if "(1 request)" not in str(tabs.get_tab("apps").label):
                break
        else:
            raise AssertionError("the Apps tab still counts a lapsed request")
        assert audit_count(demo) == events  # decided at read time: nothing was written
