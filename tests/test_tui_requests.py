"""Access requests in the dashboard, driven with Pilot: deciders see a count where they look
(the Apps tab, the access pane), approve with y and deny with n (with a reason) from the list; a
requester files a request with R and sees its state, and can't approve it (y says why); a
refusal shows the store's one-line reason and changes nothing; a request filed elsewhere
appears in an open dashboard by itself; a reason is shown as typed, never as markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import make, open_apps, open_pane, press, settle, status, sync
from sqlalchemy import select, text
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo
from teamaccess.store.models import AccessRequest, Account, App, AuditEvent, Grant
from teamaccess.tui.app import TeamAccessApp
from teamaccess.tui.screens.access import AccessScreen
from teamaccess.tui.screens.requests import (
    ApproveDialog,
    DenyDialog,
    RequestDialog,
    RequestsScreen,
)
from teamaccess.tui.widgets.dialogs import ConfirmDialog, HelpScreen
from textual.widgets import Checkbox, Input

TEAM = "acme-widgets"
SIZE = (120, 30)
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
JOHN = ops.Actor("john@acme.com", "john")
SAM = ops.Actor("sam@freelance.dev", "sam")
GRACE = ops.Actor("grace@acme.com", "grace")


@pytest.fixture
def demo(tmp_path):
    database = Database(tmp_path / "demo.db")
    build_demo(database)
    database.clock = lambda: T0
    yield database
    database.close()


def state(db: Database) -> tuple:
    """Every request and every grant with its end, and how many audit events: what a refusal
    must leave as it was."""
    with db.read() as s:
        requests = tuple(s.execute(select(
            AccessRequest.id, AccessRequest.status, AccessRequest.decided_by_id,
            AccessRequest.decision_reason).order_by(AccessRequest.id)))
        grants = tuple(s.execute(select(Grant.app_id, Grant.account_id, Grant.can_deploy,
                                        Grant.can_operate, Grant.can_manage, Grant.expires_at)
                                 .order_by(Grant.id)))
        return requests, grants, len(s.scalars(select(AuditEvent.id)).all())


def grant_of(db: Database, app: str, email: str) -> tuple[tuple[str, ...], datetime | None] | None:
    with db.read() as s:
        found = s.execute(select(Grant).join(App, Grant.app_id == App.id)
                          .join(Account, Grant.account_id == Account.id)
                          .where(App.name == app, Account.email == email)).scalar_one_or_none()
        if found is None:
            return None
        end = found.expires_at
        return tuple(sorted(found.permissions)), (end.replace(tzinfo=UTC) if end and not end.tzinfo
                                                   else end)


def request_rows(app: TeamAccessApp) -> dict[str, list[str]]:
    """The requests list on screen: ID -> its cells as plain text."""
    screen = app.screen
    assert isinstance(screen, RequestsScreen)
    table = screen.view.table
    return {r.key.value: [c.plain if hasattr(c, "plain") else str(c) for c in table.get_row(r.key)]
            for r in table.ordered_rows}


def to_row(app: TeamAccessApp, request_id: int) -> None:
    table = app.screen.view.table
    table.move_cursor(row=table.get_row_index(str(request_id)))


def file(db: Database, who: ops.Actor, app: str, perms: list[str], reason: str,
         hours: int | None = 8) -> int:
    return ops.request_access(db, who, app, perms, reason,
                              expires_in=timedelta(hours=hours) if hours else None).id


# -- deciders: the count where they look, approve with y, deny with n --------------------------


@sync
async def test_a_decider_sees_the_count_and_approves_with_y(demo):
    asked = file(demo, JOHN, "admin-panel", ["deploy"], "hotfix for INC-42")
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        tabs = app.main.query_one("TabbedContent")
        assert str(tabs.get_tab("apps").label) == "2 Apps (1 request)"
        await open_apps(pilot, app)
        assert app.main.active_view.table.get_row("admin-panel")[4].plain == "1"
        assert app.main.active_view.table.get_row("api-prod")[4].plain == ""
        assert "1 access request waiting for you: r lists them" in status(app)
        await open_pane(pilot, app, "admin-panel")
        assert "1 pending request: press r" in str(app.screen.query_one("#summary").render())
        await press(pilot, app, "r")
        assert isinstance(app.screen, RequestsScreen) and app.screen.app_name == "admin-panel"
        row = request_rows(app)[str(asked)]
        assert row[1:5] == ["admin-panel", "john@acme.com", "V D · ·", "8h"]
        assert row[6].startswith("pending") and row[7] == "hotfix for INC-42"
        await press(pilot, app, "y")
        dialog = app.screen
        assert isinstance(dialog, ApproveDialog)
        assert dialog.query_one("#expires", Input).value == "8h"  # as asked
        dialog.query_one("#expires", Input).value = "4h"  # the approver shortens it
        await press(pilot, app, "enter")
        assert isinstance(app.screen, RequestsScreen)
        assert grant_of(demo, "admin-panel", "john@acme.com") == (("deploy", "view"),
                                                                  T0 + timedelta(hours=4))
        assert request_rows(app)[str(asked)][6].startswith("approved")
        assert app.last_message == (f"Approved request {asked}: john@acme.com has view, deploy "
                                    "on admin-panel for 4h.")
        await press(pilot, app, "escape")
        assert isinstance(app.screen, AccessScreen)
        assert "pending request" not in str(app.screen.query_one("#summary").render())
        await press(pilot, app, "escape")
        assert str(tabs.get_tab("apps").label) == "2 Apps"


@sync
async def test_a_decider_denies_with_n_and_a_reason(demo):
    asked = file(demo, SAM, "website-staging", ["operate"], "restart the dynos", hours=None)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r")  # from the roster: every request in the team
        assert isinstance(app.screen, RequestsScreen) and app.screen.app_name is None
        assert request_rows(app)[str(asked)][4] == "no end"
        await press(pilot, app, "n")
        dialog = app.screen
        assert isinstance(dialog, DenyDialog)
        await press(pilot, app, *"use staging", "enter")
        assert isinstance(app.screen, RequestsScreen)
        [row] = queries.access_requests(demo, "sam@freelance.dev")
        assert (row.status, row.decided_by, row.decision_reason) == (
            "denied", "ada@acme.com", "use staging")
        assert grant_of(demo, "website-staging", "sam@freelance.dev")[0] == ("deploy", "view")
        assert request_rows(app)[str(asked)][6].startswith("denied")
        # Decided once: y and n now say why rather than ask.
        before = state(demo)
        await press(pilot, app, "y")
        assert isinstance(app.screen, RequestsScreen)
        assert app.last_error == (f"Request {asked} was already denied by ada@acme.com: "
                                  "a request is decided once.")
        assert state(demo) == before


@sync
async def test_escape_in_the_dialogs_decides_nothing(demo):
    file(demo, JOHN, "admin-panel", ["deploy"], "hotfix")
    before = state(demo)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r", "y")
        assert isinstance(app.screen, ApproveDialog)
        await press(pilot, app, "escape", "n")
        assert isinstance(app.screen, DenyDialog)
        await press(pilot, app, "escape")
        assert isinstance(app.screen, RequestsScreen)
    assert state(demo) == before


@sync
async def test_a_bad_duration_in_the_approve_dialog_is_said_and_nothing_changes(demo):
    file(demo, JOHN, "admin-panel", ["deploy"], "hotfix")
    before = state(demo)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r", "y")
        dialog = app.screen
        dialog.query_one("#expires", Input).value = "forever"
        await press(pilot, app, "enter")
        assert app.screen is dialog
        assert "Invalid duration 'forever'" in str(dialog.query_one("#error").render())
    assert state(demo) == before


@sync
async def test_a_store_refusal_shows_in_one_line_and_changes_nothing(demo):
    """Another admin decided first (this dashboard does not watch): the store refuses the
    second decision, and the dialog says why."""
    asked = file(demo, JOHN, "admin-panel", ["deploy"], "hotfix")
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r", "y")
        dialog = app.screen
        ops.deny_request(demo, GRACE, asked, reason="not today")
        before = state(demo)
        await press(pilot, app, "enter")
        assert app.screen is dialog  # still open, with the store's reason
        error = str(dialog.query_one("#error").render())
        assert f"Request {asked} " in error and "denied" in error and "\n" not in error.strip()
        assert state(demo)[:2] == before[:2]  # only the refusal's audit event was added
        assert state(demo)[2] == before[2] + 1
        await press(pilot, app, "escape")
        assert request_rows(app)[str(asked)][6].startswith("denied")  # caught up


# -- requesters: file with R, see the state, can't approve their own -----------------------------


@sync
async def test_a_requester_files_a_request_with_R_from_the_apps_tab(demo):
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app, "admin-panel")  # locked: john holds nothing there
        await press(pilot, app, "R")
        dialog = app.screen
        assert isinstance(dialog, RequestDialog)
        dialog.query_one("#perm-operate", Checkbox).value = True
        dialog.query_one("#expires", Input).value = "4h"
        # The reason is required: one line, nothing written.
        before = state(demo)
        await press(pilot, app, "ctrl+s")
        assert app.screen is dialog
        assert "Give a reason" in str(dialog.query_one("#error").render())
        assert state(demo) == before
        dialog.query_one("#reason", Input).value = "on call this weekend"
        await press(pilot, app, "ctrl+s")
        assert not isinstance(app.screen, RequestDialog)
        [row] = queries.access_requests(demo, "john@acme.com")
        assert (row.app, row.permissions, row.expires_in, row.reason, row.status) == (
            "admin-panel", ("view", "operate"), timedelta(hours=4), "on call this weekend",
            "pending")
        assert app.last_message == f"Requested view, operate on admin-panel (request {row.id})."
        # A requester's own pending request counts for nobody's to-do here: no count.
        assert str(app.main.query_one("TabbedContent").get_tab("apps").label) == "2 Apps"


@sync
async def test_a_requester_sees_their_request_and_y_says_why_not(demo):
    asked = file(demo, JOHN, "admin-panel", ["deploy"], "hotfix")
    before = state(demo)
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r")
        row = request_rows(app)[str(asked)]
        assert row[2] == "you" and row[6] == "pending"
        await press(pilot, app, "y")
        assert isinstance(app.screen, RequestsScreen)  # no dialog
        assert app.last_error == (f"You can't approve your own request {asked}: another team "
                                  "admin or manage holder of admin-panel decides it.")
        await press(pilot, app, "n")
        assert "can't deny your own request" in app.last_error
        assert state(demo) == before
        # Once decided, the requester sees the outcome and the note.
        ops.approve_request(demo, GRACE, asked)
        app.data_changed()
        await settle(pilot, app)
        assert request_rows(app)[str(asked)][6] == "approved"


@sync
async def test_the_request_key_is_refused_with_a_reason_where_nothing_is_missing(demo):
    app = make(demo)  # ada, a team admin: every permission everywhere
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "api-staging")
        await press(pilot, app, "R")
        assert isinstance(app.screen, AccessScreen)
        assert app.last_error == "You already hold every permission on api-staging: nothing to request."


@sync
async def test_a_locked_out_member_requests_from_the_refused_pane(demo):
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_pane(pilot, app, "admin-panel")
        assert app.screen.view.refusal is not None
        await press(pilot, app, "R")
        dialog = app.screen
        assert isinstance(dialog, RequestDialog)
        dialog.query_one("#reason", Input).value = "read the logs"
        await press(pilot, app, "ctrl+s")
        [row] = queries.access_requests(demo, "john@acme.com")
        assert (row.app, row.permissions, row.expires_in) == ("admin-panel", ("view",), None)


# -- literal text, details, live arrival ------------------------------------------------------------


@sync
async def test_a_reason_is_shown_as_typed_never_as_markup(demo):
    asked = file(demo, JOHN, "admin-panel", ["deploy"], "[red]x[/] [b]now[/b]")
    # The store refuses control characters in a reason; one written past it still shows inert.
    with demo.engine.begin() as conn:
        conn.execute(text("UPDATE access_request SET reason = :r"),
                     {"r": "[red]x[/] \x1b[31mred [b]now[/b]"})
    app = make(demo)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r")
        assert request_rows(app)[str(asked)][7] == "[red]x[/] ␛[31mred [b]now[/b]"
        svg = app.export_screenshot()
        assert "[red]x[/]" in svg and "\x1b" not in svg
        await press(pilot, app, "enter")
        assert isinstance(app.screen, HelpScreen)
        body = str(app.screen.query_one(".help-body Static").render())
        assert "[red]x[/] ␛[31mred [b]now[/b]" in body
        await press(pilot, app, "escape", "y")
        assert "[red]x[/]" in str(app.screen.query_one(".dialog-body").render())


@sync
async def test_a_request_filed_elsewhere_appears_by_itself(demo):
    app = make(demo, watch=True, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r")
        assert request_rows(app) == {}
        asked = file(demo, JOHN, "admin-panel", ["deploy"], "filed in the CLI")
        for _ in range(100):  # within a second (the watcher looks every 0.05 s here)
            await pilot.pause(0.01)
            if str(asked) in request_rows(app):
                break
        else:
            raise AssertionError("the new request did not appear")
        await press(pilot, app, "escape")
        tabs = app.main.query_one("TabbedContent")
        assert str(tabs.get_tab("apps").label) == "2 Apps (1 request)"


@sync
async def test_pending_only_and_the_palette(demo):
    first = file(demo, JOHN, "admin-panel", ["deploy"], "one")
    second = file(demo, SAM, "website-staging", ["operate"], "two")
    ops.deny_request(demo, GRACE, first)
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        titles = [title for title, _help, _run in app.palette_commands(app.screen)]
        assert any(t.startswith("Access requests") for t in titles)
        await press(pilot, app, "r")
        assert list(request_rows(app)) == [str(second), str(first)]  # pending first
        await press(pilot, app, "p")
        assert list(request_rows(app)) == [str(second)]


def test_the_stores_request_advice_reads_as_dashboard_keys(demo):
    """The store's refusals name CLI commands; the dashboard shows the keys instead."""
    from teamaccess.store.errors import StoreError
    from teamaccess.store.policy import unknown_request
    from teamaccess.tui.widgets.words import in_dashboard_words

    said = [unknown_request(99)]
    asked = file(demo, ops.Actor("barbara@acme.com"), "api-prod", ["manage"], "keys", hours=24)
    for attempt in (
        lambda: file(demo, ops.Actor("barbara@acme.com"), "api-prod", ["manage"], "again"),
        lambda: ops.approve_request(demo, GRACE, asked),  # a permanent grant: widen it instead
        lambda: ops.update_access(demo, GRACE, "api-prod", "barbara@acme.com", None),
        lambda: ops.update_access(demo, GRACE, "api-prod", "barbara@acme.com", None,
                                  expires_in=timedelta(hours=1), permanent=True),
    ):
        with pytest.raises(StoreError) as refused:
            attempt()
        said.append(str(refused.value))
    for line in said:
        shown = in_dashboard_words(line)
        assert "teamaccess " not in shown and "access:" not in shown and "--" not in shown, shown


@sync
async def test_only_deciders_are_told_how_many_wait(demo):
    file(demo, ops.Actor("dennis@acme.com"), "website-prod", ["operate"], "on call", hours=12)
    # john holds a grant on website-prod but not manage: he may not decide, so nothing shows.
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert str(app.main.query_one("TabbedContent").get_tab("apps").label) == "2 Apps"
        await open_pane(pilot, app, "website-prod")
        assert "request" not in str(app.screen.query_one("#summary").render())
        await press(pilot, app, "escape")
        assert app.main.active_view.table.get_row("website-prod")[4].plain == ""
        await press(pilot, app, "r")
        assert request_rows(app) == {}  # not his to decide, not his own
    # joe created website-prod (manage, not an admin): he decides, so he is told.
    app = make(demo, "joe@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert str(app.main.query_one("TabbedContent").get_tab("apps").label) == "2 Apps (1 request)"
        await open_pane(pilot, app, "website-prod")
        assert "1 pending request: press r" in str(app.screen.query_one("#summary").render())


@sync
async def test_an_approver_may_grant_it_with_no_end_by_ticking_permanent(demo):
    asked = file(demo, JOHN, "admin-panel", ["deploy"], "takes over the release train")
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r")
        assert isinstance(app.screen, RequestsScreen)
        assert list(request_rows(app)) == [str(asked)]  # the only one, under the cursor
        await press(pilot, app, "y")
        dialog = app.screen
        assert isinstance(dialog, ApproveDialog)
        dialog.query_one("#permanent", Checkbox).value = True
        dialog.query_one("#expires", Input).value = "2h"  # and an end too: one or the other
        await press(pilot, app, "enter")
        assert isinstance(app.screen, ApproveDialog)
        assert "not both" in str(app.screen.query_one("#error").render())
        assert grant_of(demo, "admin-panel", "john@acme.com") is None
        app.screen.query_one("#expires", Input).value = "8h"  # back to what was asked
        await press(pilot, app, "enter")
        assert isinstance(app.screen, RequestsScreen)
        assert grant_of(demo, "admin-panel", "john@acme.com") == (("deploy", "view"), None)
        assert app.last_message == (f"Approved request {asked}: john@acme.com has view, deploy "
                                    "on admin-panel.")


@sync
async def test_a_requester_withdraws_with_w_and_a_decider_is_told_why_not(demo):
    asked = file(demo, JOHN, "admin-panel", ["deploy"], "filed on the wrong app")
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "r")
        assert request_rows(app)[str(asked)][6] == "pending"
        await press(pilot, app, "w")
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, app, "escape")  # backing out withdraws nothing
        await settle(pilot, app)
        assert request_rows(app)[str(asked)][6] == "pending"
        await press(pilot, app, "w")
        await press(pilot, app, "y")
        await settle(pilot, app)
        assert app.last_message == f"Withdrew request {asked} on admin-panel."
        assert request_rows(app)[str(asked)][6] == "withdrawn"
    decider = make(demo)  # ada: the request is not hers to withdraw
    again = file(demo, JOHN, "admin-panel", ["deploy"], "the right one")
    async with decider.run_test(size=SIZE) as pilot:
        await settle(pilot, decider)
        await press(pilot, decider, "r")
        assert request_rows(decider)[str(again)][6].startswith("pending")
        before = state(demo)
        await press(pilot, decider, "w")
        assert decider.last_error == (f"Request {again} is john@acme.com's: only they may "
                                      "withdraw it; n denies it.")
        assert state(demo) == before


@sync
async def test_R_says_at_once_when_a_request_for_the_app_is_already_pending(demo):
    asked = file(demo, JOHN, "admin-panel", ["deploy"], "hotfix")
    app = make(demo, "john@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await open_apps(pilot, app)
        app.main.active_view.table.move_cursor(row=app.main.active_view.table.get_row_index("admin-panel"))
        await press(pilot, app, "R")
        await settle(pilot, app)
        assert not isinstance(app.screen, RequestDialog)  # no form to fill in for nothing
        assert app.last_error == (f"You already asked: request {asked} for admin-panel is pending; "
                                  "wait for a decision, or withdraw it with w in the requests list (r).")
