"""The Textual dashboard: team roster, apps, access panes, audit, resources and billing.

Entry point (used by the CLI)::

    TeamAccessApp(db, actor, team=None).run()

Every read and write runs in a thread worker that posts a message back, so the screen never
freezes; a watcher thread polls ``db.change_token()`` about twice a second and reloads what is
on screen when anyone (another dashboard, the CLI) commits a change.

For benchmarks and tests, driven headless: ``app.roster_shown_at`` is the
``time.perf_counter()`` moment the roster first showed rows (``None`` until then), and the app
posts :class:`TeamAccessApp.RosterShown` at that moment; ``app.settled`` is True when no load or
write is in flight.

The access pane is one screen, kept for the whole session and refilled for each app it shows;
it is built a moment after the first screen is up, so that opening it does not wait for Textual
to compose and style a screen.

Full garbage collections wait for a second without input (:mod:`tui.idle_gc`): with a large team
loaded each one takes about 100 ms, which would otherwise land on a keystroke.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from teamaccess.store import queries
from teamaccess.store.db import Database
from teamaccess.store.errors import NotFound, StoreError
from teamaccess.store.ops import Actor
from teamaccess.store.policy import Relation
from teamaccess.tui.idle_gc import IdleCollector
from teamaccess.tui.screens.access import AccessScreen
from teamaccess.tui.screens.base import TableView
from teamaccess.tui.screens.header import HeaderBar
from teamaccess.tui.screens.main import TABS, MainScreen
from teamaccess.tui.widgets.dialogs import ConfirmDialog, HelpScreen, TeamSwitcher
from teamaccess.tui.widgets.safe import clean
from teamaccess.tui.widgets.words import in_dashboard_words
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

T = TypeVar("T")

_TRUECOLOR = ("truecolor", "24bit")


def pick_theme(explicit: str | None = None) -> str:
    """The theme: the argument, else ``TEAMACCESS_THEME``, else ``ansi-dark`` on 16-colour terminals
    (``TEXTUAL_COLOR_SYSTEM=standard`` says so too, as does a terminal without 256 colours)."""
    if explicit:
        return explicit
    chosen = os.environ.get("TEAMACCESS_THEME")
    if chosen:
        return chosen
    if os.environ.get("TEXTUAL_COLOR_SYSTEM", "").lower() in ("standard", "monochrome"):
        return "ansi-dark"
    colorterm = os.environ.get("COLORTERM", "").lower()
    term = os.environ.get("TERM", "").lower()
    if colorterm in _TRUECOLOR or "256" in term or "direct" in term:
        return "textual-dark"
    return "ansi-dark"


class ActionsProvider(Provider):
    """The command palette: every action the actor may take where they are, and the screens."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        assert isinstance(app, TeamAccessApp)
        return app.palette_commands(self.screen)

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class TeamAccessApp(App[None]):
    """The teamaccess dashboard for one acting account."""

    CSS_PATH = "app.tcss"
    #: Seconds an opening access pane waits for its first rows before it shows without them.
    ACCESS_WAIT = 0.1
    TITLE = "teamaccess"
    COMMANDS = {ActionsProvider}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (80, "-wide-enough")]
    VERTICAL_BREAKPOINTS = [(0, "-too-short"), (24, "-tall-enough")]

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False, tooltip="Quit teamaccess"),
        # Not a priority: a text box takes its q, and a dialog's q backs out of the dialog.
        Binding("q", "quit", "Quit", id="app.quit_q", show=False, tooltip="Quit teamaccess"),
        Binding("1", "show_tab('roster')", "Roster", id="app.roster", show=False,
                tooltip="Go to Roster"),
        Binding("2", "show_tab('apps')", "Apps", id="app.apps", show=False, tooltip="Go to Apps"),
        Binding("3", "show_tab('audit')", "Audit", id="app.audit", show=False,
                tooltip="Go to Audit"),
        Binding("4", "show_tab('resources')", "Resources", id="app.resources", show=False,
                tooltip="Go to Resources"),
        Binding("5", "show_tab('billing')", "Billing", id="app.billing", show=False,
                tooltip="Go to Billing"),
        Binding("t", "switch_team", "Team", id="app.team", show=False,
                tooltip="Switch to another team"),
        Binding("question_mark,f1", "help", "Help", id="app.help", key_display="?",
                tooltip="The keys you can use here"),
    ]

    class DataChanged(Message):
        """Someone committed a change to the database."""

    class ContextLoaded(Message):
        """The actor's teams and relation to the current team, freshly read."""

        def __init__(self, teams: list[queries.TeamRow], team: str | None,
                     relation: Relation | None) -> None:
            super().__init__()
            self.teams = teams
            self.team = team
            self.relation = relation

    class Reported(Message):
        """A one-line outcome to tell the user (from a worker)."""

        def __init__(self, text: str, error: bool, changed: bool) -> None:
            super().__init__()
            self.text = text
            self.error = error
            self.changed = changed

    class RosterShown(Message):
        """The roster showed its first rows (for benchmarks)."""

        def __init__(self, seconds: float, rows: int) -> None:
            super().__init__()
            self.seconds = seconds
            self.rows = rows

    def __init__(
        self,
        db: Database,
        actor: Actor,
        team: str | None = None,
        *,
        theme: str | None = None,
        poll_interval: float = 0.5,
        watch: bool = True,
    ) -> None:
        super().__init__()
        self.started_at = time.perf_counter()
        self.db = db
        self.actor = actor
        self.team = team
        self.teams: list[queries.TeamRow] = []
        self.relation: Relation | None = None
        self.poll_interval = poll_interval
        self.watch_db = watch
        self.roster_shown_at: float | None = None
        self.last_message: str | None = None
        self.last_error: str | None = None
        self._context_pending = False
        self._context_started = False
        self._first_context = True
        self._ops_pending = 0
        self._access: AccessScreen | None = None
        self._access_wanted = False
        self._preparing = False
        self._stop = threading.Event()
        self.idle_gc = IdleCollector()
        # Over SSH every frame of an animation is bytes on the wire: none at all.
        self.animation_level = "none"
        wanted = pick_theme(theme)
        self.theme = wanted if wanted in self.available_themes else "textual-dark"

    # -- life --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.idle_gc.start()
        self.set_interval(0.5, self.idle_gc.tick, name="idle-gc")
        self.push_screen(MainScreen())
        if self.team is None:
            self.load_context()
        else:
            # The roster loads first on its own (it needs only the team); reading the role in
            # parallel would slow the first rows by competing for the interpreter.
            self._context_pending = True
        if self.watch_db:
            self._watch()

    def on_unmount(self) -> None:
        self._stop.set()
        self.idle_gc.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self.idle_gc.saw_input()
            if (isinstance(event, events.Key) and event.key == "escape" and self._access_wanted
                    and isinstance(self.screen, MainScreen)):
                # Typed ahead for the access pane that is still opening: it backs out of that
                # pane, which then never appears, rather than landing on the list beneath.
                self._access_wanted = False
                return
        await super().on_event(event)

    @property
    def main(self) -> MainScreen:
        """The screen with the team's lists."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("the main screen is not mounted")

    @property
    def settled(self) -> bool:
        """True when no load, context read or write is in flight."""
        if self._context_pending or self._ops_pending or self._preparing or self._access_wanted:
            return False
        for screen in self.screen_stack:
            for view in screen.query(TableView):
                if view.pending or view.filling:
                    return False
        return True

    def require_team(self) -> str:
        """The current team, or the store's kind of error saying there is none."""
        if self.team is None:
            raise NotFound(
                f"{self.actor.email} belongs to no team yet: ask a team admin to add you, "
                "or create one with 'teamaccess teams:create NAME'."
            )
        return self.team

    # -- context and live updates ----------------------------------------------------------

    @work(thread=True, exclusive=True, group="context")
    def load_context(self) -> None:
        """Read the actor's teams and role in the current team."""
        self._context_pending = True
        self._context_started = True
        try:
            teams = queries.teams(self.db, self.actor.email)
            team = self.team or (teams[0].name if teams else None)
            rel = queries.relation_to(self.db, self.actor.email, team) if team else None
        except StoreError as err:
            self.post_message(self.Reported(str(err), True, False))
            teams, team, rel = [], self.team, None
        except Exception as err:  # pragma: no cover - a broken database
            self.post_message(self.Reported(f"Could not read: {clean(err)}", True, False))
            teams, team, rel = [], self.team, None
        if not get_current_worker().is_cancelled:
            self.post_message(self.ContextLoaded(teams, team, rel))

    def on_team_access_app_context_loaded(self, message: ContextLoaded) -> None:
        """Show who is acting where; offer only what their role allows."""
        self._context_pending = False
        first = self.team is None and message.team is not None
        self.teams, self.relation = message.teams, message.relation
        if first:
            self.team = message.team
        for bar in self.query_all(HeaderBar):
            bar.redraw()
        if first or not any(v.loaded or v.pending for v in self.main.views()):
            self.main.show_tab(self._front_tab())
        if self._first_context and message.relation is Relation.COLLABORATOR:
            self.main.show_tab("apps")  # the only list a collaborator may see
        self._first_context = False
        self.screen.refresh_bindings()
        if self._access is None and not self._preparing and self.team is not None:
            # The first screen is up: build the access pane now, not when someone is waiting.
            self._preparing = True
            self.set_timer(0.2, self._prepare_access)

    def query_all(self, kind: type[Any]) -> Iterable[Any]:
        """Widgets of a kind on every screen of the stack."""
        for screen in self.screen_stack:
            yield from screen.query(kind)

    def _front_tab(self) -> str:
        try:
            return self.main.query_one("#tabs").active or "roster"  # type: ignore[attr-defined]
        except Exception:
            return "roster"

    @work(thread=True, exclusive=True, group="watch")
    def _watch(self) -> None:
        """Poll the database's change token; post DataChanged when it moves."""
        try:
            last = self.db.change_token()
        except Exception:
            last = None
        while not self._stop.wait(self.poll_interval):
            if get_current_worker().is_cancelled:
                return
            try:
                token = self.db.change_token()
            except Exception:  # a busy or vanished file: try again next time
                continue
            if token != last:
                last = token
                self.post_message(self.DataChanged())

    def on_team_access_app_data_changed(self, _message: DataChanged) -> None:
        self.data_changed()

    def data_changed(self, focus: str | None = None) -> None:
        """Reload the context and what is on screen; the rest reloads when it is shown.

        ``focus``: the key of a row just added or changed here, for the cursor to land on.
        """
        self.load_context()
        main = self.main
        front = main.active_view
        if focus is not None:
            target = self.screen.view if isinstance(self.screen, AccessScreen) else front
            target.land_on(focus)
        for view in main.views():
            if view is front:
                view.reload()
            else:
                view.stale = True
        for screen in self.screen_stack:
            if isinstance(screen, AccessScreen):
                screen.view.reload()

    def roster_loaded(self) -> None:
        """The roster's first load is in (shown or refused): now read the actor's role."""
        if self.relation is None and not self._context_started:
            self.load_context()

    def note_roster_shown(self, rows: int) -> None:
        """Record when the roster first showed rows (for the benchmark)."""
        if self.roster_shown_at is None:
            self.roster_shown_at = time.perf_counter()
            self.post_message(self.RosterShown(self.roster_shown_at - self.started_at, rows))

    # -- doing things ------------------------------------------------------------------------

    def report(self, message: str, *, error: bool = False) -> None:
        """Tell the user an outcome in one line (user data shown literally)."""
        line = clean(in_dashboard_words(message) if error else message)
        self.last_message = line
        if error:
            self.last_error = line
        self.notify(line, title="Refused" if error else "", severity="error" if error else "information",
                    markup=False, timeout=8 if error else 4)

    def on_team_access_app_reported(self, message: Reported) -> None:
        if message.changed:
            self._ops_pending = max(0, self._ops_pending - 1)
        self.report(message.text, error=message.error)
        if message.changed:  # a refusal often means the screen was behind: catch up too
            self.data_changed()

    def run_op(self, op: Callable[[], T], describe: Callable[[T], str]) -> None:
        """Run one store operation in a worker; say what happened, or the store's reason."""
        self._ops_pending += 1
        self._run_op(op, describe)

    def confirm_op(self, question: Any, body: Any, yes: str, op: Callable[[], T],
                   describe: Callable[[T], str]) -> None:
        """Ask first (y/n/escape); only on yes run ``op`` as :meth:`run_op` does."""

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.run_op(op, describe)

        self.push_screen(ConfirmDialog(question, body, yes=yes), answered)

    @work(thread=True, group="op")
    def _run_op(self, op: Callable[[], T], describe: Callable[[T], str]) -> None:
        try:
            result = op()
        except StoreError as err:
            self.post_message(self.Reported(str(err), True, True))
        except Exception as err:
            self.post_message(self.Reported(f"Unexpected error: {clean(err)}", True, True))
        else:
            self.post_message(self.Reported(describe(result), False, True))

    def fetch_then(self, read: Callable[[], T], then: Callable[[T], Any]) -> None:
        """Read in a worker, then continue on the UI thread (or show the store's reason)."""
        self._ops_pending += 1
        self._fetch_then(read, then)

    @work(thread=True, group="fetch")
    def _fetch_then(self, read: Callable[[], T], then: Callable[[T], Any]) -> None:
        try:
            result = read()
        except StoreError as err:
            self.call_from_thread(self._fetched, None, str(err))
        except Exception as err:
            self.call_from_thread(self._fetched, None, f"Unexpected error: {clean(err)}")
        else:
            self.call_from_thread(self._fetched, partial(then, result), None)

    def _fetched(self, then: Callable[[], Any] | None, error: str | None) -> None:
        self._ops_pending = max(0, self._ops_pending - 1)
        if error is not None:
            self.report(error, error=True)
        elif then is not None:
            then()

    def open_access(self, app_name: str) -> None:
        """Open one app's access pane (in the one access screen the dashboard keeps).

        The pane is filled before it is shown: it appears once its first rows (or the store's
        refusal) are in, or after :attr:`ACCESS_WAIT` seconds with whatever it has, so that
        Textual draws it once, with rows, rather than empty and then again.
        """
        screen = self.access_screen()
        showing = screen in self.screen_stack
        while showing and self.screen is not screen:  # already open: show this app there
            self.pop_screen()
        screen.show_app(app_name)
        if showing:
            return
        self._access_wanted = True
        if screen.ready:
            self.set_timer(self.ACCESS_WAIT, self.show_access)
        else:
            self.show_access()  # being built just now: show it as soon as it is

    @property
    def access_opening(self) -> bool:
        """An access pane is being filled and will be shown (see :meth:`open_access`)."""
        return self._access_wanted

    def show_access(self) -> None:
        """Push the access screen if an open is waiting for it (see :meth:`open_access`)."""
        if self._access_wanted and self._access is not None:
            self._access_wanted = False
            if self._access not in self.screen_stack:
                self.push_screen(self._access)

    def access_screen(self) -> AccessScreen:
        """The access screen, built (composed, styled) the first time it is asked for."""
        if self._access is None:
            self._access = AccessScreen()
            self.install_screen(self._access, "access")
            # Start it off the stack, so it is composed and styled before anyone opens it.
            self._register(self, self._access)
        return self._access

    def _prepare_access(self) -> None:
        """Build the access screen while nobody is waiting for it (after the first screen)."""
        self._preparing = False
        if self.is_running and self.team is not None:
            self.access_screen()

    # -- actions -----------------------------------------------------------------------------

    def action_show_tab(self, tab_id: str) -> None:
        """Bring one of the team's lists to the front (from any screen)."""
        self._access_wanted = False  # a pane still opening was left before it appeared
        while len(self.screen_stack) > 1 and not isinstance(self.screen, MainScreen):
            self.pop_screen()
        self.main.show_tab(tab_id)

    def action_switch_team(self) -> None:
        """Choose another of your teams."""

        def chosen(name: str | None) -> None:
            if name and name != self.team:
                self.team = name
                self.relation = None
                while not isinstance(self.screen, MainScreen):
                    self.pop_screen()
                for view in self.main.views():
                    view.stale = True
                for bar in self.query_all(HeaderBar):
                    bar.redraw()
                self.load_context()
                self.main.active_view.reload()
                self.report(f"Switched to {name}.")

        self.fetch_then(
            lambda: queries.teams(self.db, self.actor.email),
            lambda teams: self.push_screen(
                TeamSwitcher([(t.name, t.role) for t in teams], self.team), chosen
            ),
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_team":
            return len(self.teams) > 1
        return True

    def on_key(self, event: events.Key) -> None:
        """``t`` with one team says so rather than nothing (a typed t never reaches here)."""
        if event.key == "t" and len(self.teams) <= 1 and self.relation is not None:
            event.stop()
            self.report(f"You belong to one team only ({self.team}): nothing to switch to.",
                        error=True)

    def action_help(self) -> None:
        """Show the keys that work here."""
        if isinstance(self.screen, HelpScreen):
            return
        keys = []
        seen = set()
        for _key, active in self.screen.active_bindings.items():
            b = active.binding
            if not b.description or b.id is None or b.id in seen or not active.enabled:
                continue
            seen.add(b.id)
            keys.append((self.get_key_display(b), b.tooltip or b.description))
        keys.extend([("j / k", "Down / up (arrows too)"), ("enter", "Open the selected row"),
                     ("ctrl+p", "Every action you may take here, by name"),
                     ("escape", "Back out of a dialog, a filter or a pane")])
        notes = [
            "Only the actions your role allows are offered; the store refuses the rest and says why.",
            f"Badges: '{'✗ no MFA'}' marks users without MFA; 'locked' marks locked apps.",
        ]
        self.push_screen(HelpScreen("Keys", keys, notes))

    def palette_commands(self, screen: Screen) -> list[tuple[str, str, Callable[[], Any]]]:
        """What the command palette offers: the actions enabled here, then the screens."""
        out: list[tuple[str, str, Callable[[], Any]]] = []
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            b = active.binding
            if not b.description or b.id is None or b.id in seen or not active.enabled:
                continue
            if b.id in ("app.help",):
                continue
            seen.add(b.id)
            title = b.tooltip or b.description
            node = active.node
            out.append((title, f"key: {self.get_key_display(b)}",
                        partial(node.run_action, b.action)))
        for tab_id, title, _view in TABS:
            if f"app.{tab_id}" not in seen:
                out.append((f"Go to {title[2:]}", f"key: {title[0]}",
                            partial(self.action_show_tab, tab_id)))
        out.append(("Help: keys", "key: ? or F1", self.action_help))
        return out

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from ()


