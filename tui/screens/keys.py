"""The Keys screen: your own SSH public keys (for ``teamaccess serve``); add by pasting, remove.

Also the "add a key" form an admin opens from a roster row: the same form, for that account.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from teamaccess.store import ops, queries
from teamaccess.tui.widgets.dialogs import FormDialog, TooSmall, field
from teamaccess.tui.widgets.safe import clean, text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from .base import TableView
from .header import HeaderBar


def short_type(key_type: str) -> str:
    """A key type as people say it: ed25519, rsa, ecdsa-p256, sk-ed25519."""
    short = key_type.removeprefix("ssh-").replace("ecdsa-sha2-nist", "ecdsa-")
    return short.replace("sk-ssh-", "sk-").replace("sk-ecdsa-sha2-nist", "sk-ecdsa-").removesuffix(
        "@openssh.com")


class AddKeyDialog(FormDialog):
    """Paste one OpenSSH public key (the line of a .pub file) for an account."""

    ok_label = "Add"

    def __init__(self, email: str, own: bool, action: Any) -> None:
        self.title_text = "Add an SSH key to your account" if own else f"Add an SSH key for {email}"
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        yield Static("Public key (paste the one line of ~/.ssh/id_ed25519.pub)", classes="label")
        yield field("ssh-ed25519 AAAA… you@laptop", id="key")
        yield Static(Text("ed25519, ecdsa or rsa (2048 bits or more); never the private key.",
                          style="dim"), classes="label")

    def values(self) -> dict[str, Any]:
        return {"key": self.query_one("#key", Input).value}

    def check(self, values: dict[str, Any]) -> str | None:
        if not values["key"].strip():
            return "Paste a public key, e.g. the line in ~/.ssh/id_ed25519.pub."
        return None


def add_key_for(dashboard: Any, email: str | None) -> None:
    """Open the add-key form for ``email`` (None: the actor's own account); say what happened."""
    own = email is None

    def add(values: dict[str, Any]) -> ops.KeyChange:
        return ops.add_key(dashboard.db, dashboard.actor, values["key"], email)

    def done(change: ops.KeyChange | None) -> None:
        if change is not None:
            dashboard.report(f"Added key {change.fingerprint} to {change.email}.")
            dashboard.data_changed()

    dashboard.push_screen(AddKeyDialog(email or dashboard.actor.email, own, add), done)


class KeysView(TableView):
    """The actor's own SSH keys."""

    noun = "keys"
    # The comment last: it is the one column that may be cut at 80 columns.
    COLUMNS = (("fingerprint", "Fingerprint"), ("type", "Type"), ("added", "Added"),
               ("comment", "Comment"))

    BINDINGS = [
        Binding("a", "add_key", "Add", id="keys.add", tooltip="Add an SSH key by pasting it"),
        Binding("d", "remove_key", "Remove", id="keys.remove", tooltip="Remove the selected key"),
    ]

    def fetch(self) -> Any:
        return queries.keys(self.dashboard.db, self.dashboard.actor.email)

    def key(self, item: queries.KeyRow) -> str:
        return item.fingerprint

    def cells(self, item: queries.KeyRow) -> Sequence[Text]:
        return (text(item.fingerprint), text(short_type(item.key_type)),
                Text(item.created_at.strftime("%Y-%m-%d")), self._note(item))

    @staticmethod
    def _note(item: queries.KeyRow) -> Text:
        """The comment; for a key that can't log in now, first why (its creator lost authority)."""
        if item.suspended is None:
            return text(item.comment or "")
        note = text(item.suspended + (f" ({item.comment})" if item.comment else ""))
        note.stylize("bold red")
        return note

    def haystack(self, item: queries.KeyRow) -> str:
        return f"{item.fingerprint} {item.key_type} {item.comment or ''}".lower()

    def status_extra(self, line: Text) -> None:
        line.append(" · whoever holds a key's private half reaches 'teamaccess serve' as you")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unfilter":
            return self.has_filter()
        if action == "filter":
            return self.refusal is None
        if action == "remove_key":
            return self.refusal is None and (self.selected() is not None or None)
        return True

    def action_add_key(self) -> None:
        """Paste a key to add to your account."""
        add_key_for(self.dashboard, None)

    def action_remove_key(self) -> None:
        """Confirm, then remove the selected key."""
        row = self.selected()
        if row is None:
            self.dashboard.report("Choose a key first (j/k or arrows).", error=True)
            return
        dashboard = self.dashboard
        body = Text()
        body.append(clean(row.fingerprint), style="bold")
        body.append(f" ({clean(row.key_type)}{', ' + clean(row.comment) if row.comment else ''})"
                    " no longer lets anyone in as you.")
        dashboard.confirm_op(Text("Remove this SSH key?"), body, "Remove",
                             lambda: ops.remove_key(dashboard.db, dashboard.actor, row.fingerprint),
                             lambda c: f"Removed key {c.fingerprint} from {c.email}.")


class KeysScreen(Screen[None]):
    """Your SSH keys; ``escape`` goes back."""

    BINDINGS = [Binding("escape", "back", "Back", id="keys.back", tooltip="Back to the team")]
    AUTO_FOCUS = "LiveTable"

    def compose(self) -> ComposeResult:
        yield TooSmall()
        yield HeaderBar()
        yield Static(Text(" Your SSH keys", style="bold"), id="summary")
        yield KeysView(id="keys")
        yield Footer(compact=True)

    @property
    def view(self) -> KeysView:
        """The screen's list."""
        return self.query_one(KeysView)

    def on_mount(self) -> None:
        self.view.reload()

    def action_back(self) -> None:
        """Back to where you were (escape in the filter clears the filter first)."""
        self.app.pop_screen()
