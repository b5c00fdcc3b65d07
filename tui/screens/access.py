"""The access pane of one app: who has what and why; grant, change and revoke."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from teamaccess.store import ops, queries, validate
from teamaccess.store.words import COLLABORATOR, PERMISSIONS
from teamaccess.tui.widgets.dialogs import GrantDialog, HelpScreen, PermissionsDialog, TooSmall
from teamaccess.tui.widgets.safe import clean
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from .base import TableView, cut
from .header import HeaderBar, fit

_LEGEND = ", ".join(f"{p.letter} {p}" for p in PERMISSIONS)


def perm_marks(perms: tuple[str, ...]) -> Text:
    """View, deploy, operate, manage as initials in fixed places, a dot where one is missing."""
    out = Text()
    for i, name in enumerate(PERMISSIONS):
        if i:
            out.append(" ")
        if name in perms:
            out.append(name.letter, style="bold green")
        else:
            out.append("·", style="dim")
    return out


def _until(expires_at: datetime | None) -> str:
    """" until <time> UTC" for a grant with an end, else nothing."""
    return f" until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at is not None else ""


class AccessView(TableView):
    """The rows of one app's access pane."""

    noun = "accounts"
    COLUMNS = (("email", "Email"), ("role", "Role"), ("perms", " ".join(p.letter for p in PERMISSIONS)),
               ("left", "Left"), ("why", "Why"))
    #: While a temporary grant has less than this left, its time left is redrawn at every tick
    #: of the clock (the cell shows seconds then); otherwise once per :attr:`SLOW` at most.
    CLOSE = timedelta(hours=1)
    SLOW = timedelta(seconds=30)

    BINDINGS = [
        Binding("a", "grant", "Grant", id="access.grant", tooltip="Grant an account access to this app"),
        Binding("e", "change", "Change", id="access.change", tooltip="Change the selected grant"),
        Binding("d", "revoke", "Revoke", id="access.revoke", tooltip="Revoke the selected grant"),
        Binding("enter", "details", "Details", id="access.details", show=False,
                tooltip="Show the selected row in full"),
        Binding("l", "lock", "Lock", id="access.lock", tooltip="Lock this app"),
        Binding("u", "unlock", "Unlock", id="access.unlock", tooltip="Unlock this app"),
        Binding("R", "request", "Request", id="access.request",
                tooltip="Request access to this app (permissions, how long, why)"),
    ]

    def __init__(self, app_name: str, *, id: str) -> None:
        super().__init__(id=id)
        self.app_name = app_name
        self.view: queries.AccessView | None = None
        #: What check_action said for the last app shown (see there).
        self._decided: dict[str, bool | None] = {}
        #: The rows holding a temporary grant, by key, soonest end first (see :meth:`tick`).
        self._ending: list[tuple[datetime, str]] = []
        #: The cells the columns before Why take (see :meth:`accept`).
        self._fixed = 48
        #: The clock's reading when the time left was last drawn.
        self._drawn_at: datetime | None = None

    def fetch(self) -> Any:
        return queries.app_access(self.dashboard.db, self.dashboard.actor.email, self.app_name)

    def fetch_first(self) -> Any | None:
        return queries.app_access(self.dashboard.db, self.dashboard.actor.email, self.app_name,
                                  limit=self.window)

    def listed(self, items: Any) -> list[Any]:
        return list(items.rows)

    def accept(self, items: Any) -> None:
        self.view = items
        self.items = list(items.rows)
        # What the columns before Why take (cells, 2 of padding each, the scrollbar), from the
        # widest values of every row, as the table's columns only ever widen: Why gets the rest.
        email = min(30, max((len(row.email) for row in self.items), default=5))
        role = max((len(row.role or COLLABORATOR) for row in self.items), default=4)
        ending = any(row.expires_at is not None for row in self.items)
        self._fixed = max(5, email) + max(4, role) + 7 + (7 if ending else 4) + 5 * 2 + 2
        now = self.dashboard.db.now()
        # Ends already past (a read racing the clock) are not waited for again: no reload loop.
        self._ending = sorted((row.expires_at, row.email) for row in self.items
                              if row.expires_at is not None and row.expires_at > now)
        self._drawn_at = now

    def tick(self) -> None:
        """Each tick of the dashboard's clock (a second): redraw the time left of temporary
        grants (at every tick while one has less than an hour left, else every 30 s), and read
        the rows again the moment one ends, so an expired grant leaves the list then (the store
        decides at read time; nothing is written). Costs nothing while no grant has an end."""
        if not self._ending or self.pending or self.refusal is not None:
            return
        now = self.dashboard.db.now()
        soonest = self._ending[0][0]
        if soonest <= now:
            self.reload()
            return
        drawn = self._drawn_at
        if soonest - now >= self.CLOSE and drawn is not None and now - drawn < self.SLOW:
            return
        self._drawn_at = now
        for _end, key in self._ending:
            self._cells.pop(key, None)
        self.refilter()

    def time_left(self, item: queries.AccessRow) -> Text:
        """The time left of the row's grant, or nothing for a grant without an end."""
        if item.expires_at is None:
            return Text("")
        left = validate.time_left(item.expires_at, self.dashboard.db.now())
        close = item.expires_at - self.dashboard.db.now() < self.CLOSE
        return Text(left, style="bold yellow" if close else "")

    def after_load(self) -> None:
        self.screen.show_summary(self.view if self.refusal is None else None, self.refusal)  # type: ignore[attr-defined]
        self.dashboard.show_access()  # the first rows (or the refusal) are in: the pane may appear

    def key(self, item: queries.AccessRow) -> str:
        return item.email

    def cells(self, item: queries.AccessRow) -> Sequence[Text]:
        role = Text(item.role) if item.role else Text(COLLABORATOR, style="italic")
        why = "; ".join(detail for _source, _perms, detail in item.sources)
        # Cut with an ellipsis to what is left of the width, never mid-word at the edge;
        # enter shows the row in full.
        left = self.time_left(item)
        room = max(24, (self.app.size.width or 80) - self._fixed)
        return (cut(item.email, 30), role, perm_marks(item.permissions), left, cut(why, room))

    def haystack(self, item: queries.AccessRow) -> str:
        # Search text is never shown, so it needs no cleaning; the sources' short names (not
        # their long details) keep building it for 10,000 rows cheap.
        return " ".join((item.email, item.role or COLLABORATOR, *item.permissions,
                         *(source for source, _p, _d in item.sources))).lower()

    def status_extra(self, line: Text) -> None:
        grants = sum(1 for r in self.items if r.grant is not None)
        line.append(f" · {grants} explicit grant{'' if grants == 1 else 's'}")
        if self._ending:
            line.append(f" ({len(self._ending)} temporary)")
        line.append(f" · {_LEGEND}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        decided = self._check_action(action)
        if self.view is not None:
            self._decided[action] = decided
        elif decided is False and self.refusal is None and self._decided.get(action) is not False:
            # While the next app loads, offer what the last one offered, greyed out: the
            # footer keeps its keys rather than dropping them and building them again. (A
            # refused app offers nothing, as a fresh pane would.)
            return None if action in self._decided else False
        return decided

    def _check_action(self, action: str) -> bool | None:
        if action == "unfilter":
            return self.has_filter()
        if action == "filter":
            return self.refusal is None
        view = self.view
        if action == "request":
            # Offered where the actor lacks a permission, and where the pane is refused (locked
            # out of a locked app): whether they may ask is the store's rule, asked on submit.
            if self.refusal is not None:
                return True
            return view is not None and len(view.actor_permissions) < len(PERMISSIONS)
        if view is None or self.refusal is not None or not view.can_manage:
            return False
        if action in ("change", "revoke"):
            row = self.selected()
            return True if row is not None and row.grant is not None else None
        if action == "lock":
            return not view.app.locked
        if action == "unlock":
            return view.app.locked
        return True


    def why_not(self, action: str) -> str | None:
        view = self.view
        if view is None or self.refusal is not None:
            return None
        app = self.app_name
        if not view.can_manage and action in ("grant", "change", "revoke", "lock", "unlock"):
            return (f"Only team admins and accounts with manage on {app} may change its access "
                    "or lock: ask one of them.")
        if action in ("change", "revoke"):
            row = self.selected()
            if row is None:
                return "The list is empty: nobody to change (a grants access)."
            sources = ", ".join(source for source, _p, _d in row.sources) or "nothing"
            return (f"{row.email} holds no explicit grant on {app} to "
                    f"{'change' if action == 'change' else 'revoke'} (their access: {sources}); "
                    "a grants one.")
        if action == "request":
            return f"You already hold every permission on {app}: nothing to request."
        if action == "lock":
            return f"{app} is already locked: u unlocks it."
        if action == "unlock":
            return f"{app} is not locked: l locks it."
        return None

    # -- actions -----------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: Any) -> None:
        """Enter shows the row in full (its cells are cut to the width)."""
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        """Every field of the selected row, uncut: the detail view for wide rows."""
        row = self.selected()
        if row is None:
            return
        fields = [("email", row.email), ("role", row.role or "collaborator"),
                  ("permissions", " ".join(row.permissions) or "none"),
                  ("explicit grant", " ".join(row.grant) if row.grant else "none")]
        if row.expires_at is not None:
            left = validate.time_left(row.expires_at, self.dashboard.db.now())
            fields.append(("grant ends", f"{row.expires_at:%Y-%m-%d %H:%M:%S} UTC ({left} left)"))
        fields += [(f"why: {source}", f"{' '.join(perms)}  ({detail})")
                   for source, perms, detail in row.sources]
        self.dashboard.push_screen(HelpScreen(f"{row.email} on {self.app_name}",
                                              [(k, clean(v)) for k, v in fields]))

    def action_grant(self) -> None:
        """Grant an account access."""
        dashboard, app = self.dashboard, self.app_name

        def grant(values: dict[str, Any]) -> ops.GrantChange:
            return ops.grant_access(dashboard.db, dashboard.actor, app, values["email"], values["permissions"],
                                    expires_in=values["expires_in"])

        def done(change: ops.GrantChange | None) -> None:
            if change is not None:
                dashboard.report(f"Granted {change.email} {', '.join(change.permissions)} on {change.app}"
                                 f"{_until(change.expires_at)}.")
                dashboard.data_changed(focus=change.email)

        dashboard.push_screen(GrantDialog(app, grant), done)

    def action_change(self) -> None:
        """Change the selected account's grant."""
        row = self.selected()
        if row is None or row.grant is None:
            self.dashboard.report("Choose an account that holds an explicit grant.", error=True)
            return
        dashboard, app = self.dashboard, self.app_name

        def change(values: dict[str, Any]) -> ops.GrantChange:
            return ops.update_access(dashboard.db, dashboard.actor, app, row.email, values["permissions"],
                                     expires_in=values["expires_in"], permanent=values["permanent"])

        def done(change: ops.GrantChange | None) -> None:
            if change is not None:
                dashboard.report(f"{change.email} now has {', '.join(change.permissions)} on {change.app}"
                                 f"{_until(change.expires_at)}.")
                dashboard.data_changed(focus=change.email)

        dashboard.push_screen(PermissionsDialog(app, row.email, row.grant, change,
                                                expires_at=row.expires_at, now=dashboard.db.now()), done)

    def action_request(self) -> None:
        """Ask for access to this app (permissions, how long, a reason)."""
        from .requests import file_request  # the requests screen imports this module

        file_request(self.dashboard, self.app_name)

    def action_revoke(self) -> None:
        """Confirm, then revoke the selected account's grant."""
        row = self.selected()
        if row is None or row.grant is None:
            self.dashboard.report("Choose an account that holds an explicit grant.", error=True)
            return
        dashboard, app = self.dashboard, self.app_name
        body = Text(f"{clean(row.email)} loses the explicit grant ({', '.join(row.grant)}) on "
                    f"{clean(app)}. What their team role gives stays.")

        dashboard.confirm_op(Text(f"Revoke {clean(row.email)} on {clean(app)}?"), body, "Revoke",
                             lambda: ops.revoke_access(dashboard.db, dashboard.actor, app, row.email),
                             lambda c: f"Revoked {c.email}'s access to {c.app}.")

    def action_lock(self) -> None:
        """Lock the app."""
        # The name is read now, not in the worker: by then this view may show another app.
        dashboard, app = self.dashboard, self.app_name
        dashboard.run_op(lambda: ops.lock_app(dashboard.db, dashboard.actor, app), lambda c: f"Locked {c.app}.")

    def action_unlock(self) -> None:
        """Unlock the app."""
        dashboard, app = self.dashboard, self.app_name
        dashboard.run_op(lambda: ops.unlock_app(dashboard.db, dashboard.actor, app), lambda c: f"Unlocked {c.app}.")


class AccessScreen(Screen[None]):
    """One app's access pane; ``escape`` goes back to the apps.

    The dashboard keeps one of these and shows each app in it in turn (:meth:`show_app`), so
    opening a pane fills a list that is already built and styled instead of building a screen.
    """

    BINDINGS = [Binding("escape", "back", "Back", id="access.back", tooltip="Back to the apps")]
    #: Focus the list as the screen is composed, so its keys are in the footer's first build.
    AUTO_FOCUS = "LiveTable"

    def __init__(self, app_name: str | None = None) -> None:
        super().__init__(classes="access-screen")
        self.app_name = app_name or ""
        self._ready = False  # composed and mounted
        self._styled_for: str | None = None  # the theme its styles were last computed for

    @property
    def ready(self) -> bool:
        """Composed and mounted: :meth:`show_app` fills it at once."""
        return self._ready

    def compose(self) -> ComposeResult:
        yield TooSmall()
        yield HeaderBar()
        yield Static("", id="summary")
        yield AccessView(self.app_name, id="access")
        yield Footer(compact=True)

    @property
    def view(self) -> AccessView:
        """The pane's list."""
        return self.query_one(AccessView)

    def on_mount(self) -> None:
        self._ready = True
        self._styled_for = self.app.theme
        # Time left counts down: see AccessView.tick (nothing to do while no grant has an end).
        self.set_interval(getattr(self.app, "CLOCK_TICK", 1.0), self._tick, name="time-left")
        if self.app_name:
            self.show_app(self.app_name)

    def _tick(self) -> None:
        if self in self.app.screen_stack:
            self.view.tick()

    def show_app(self, app_name: str) -> None:
        """Show one app's access: forget the last app's rows and filter, read this one's."""
        self.app_name = app_name
        if not self._ready:
            return  # still being built: on_mount shows it
        view = self.view
        if view.app_name != app_name or view.loaded or view.pending:
            view.reset()
        view.app_name, view.view = app_name, None
        self.query_one(HeaderBar).redraw()
        self.query_one("#summary", Static).update(Text(f" {clean(app_name)}", style="bold"))
        view.reload()
        view.table.focus()

    def show_summary(self, view: queries.AccessView | None, refusal: str | None) -> None:
        """The line above the list: the app, its lock, the actor's own rights.

        At 80 columns the least needed goes first (the team, the lock's date); the actor's
        permissions are never cut.
        """
        self._summary = (view, refusal)

        def line(team: bool, since: bool, long_requests: bool = True) -> Text:
            out = Text(" ")
            out.append(clean(self.app_name), style="bold")
            if view is not None:
                facts = view.app
                if facts.team is None:
                    out.append(f"  personal app of {clean(facts.owner)}" if team else "  personal")
                else:
                    if team:
                        out.append(f"  in {clean(facts.team)}")
                    out.append("  ")
                    if facts.locked:
                        out.append("locked", style="bold yellow")
                        if since and facts.locked_at is not None:
                            out.append(f" since {facts.locked_at:%Y-%m-%d}")
                    else:
                        out.append("open", style="dim")
                out.append("  ·  you: " + (" ".join(view.actor_permissions) or "none"))
                if not view.can_manage:
                    out.append("  (read-only)", style="italic")
                waiting = view.pending_requests
                if waiting:  # only those who may decide are told (the query gives 0 otherwise)
                    many = "s" if waiting > 1 else ""
                    out.append(f"  ·  {waiting} pending request{many}: press r" if long_requests
                               else f"  ·  {waiting} request{many}: r", style="bold yellow")
            elif refusal is not None:
                out.append("  no access", style="bold red")
            return out

        summary = next(iter(self.query("#summary").results(Static)), None)
        if summary is None:  # the screen is being taken down: a late load has nothing to show
            return
        summary.update(fit([line(True, True), line(False, True), line(False, False),
                            line(False, False, False)],
                           summary.size.width or self.size.width))

    def on_resize(self, _event: events.Resize) -> None:
        view, refusal = getattr(self, "_summary", (None, None))
        if view is not None or refusal is not None:
            self.show_summary(view, refusal)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        """Shown (perhaps after being filled off screen): the rest of a first page may follow."""
        # Textual restyles a pushed screen from scratch (in Screen's own handler, which runs
        # after this one). This one was styled when it was built and its classes have kept
        # their styles current since; only a new theme (set while it was off the stack, where
        # Textual does not restyle) needs it (what it costs: tests/bench/RESULTS.md).
        if self._styled_for == self.app.theme:
            event.refresh_styles = False
        self._styled_for = self.app.theme
        if self.view.partial:
            self.view.first_page_drawn()

    def on_screen_suspend(self) -> None:
        """Left for good (not just covered by a dialog): let the last app's rows go."""
        # Not when another app is being filled in here already (a quick escape then enter:
        # this message can arrive after the next open began).
        if self not in self.app.screen_stack and not self.app.access_opening:  # type: ignore[attr-defined]
            self.view.reset()

    def action_back(self) -> None:
        """Back to the apps (escape in the filter clears the filter first)."""
        self.app.pop_screen()
