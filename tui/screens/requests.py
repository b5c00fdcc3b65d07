"""Access requests in the dashboard: the list to approve (y) or deny (n), one's own requests'
state, and the form that files a request (R on an app one lacks a permission on)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from teamaccess.store import ops, queries, validate
from teamaccess.store.errors import Invalid
from teamaccess.store.words import RequestStatus
from teamaccess.tui.widgets.dialogs import (
    FormDialog,
    HelpScreen,
    Tick,
    TooSmall,
    checked_permissions,
    expires_field,
    field,
    permission_boxes,
    read_expires_in,
    ticked,
)
from teamaccess.tui.widgets.safe import clean
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from .access import perm_marks
from .base import TableView, cut
from .header import HeaderBar, fit

#: How each status reads without colour too: a word, and a style that only adds to it.
_STATUS_STYLE = {
    RequestStatus.PENDING: "bold yellow",
    RequestStatus.APPROVED: "green",
    RequestStatus.DENIED: "red",
    RequestStatus.LAPSED: "dim",
}


def age_text(created_at: datetime, now: datetime) -> str:
    """How long ago a request was filed, in its largest unit (``45s``, ``3m``, ``5h``, ``2d``):
    short, so the reason keeps the width."""
    since = validate.time_left(now, created_at)  # the time from created_at to now
    return "0s" if since == "expired" else since.split()[0]


def asked_for(expires_in: timedelta | None) -> str:
    """How long the requester asked the access to last: ``8h``, or ``no end``."""
    return validate.duration_text(expires_in) if expires_in is not None else "no end"


def file_request(dashboard: Any, app: str) -> None:
    """Open the form that files an access request on ``app``; say what happened."""

    def request(values: dict[str, Any]) -> ops.RequestChange:
        return ops.request_access(dashboard.db, dashboard.actor, app, values["permissions"],
                                  values["reason"], expires_in=values["expires_in"])

    def done(change: ops.RequestChange | None) -> None:
        if change is not None:
            dashboard.report(f"Requested {', '.join(change.permissions)} on {change.app} "
                             f"(request {change.id}).")
            dashboard.data_changed()

    def ask(mine: list[queries.RequestRow]) -> None:
        # One pending request per app and person: say so before the form, not after it.
        waiting = next((row for row in mine if row.mine), None)
        if waiting is not None:
            dashboard.report(f"You already asked: request {waiting.id} for {app} is pending; wait "
                             "for a decision, or withdraw it with w in the requests list (r).",
                             error=True)
        else:
            dashboard.push_screen(RequestDialog(app, request), done)

    dashboard.fetch_then(
        lambda: queries.access_requests(dashboard.db, dashboard.actor.email, app=app, pending_only=True),
        ask)


def _lasts(expires_at: datetime | None, chosen: timedelta | None, now: datetime) -> str:
    """How long an approved grant lasts, for the outcome line: " for 8h" when it ends as chosen
    (give or take the moment it took), else " until <time> UTC" (an existing grant with a later
    end kept it), else nothing (no end)."""
    if expires_at is None:
        return ""
    if chosen is not None and abs(now + chosen - expires_at) < timedelta(minutes=1):
        return f" for {validate.duration_text(chosen)}"
    return f" until {expires_at:%Y-%m-%d %H:%M} UTC"


class RequestDialog(FormDialog):
    """Ask for permissions on one app, with a reason and how long (access:request)."""

    ok_label = "Request"

    def __init__(self, app: str, action: Any) -> None:
        self.title_text = f"Request access to {app}"
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        with Horizontal(classes="perms"):
            yield from permission_boxes(())
        yield from expires_field()
        yield Static("Reason (required: the approver reads it)", classes="label")
        yield field("e.g. on call this weekend, INC-1234", id="reason")

    def on_mount(self) -> None:
        self.query_one("#perm-deploy").focus()

    def values(self) -> dict[str, Any]:
        return {"permissions": checked_permissions(self),
                "expires": self.query_one("#expires", Input).value,
                "reason": self.query_one("#reason", Input).value}

    def check(self, values: dict[str, Any]) -> str | None:
        try:
            values["expires_in"] = read_expires_in(values["expires"])
        except Invalid as err:
            return str(err)
        if not values["reason"].strip():
            return "Give a reason: whoever decides reads it (e.g. on call this weekend)."
        return None


class _DecisionDialog(FormDialog):
    """A decision on one request (its ``ok_label`` is the verb), above the request it decides."""

    def __init__(self, row: queries.RequestRow, action: Any) -> None:
        self.title_text = f"{self.ok_label} request {row.id} of {row.requester} on {row.app}?"
        self._row = row
        super().__init__(action)

    def summary(self, middle: str) -> Static:
        """What was asked: the permissions in bold, ``middle``, then the reason as typed."""
        body = Text()
        body.append("Permissions: ")
        body.append(", ".join(self._row.permissions), style="bold")
        body.append(middle)
        body.append(clean(self._row.reason))
        return Static(body, classes="dialog-body")


class ApproveDialog(_DecisionDialog):
    """Approve one request, confirming (or changing) how long the access lasts."""

    ok_label = "Approve"

    def fields(self) -> Iterable[Any]:
        row = self._row
        yield self.summary(f"\nAsked for: {asked_for(row.expires_in)}\nReason: ")
        # The store gives what was asked when no duration is given: the box shows it, and an
        # approver may shorten or lengthen it (never past 90d).
        asked = validate.duration_text(row.expires_in) if row.expires_in is not None else ""
        yield Static("Expires in (as asked, or change it: e.g. 30m, 8h, 7d; at most 90d)",
                     classes="label")
        yield field(f"as asked ({asked})" if asked else "never (as asked)", id="expires",
                    value=asked)
        if asked:  # an empty box means "as asked": approving with no end is a choice of its own
            yield Tick(Text("No end (permanent)"), id="permanent", compact=True)

    def on_mount(self) -> None:
        self.query_one("#expires", Input).focus()

    def values(self) -> dict[str, Any]:
        return {"expires": self.query_one("#expires", Input).value, "permanent": ticked(self, "permanent")}

    def check(self, values: dict[str, Any]) -> str | None:
        try:
            values["expires_in"] = read_expires_in(values["expires"])
        except Invalid as err:
            return str(err)
        if values["permanent"]:
            if values["expires"].strip() not in ("", validate.duration_text(self._row.expires_in)):
                return "Choose one: an end in 'Expires in', or 'No end (permanent)', not both."
            values["expires_in"] = None  # the box still shows what was asked: the tick wins
        return None


class DenyDialog(_DecisionDialog):
    """Deny one request, with an optional reason the requester sees."""

    ok_label = "Deny"

    def fields(self) -> Iterable[Any]:
        yield self.summary("\nReason given: ")
        yield Static("Why not (optional; the requester sees it)", classes="label")
        yield field("e.g. use the staging app", id="reason")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def values(self) -> dict[str, Any]:
        return {"reason": self.query_one("#reason", Input).value.strip() or None}


class RequestsView(TableView):
    """Access requests: those the actor may decide, and the actor's own, pending first."""

    noun = "requests"
    COLUMNS = (("id", "ID"), ("app", "App"), ("requester", "Requester"), ("perms", "V D O M"),
               ("for", "For"), ("age", "Age"), ("status", "Status"), ("reason", "Reason"))
    # The widest is cut first: at 80 columns the reason keeps as much room as the app and the
    # requester (enter shows it whole).
    SQUEEZE = {"reason": (60, 10), "requester": (28, 8), "app": (24, 6)}

    BINDINGS = [
        Binding("y", "approve", "Approve", id="requests.approve",
                tooltip="Approve the selected request (grants what it asks)"),
        Binding("n", "deny", "Deny", id="requests.deny", tooltip="Deny the selected request"),
        Binding("w", "withdraw", "Withdraw", id="requests.withdraw",
                tooltip="Withdraw your own pending request (you may then ask again)"),
        Binding("p", "toggle_pending", "Pending:off", id="requests.pending",
                tooltip="Show only pending requests (or every request again)"),
        Binding("R", "file", "Request", id="requests.file",
                tooltip="Request access to this app", show=False),
        Binding("enter", "details", "Details", id="requests.details", show=False,
                tooltip="Show the selected request in full"),
    ]

    def __init__(self, *, id: str, app_name: str | None = None) -> None:
        super().__init__(id=id)
        self.app_name = app_name
        self.pending_only = False
        #: The clock's reading when the rows were read: ages are measured from it.
        self.read_at: datetime | None = None

    def fetch(self) -> Any:
        dashboard = self.dashboard
        team = None if self.app_name is not None else dashboard.require_team()
        found = queries.access_requests(dashboard.db, dashboard.actor.email, app=self.app_name,
                                        team=team)
        return found, dashboard.db.now()

    def listed(self, items: Any) -> list[Any]:
        return list(items[0])

    def accept(self, items: Any) -> None:
        rows, self.read_at = items
        self.noun = "request" if len(rows) == 1 else "requests"  # "1 request" on the status line
        # Pending first (what needs a decision), each group newest first as the store gives it.
        self.items = sorted(rows, key=lambda r: r.status != RequestStatus.PENDING)

    def key(self, item: queries.RequestRow) -> str:
        return str(item.id)

    def cells(self, item: queries.RequestRow) -> Sequence[Text]:
        now = self.read_at or item.created_at
        status = Text(item.status, style=_STATUS_STYLE.get(item.status, ""))
        # One's own requests say "you": the email is known, and the reason keeps the width.
        requester = (Text("you", style="italic") if item.mine
                     else cut(item.requester, self.room("requester")))
        return (Text(str(item.id), justify="right"), cut(item.app, self.room("app")),
                requester, perm_marks(tuple(item.permissions)),
                Text(asked_for(item.expires_in)), Text(age_text(item.created_at, now)), status,
                cut(item.reason, self.room("reason")))

    def squeeze_text(self, item: queries.RequestRow) -> dict[str, str]:
        return {"reason": clean(item.reason), "requester": "you" if item.mine else item.requester,
                "app": item.app}

    def haystack(self, item: queries.RequestRow) -> str:
        return " ".join((str(item.id), item.app, item.requester, *item.permissions, item.status,
                         item.reason, item.decided_by or "")).lower()

    def narrow(self, items: list[Any]) -> list[Any]:
        if self.pending_only:
            return [r for r in items if r.status == RequestStatus.PENDING]
        return items

    def waiting(self) -> int:
        """How many requests the actor may decide now."""
        return sum(1 for r in self.items if r.may_decide)

    def status_extra(self, line: Text) -> None:
        waiting = self.waiting()
        if waiting:
            line.append(f" · {waiting} waiting for you: y approves, n denies", style="bold")
        mine = sum(1 for r in self.items if r.mine)
        if mine:
            line.append(f" · {mine} of yours")
        if self.pending_only:
            line.append(" · showing only pending", style="bold")

    def empty_hint(self) -> str:
        where = f"on {self.app_name}" if self.app_name else "for you to decide or of yours"
        return f"no access requests {where}" + (" — R asks for access" if self.app_name else "")

    def after_load(self) -> None:
        self.screen.show_summary()  # type: ignore[attr-defined]

    # -- keys --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unfilter":
            return self.has_filter()
        if action in ("filter", "toggle_pending"):
            return self.refusal is None
        if action == "file":
            return self.app_name is not None
        if action == "withdraw":
            row = self.selected()
            if row is not None and row.mine and row.status == RequestStatus.PENDING:
                return True
            # greyed where one of the actor's own requests is pending, else out of the footer
            return None if any(r.mine and r.status == RequestStatus.PENDING for r in self.items) else False
        if action in ("approve", "deny", "details"):
            row = self.selected()
            if row is None:
                return None if action != "details" else False
            if action == "details":
                return True
            if row.may_decide:
                return True
            # Greyed where another row may be decided; hidden for someone who decides none here
            # (a requester): either way the key says why when pressed (see why_not).
            return None if any(r.may_decide for r in self.items) else False
        return True

    def why_not(self, action: str) -> str | None:
        if self.refusal is not None or action not in ("approve", "deny", "withdraw"):
            return None
        row = self.selected()
        if row is None:
            return "No request is selected: the list is empty."
        if action == "withdraw":
            if not row.mine:
                return (f"Request {row.id} is {row.requester}'s: only they may withdraw it"
                        + ("; n denies it." if row.may_decide else "."))
            if row.status == RequestStatus.LAPSED:
                return f"Request {row.id} lapsed already: there is nothing to withdraw."
            return f"Request {row.id} was already {row.status}: there is nothing to withdraw."
        verb = "approve" if action == "approve" else "deny"
        if row.status != RequestStatus.PENDING:
            if row.status == RequestStatus.LAPSED:
                return (f"Request {row.id} lapsed (undecided for 7 days): nothing to {verb}; "
                        "the requester may ask again.")
            by = f" by {row.decided_by}" if row.decided_by else ""
            return f"Request {row.id} was already {row.status}{by}: a request is decided once."
        if row.mine:
            return (f"You can't {verb} your own request {row.id}: another team admin or "
                    f"manage holder of {row.app} decides it.")
        return (f"Only team admins and accounts with manage on {row.app} may {verb} its "
                "requests: ask one of them.")

    def on_data_table_row_selected(self, event: Any) -> None:
        """Enter shows the request in full."""
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        """Every field of the selected request, uncut (the reason shown as typed)."""
        row = self.selected()
        if row is None:
            return
        now = self.read_at or row.created_at
        fields = [("request", str(row.id)), ("app", row.app), ("team", row.team or ""),
                  ("requester", row.requester + (" (you)" if row.mine else "")),
                  ("permissions", " ".join(row.permissions)),
                  ("asked for", asked_for(row.expires_in)),
                  ("filed", f"{row.created_at:%Y-%m-%d %H:%M} UTC "
                            f"({age_text(row.created_at, now)} ago)"),
                  ("reason", row.reason), ("status", row.status)]
        if row.decided_by or row.decided_at:
            when = f" on {row.decided_at:%Y-%m-%d %H:%M} UTC" if row.decided_at else ""
            fields.append(("decided by", (row.decided_by or "") + when))
        if row.decision_reason:
            fields.append(("decision note", row.decision_reason))
        if row.may_decide:
            fields.append(("", "y approves, n denies (escape, then the key)"))
        self.dashboard.push_screen(HelpScreen(f"Access request {row.id}",
                                              [(k, clean(v)) for k, v in fields if v]))

    def action_toggle_pending(self) -> None:
        """Show only pending requests, or every request again; the footer says which."""
        self.pending_only = not self.pending_only
        label = f"Pending:{'on' if self.pending_only else 'off'}"
        for key, bindings in self._bindings.key_to_bindings.items():
            self._bindings.key_to_bindings[key] = [
                replace(b, description=label) if b.action == "toggle_pending" else b
                for b in bindings]
        self.refilter()
        self.screen.refresh_bindings()

    def action_file(self) -> None:
        """File a request on this view's app."""
        if self.app_name is not None:
            file_request(self.dashboard, self.app_name)

    def action_approve(self) -> None:
        """Approve the selected request (the form confirms how long)."""
        row = self.selected()
        if row is None:
            return
        dashboard = self.dashboard

        chosen: list[timedelta | None] = []

        def approve(values: dict[str, Any]) -> ops.RequestChange:
            chosen[:] = [None if values["permanent"] else values["expires_in"] or row.expires_in]
            return ops.approve_request(dashboard.db, dashboard.actor, row.id,
                                       expires_in=values["expires_in"], permanent=values["permanent"])

        def done(change: ops.RequestChange | None) -> None:
            if change is not None:
                lasts = _lasts(change.expires_at, chosen[0] if chosen else None,
                               dashboard.db.now())
                dashboard.report(f"Approved request {change.id}: {change.requester} has "
                                 f"{', '.join(change.permissions)} on {change.app}{lasts}.")
                dashboard.data_changed(focus=str(change.id))
            else:  # backed out, perhaps after a refusal (decided elsewhere): catch up
                self.reload()

        dashboard.push_screen(ApproveDialog(row, approve), done)

    def action_deny(self) -> None:
        """Deny the selected request (the form asks for an optional reason)."""
        row = self.selected()
        if row is None:
            return
        dashboard = self.dashboard

        def deny(values: dict[str, Any]) -> ops.RequestChange:
            return ops.deny_request(dashboard.db, dashboard.actor, row.id, reason=values["reason"])

        def done(change: ops.RequestChange | None) -> None:
            if change is not None:
                dashboard.report(f"Denied request {change.id} of {change.requester} on {change.app}.")
                dashboard.data_changed(focus=str(change.id))
            else:
                self.reload()

        dashboard.push_screen(DenyDialog(row, deny), done)


    def action_withdraw(self) -> None:
        """Withdraw the selected request, the actor's own (asks first)."""
        row = self.selected()
        if row is None:
            return
        dashboard = self.dashboard
        question = Text(f"Withdraw your request {row.id} for {', '.join(row.permissions)} on ")
        question.append(clean(row.app))
        question.append("?")
        dashboard.confirm_op(question, Text("You may ask again afterwards."), "Withdraw",
                             lambda: ops.withdraw_request(dashboard.db, dashboard.actor, row.id),
                             lambda c: f"Withdrew request {c.id} on {c.app}.")


class RequestsScreen(Screen[None]):
    """Access requests of the team (or of one app); ``escape`` goes back."""

    BINDINGS = [Binding("escape", "back", "Back", id="requests.back", tooltip="Back")]
    AUTO_FOCUS = "LiveTable"

    def __init__(self, app_name: str | None = None) -> None:
        super().__init__()
        self.app_name = app_name

    def compose(self) -> ComposeResult:
        yield TooSmall()
        yield HeaderBar()
        yield Static("", id="summary")
        yield RequestsView(id="requests", app_name=self.app_name)
        yield Footer(compact=True)

    @property
    def view(self) -> RequestsView:
        """The screen's list."""
        return self.query_one(RequestsView)

    def on_mount(self) -> None:
        self.show_summary()
        self.view.reload()

    def show_summary(self) -> None:
        """The line above the list: whose requests, and how many wait for the actor."""
        where = (f"on {clean(self.app_name)}" if self.app_name is not None
                 else f"in {clean(getattr(self.app, 'team', None) or '')}")
        view = next(iter(self.query(RequestsView)), None)
        waiting = view.waiting() if view is not None and view.loaded else 0

        def line(long: bool) -> Text:
            out = Text(f" Access requests {where}", style="bold")
            if waiting:
                out.append(f"  ·  {waiting} waiting for you", style="bold yellow")
            if long:
                out.append("  ·  yours and those you may decide", style="dim")
            return out

        summary = self.query_one("#summary", Static)
        summary.update(fit([line(True), line(False)], summary.size.width or self.size.width))

    def action_back(self) -> None:
        """Back to where you were."""
        self.app.pop_screen()

