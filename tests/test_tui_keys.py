"""The dashboard's SSH keys, driven with Pilot: the Keys screen (add by pasting, remove with a
confirmation), "add a key" for a user from the roster under the act-for rule, and the audit
views showing a served session's key and peer. Every refusal is checked to change nothing."""

from __future__ import annotations

import subprocess

import pytest
from conftest import make, press, settle, sync
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.tui.app import TeamAccessApp
from teamaccess.tui.screens.keys import AddKeyDialog, KeysScreen
from teamaccess.tui.widgets.dialogs import ConfirmDialog, HelpScreen
from textual.widgets import Input

TEAM = "acme-widgets"
SIZE = (100, 30)


@pytest.fixture(scope="module")
def pubs(tmp_path_factory) -> list[str]:
    """Two ed25519 public key lines made by ssh-keygen."""
    folder = tmp_path_factory.mktemp("k")
    out = []
    for name in ("one", "two"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@laptop",
                        "-f", str(folder / name)], check=True)
        out.append((folder / f"{name}.pub").read_text().strip())
    return out


def shown_keys(app: TeamAccessApp) -> list[str]:
    table = app.screen.view.table
    return [table.get_row(r.key)[0].plain for r in table.ordered_rows]


def state(db: Database) -> tuple:
    """Every account's keys, for "nothing changed" checks."""
    from sqlalchemy import select
    from teamaccess.store.models import SshKey

    with db.read() as s:
        return tuple(s.execute(select(SshKey.account_id, SshKey.fingerprint).order_by(SshKey.id)))


def select_user(app: TeamAccessApp, email: str) -> None:
    table = app.main.active_view.table
    emails = [table.get_row(r.key)[0].plain for r in table.ordered_rows]
    table.move_cursor(row=emails.index(email))


@sync
async def test_keys_screen_add_by_pasting_then_remove_with_confirmation(demo, pubs):
    app = make(demo, "joe@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "ctrl+k")
        assert isinstance(app.screen, KeysScreen)
        assert shown_keys(app) == []
        await press(pilot, app, "a")
        dialog = app.screen
        assert isinstance(dialog, AddKeyDialog)
        dialog.query_one("#key", Input).value = pubs[0]
        await press(pilot, app, "ctrl+s")
        assert isinstance(app.screen, KeysScreen)
        [row] = queries.keys(demo, "joe@acme.com")
        assert shown_keys(app) == [row.fingerprint]
        assert f"Added key {row.fingerprint} to joe@acme.com." == app.last_message
        await press(pilot, app, "d")
        assert isinstance(app.screen, ConfirmDialog)
        await press(pilot, app, "n")  # backing out keeps the key
        assert len(queries.keys(demo, "joe@acme.com")) == 1
        await press(pilot, app, "d", "y")
        assert queries.keys(demo, "joe@acme.com") == []
        assert shown_keys(app) == []
        assert app.last_message == f"Removed key {row.fingerprint} from joe@acme.com."
        await press(pilot, app, "escape")
        assert not isinstance(app.screen, KeysScreen)


@sync
async def test_a_bad_or_taken_key_keeps_the_form_open_with_the_reason(demo, pubs):
    ops.add_key(demo, ops.Actor("ada@acme.com"), pubs[0])
    app = make(demo, "joe@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        before, events = state(demo), queries.audit_count(demo)
        await press(pilot, app, "ctrl+k", "a")
        dialog = app.screen
        for pasted, says in (("ssh-dss AAAAB3NzaC1kc3M", "DSA keys (ssh-dss) are refused"),
                             (pubs[0], "already belongs to another account")):
            dialog.query_one("#key", Input).value = pasted
            await press(pilot, app, "ctrl+s")
            assert app.screen is dialog
            assert says in str(dialog.query_one("#error").render())
        await press(pilot, app, "escape")
        assert isinstance(app.screen, KeysScreen)
        assert state(demo) == before
        assert queries.audit_count(demo) == events + 2  # the two refusals, logged


@sync
async def test_an_admin_adds_a_key_for_a_user_from_the_roster(demo, pubs):
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        select_user(app, "joe@acme.com")
        await press(pilot, app, "K")
        dialog = app.screen
        assert isinstance(dialog, AddKeyDialog)
        assert "joe@acme.com" in str(dialog.query_one(".dialog-title").render())
        dialog.query_one("#key", Input).value = pubs[1]
        await press(pilot, app, "ctrl+s")
        [row] = queries.keys(demo, "joe@acme.com")
        assert row.created_by == "ada@acme.com" and row.comment == "two@laptop"
        assert app.last_message == f"Added key {row.fingerprint} to joe@acme.com."


@sync
async def test_the_roster_refuses_a_key_the_rule_forbids_with_the_reason(demo, pubs):
    # joe also works in a team ada does not administer: a key for joe would reach it too.
    ops.create_team(demo, ops.Actor("gil@globex.com"), "globex")
    ops.add_member(demo, ops.Actor("gil@globex.com"), "globex", "joe@acme.com", "member")
    app = make(demo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        before, events = state(demo), queries.audit_count(demo)
        select_user(app, "joe@acme.com")
        await press(pilot, app, "K")
        assert not isinstance(app.screen, AddKeyDialog)
        assert "would also act in globex" in app.last_error
        assert state(demo) == before and queries.audit_count(demo) == events


@sync
async def test_a_member_is_not_offered_keys_for_others(demo):
    app = make(demo, "joe@acme.com")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        offered = {a.binding.id for a in app.screen.active_bindings.values() if a.enabled}
        assert "roster.key" not in offered and "app.keys" in offered


@sync
async def test_the_audit_tab_and_event_show_a_served_session_s_key_and_peer(demo, pubs):
    fp = ops.add_key(demo, ops.Actor("ada@acme.com"), pubs[0]).fingerprint
    served = ops.Actor("ada@acme.com", None, key_fingerprint=fp, peer="203.0.113.7:50022")
    ops.create_app(demo, served, "served-app", TEAM)
    app = make(demo)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        await press(pilot, app, "3")
        table = app.main.active_view.table
        first = [c.plain for c in table.get_row(table.ordered_rows[0].key)]
        assert first[3] == f"key {fp[7:15]}… 203.0.113.7" and first[4] == "app.create"
        await press(pilot, app, "enter")
        assert isinstance(app.screen, HelpScreen)
        body = " ".join(str(s.render()) for s in app.screen.query(".help-body Static"))
        assert fp in body and "203.0.113.7:50022" in body
