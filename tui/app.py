"""The Textual dashboard: team roster, apps, access panes, audit, resources and billing.

Entry point (used by the CLI)::

    TeamAccessApp(db, actor, team=None).run()

Every read and write runs in a thread worker that posts a message back, so the screen never
freezes; a watcher thread waits on a store watcher (``db.watcher``: PostgreSQL announces changes,
SQLite's constant-cost change token is polled about twice a second) and reloads what is on screen
when anyone (another dashboard, the CLI) commits a change to the team shown.

For benchmarks and tests, driven headless: ``app.roster_shown_at`` is the
``time.perf_counter()`` moment the roster first showed rows (``None`` until then), and the app
posts :class:`TeamAccessApp.RosterShown` at that moment; ``app.settled`` is True when no load or
write is in flight.

The access pane is one screen, kept for the whole session and refilled for each app it shows;
it is built a moment after the first screen is up, so that opening it does not wait for Textual
to compose and style a screen.

Full garbage collections wait for a second without input (why: :mod:`teamaccess.tui.idle_gc`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from teamaccess.store import queries
from teamaccess.store.db import Database
from teamaccess.store.errors import NotFound, StoreError
from teamaccess.store.ops import Actor
from teamaccess.store.policy import Relation
from teamaccess.store.watch import Watcher
from teamaccess.tui.errorlog import unexpected
from teamaccess.tui.idle_gc import IdleCollector
from teamaccess.tui.screens.access import AccessScreen
from teamaccess.tui.screens.base import TableView
from teamaccess.tui.screens.header import HeaderBar
from teamaccess.tui.screens.keys import KeysScreen
from teamaccess.tui.screens.main import TABS, MainScreen
from teamaccess.tui.screens.requests import RequestsScreen
from teamaccess.tui.textual_private import compose_off_stack
from teamaccess.tui.widgets.dialogs import ConfirmDialog, HelpScreen, TeamSwitcher
from teamaccess.tui.widgets.safe import clean
from teamaccess.tui.widgets.words import about_you, in_dashboard_words
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.worker import get_current_worker

T = TypeVar("T")

_TRUECOLOR = ("truecolor", "24bit")

#: The characters Textual makes of escape followed at once by a digit (macOS option+digit).
_OPTION_DIGITS = {"¡": "1", "™": "2", "£": "3", "¢": "4", "∞": "5", "§": "6", "¶": "7",
                  "•": "8", "ª": "9", "º": "0"}


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


class KeysPalette(CommandPalette):
    """Textual's command palette with a footer of its own keys (escape closes it, the arrows
    choose), over the footer of the screen it was opened on, which would mislead here."""

    BINDINGS = [
        Binding("escape", "escape", "Close", id="palette.close"),
        Binding("enter", "run_chosen", "Run", id="palette.run", show=True),
        Binding("down", "cursor_down", "Next", id="palette.next", key_display="↓", show=True),
        Binding("up", "command_list('cursor_up')", "Previous", id="palette.previous",
                key_display="↑", show=True),
    ]

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Footer(compact=True)

    async def action_run_chosen(self) -> None:
        """Enter runs the command under the cursor (the palette's own input does it too)."""
        await self.query_one(Input).action_submit()


class TeamAccessApp(App[None]):
    """The teamaccess dashboard for one acting account."""

    CSS_PATH = "app.tcss"
    #: Seconds an opening access pane waits for its first rows before it shows without them.
    ACCESS_WAIT = 0.1
    #: Seconds keys typed ahead wait at most for a tab, pane or dialog to arrive.
    KEY_HOLD_LIMIT = 1.5
    #: Seconds an outcome, and a refusal, stays on the footer's line.
    OUTCOME_SECONDS = 2.5
    REFUSAL_SECONDS = 5.0
    #: Seconds between looks at the clock for temporary grants' time left (see AccessView.tick).
    CLOCK_TICK = 1.0
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
        Binding("ctrl+k", "keys", "Keys", id="app.keys", show=False,
                tooltip="Your SSH keys (for teamaccess serve)"),
        Binding("r", "requests", "Requests", id="app.requests", show=False,
                tooltip="Access requests: approve (y) or deny (n), and your own requests' state"),
        Binding("question_mark,f1", "help", "Help", id="app.help", key_display="?",
                tooltip="The keys you can use here"),
    ]

    class DataChanged(Message):
        """Someone committed a change to the database."""

    class ContextLoaded(Message):
        """The actor's teams and relation to the current team, freshly read."""

        def __init__(self, teams: list[queries.TeamRow], team: str | None,
                     relation: Relation | None, waiting: int = 0,
                     deadline: datetime | None = None) -> None:
            super().__init__()
            self.teams = teams
            self.team = team
            self.relation = relation
            #: pending access requests in the team the actor may decide
            self.waiting = waiting
            #: when a grant of the team next ends or a request lapses (queries.next_deadline)
            self.deadline = deadline

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
        #: when time alone next changes what this team's dashboard shows (see _time_passes)
        self._deadline: datetime | None = None
        self._ages_read_at = db.now()
        # Keys typed while the last one is still being handled (see on_event).
        self._held_keys: list[events.Key] = []
        self._key_in_flight = False
        self._key_sent_at = 0.0
        self._drain_scheduled = False
        # Where the keyboard was on each screen before the terminal became too small.
        self._focus_before_small: list[tuple[Screen, Any]] | None = None
        self.watcher: Watcher | None = None
        self.idle_gc = IdleCollector()
        # Over SSH every frame of an animation is bytes on the wire: none at all.
        self.animation_level = "none"
        wanted = pick_theme(theme)
        self.theme = wanted if wanted in self.available_themes else "textual-dark"

    # -- life --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.idle_gc.start()
        self.set_interval(0.5, self.idle_gc.tick, name="idle-gc")
        self.set_interval(self.CLOCK_TICK, self._time_passes, name="time-passes")
        if self.watch_db:
            # Before the first load: a change committed after this moment is never missed.
            try:
                self.watcher = self.db.watcher(self._followed(), self.actor.email,
                                               interval=self.poll_interval)
            except Exception as err:  # a database we can read but not watch: say so, go on
                self.report(f"Changes made elsewhere won't show until you reopen: {clean(err)}",
                            error=True)
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
        if self.watcher is not None:
            self.watcher.close()
        self.idle_gc.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self.idle_gc.saw_input()
        if isinstance(event, events.Key) and not event.is_forwarded:
            typed = self._split_escape(event)
            if typed is not None:  # escape and a digit, typed fast: both keys, in order
                for key in typed:
                    await self.on_event(key)
                return
            # One key at a time: the next waits until this one has been handled all the way up
            # and what it started (a tab, a pane, a dialog) has settled, so it reaches the screen
            # it was typed for (tmux delivers "3 2 Enter Escape 1" in one read).
            if self._held_keys or self._key_pending():
                self._held_keys.append(event)
                self._schedule_drain()
                return
            await self._dispatch_key(event)
            return
        await super().on_event(event)

    def _split_escape(self, event: events.Key) -> list[events.Key] | None:
        """Escape then a digit within ``ESCDELAY`` (100 ms) reach Textual as one macOS option
        character ("escape 1" as "¡"): outside a text box, where such a character means
        nothing here, they are the two keys typed."""
        digit = _OPTION_DIGITS.get(event.character or "")
        if digit is None or isinstance(self.focused, Input):
            return None
        return [events.Key("escape", "\x1b"), events.Key(digit, digit)]

    async def _dispatch_key(self, event: events.Key) -> None:
        """Hand one typed key to Textual, and hold the next until this one went all the way."""
        if (event.key == "escape" and self._access_wanted
                and isinstance(self.screen, MainScreen)):
            # Typed ahead for the access pane that is still opening: it backs out of that
            # pane, which then never appears, rather than landing on the list beneath.
            self._access_wanted = False
            return
        target = self.focused or self.screen
        self._key_in_flight = True
        self._key_sent_at = time.monotonic()
        await super().on_event(event)
        # A marker follows the key up the chain it bubbles along (each queue is first in,
        # first out), so it reaches the app only after the key was handled or stopped.
        chain = [node for node in target.ancestors_with_self if node is not self]
        self._follow_key(chain)

    def _follow_key(self, chain: list[Any]) -> None:
        if not chain:
            self.call_later(self._key_done)
            return
        node, rest = chain[0], chain[1:]
        if not node.call_later(self._follow_key, rest):
            self.call_later(self._key_done)  # the node went away meanwhile

    def _key_pending(self) -> bool:
        """The last key is still on its way up (for at most the hold limit)."""
        return (self._key_in_flight
                and time.monotonic() - self._key_sent_at < self.KEY_HOLD_LIMIT)

    def _key_done(self) -> None:
        self._key_in_flight = False
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._held_keys and not self._drain_scheduled:
            self._drain_scheduled = True
            # After a refresh: a focus or a mount the last key started is done by then.
            self.call_after_refresh(self._drain_keys)

    def switching(self) -> bool:
        """A tab, pane or dialog is still arriving: keys typed now wait for it."""
        if self._access_wanted:
            return True
        screen = self.screen
        focused = self.focused
        if focused is not None and focused.screen is not screen:
            return True  # the keyboard has not moved to the new screen yet
        if isinstance(screen, MainScreen):
            try:
                view = screen.active_view
            except NoMatches:  # still composing its tabs
                return True
            if not view.is_mounted or (view.pending and not view.loaded):
                return True  # the list being switched to has no rows yet
        if isinstance(screen, RequestsScreen):
            # "r y" typed in one go: y waits for the rows it is meant for.
            listed = next(iter(screen.query(TableView)), None)
            return listed is None or not listed.loaded
        return False

    async def _drain_keys(self) -> None:
        self._drain_scheduled = False
        if not self._held_keys:
            return
        # What a key started may take a while (a slow read); past a limit the keys go anyway
        # rather than be lost.
        if self._key_pending() or (
                self.switching() and time.monotonic() - self._key_sent_at < self.KEY_HOLD_LIMIT):
            self._drain_scheduled = True
            self.set_timer(0.02, self._drain_keys)
            return
        await self._dispatch_key(self._held_keys.pop(0))
        self._schedule_drain()

    def on_resize(self, event: events.Resize) -> None:
        """Below 80x24 every screen hides its widgets (see TooSmall), and Textual moves the
        keyboard off them; remember where it was on each screen and put it back once the
        terminal is large enough again."""
        small = event.size.width < 80 or event.size.height < 24
        if small and self._focus_before_small is None:
            self._focus_before_small = [(s, s.focused) for s in self.screen_stack]
        elif not small and self._focus_before_small is not None:
            remembered, self._focus_before_small = self._focus_before_small, None
            # After the screens have taken their new size classes (Textual resizes them on a
            # timer) and shown their widgets again.
            self.set_timer(0.05, partial(self._refocus, remembered))

    def _refocus(self, remembered: list[tuple[Screen, Any]]) -> None:
        for screen, widget in remembered:
            if (widget is not None and widget.is_attached and screen in self.screen_stack
                    and widget.screen is screen):
                screen.set_focus(widget)
        self.screen.refresh_bindings()

    @property
    def main(self) -> MainScreen:
        """The screen with the team's lists."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("the main screen is not mounted")

    def _showing_main(self) -> bool:
        """False while quitting, once the screens are gone but messages still arrive."""
        return any(isinstance(screen, MainScreen) for screen in self.screen_stack)

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
            read_at = self.db.now()  # the deadline is sought from here: see next_deadline
            teams = queries.teams(self.db, self.actor.email)
            team = self.team or (teams[0].name if teams else None)
            rel = queries.relation_to(self.db, self.actor.email, team) if team else None
            waiting = self._waiting(team)
            deadline = queries.next_deadline(self.db, team, after=read_at) if team else None
        except StoreError as err:
            self.post_message(self.Reported(str(err), True, False))
            teams, team, rel, waiting, deadline = [], self.team, None, 0, None
        except Exception as err:  # a broken database must not take the dashboard down
            self.post_message(self.Reported(unexpected(err, "reading your teams"), True, False))
            teams, team, rel, waiting, deadline = [], self.team, None, 0, None
        if not get_current_worker().is_cancelled:
            self.post_message(self.ContextLoaded(teams, team, rel, waiting, deadline))

    def _waiting(self, team: str | None) -> int:
        """How many pending access requests in ``team`` the actor may decide (for the Apps
        tab's title); a store that refuses to say counts as none."""
        if team is None:
            return 0
        try:
            return queries.pending_to_decide(self.db, self.actor.email, team)
        except StoreError:
            return 0

    def on_team_access_app_context_loaded(self, message: ContextLoaded) -> None:
        """Show who is acting where; offer only what their role allows."""
        self._context_pending = False
        if not self._showing_main():
            return  # quitting: a read that finished as the screens went away
        first = self.team is None and message.team is not None
        self.teams, self.relation = message.teams, message.relation
        self._deadline = message.deadline
        self.main.show_waiting(message.waiting)
        if first:
            self.team = message.team
            if self.watcher is not None:
                self.watcher.follow(self._followed())
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
        except NoMatches:  # the main screen isn't composed yet
            return "roster"

    def _followed(self) -> list[str] | None:
        """The teams whose changes should reload this dashboard (None: any, until one is known)."""
        return [self.team] if self.team is not None else None

    @work(thread=True, exclusive=True, group="watch")
    def _watch(self) -> None:
        """Wait on the store's watcher; post DataChanged when a change concerns this team."""
        watcher = self.watcher
        if watcher is None:
            return
        while not self._stop.is_set():
            if get_current_worker().is_cancelled:
                return
            if watcher.wait(timeout=1.0) and not self._stop.is_set():
                self.post_message(self.DataChanged())

    def on_team_access_app_data_changed(self, _message: DataChanged) -> None:
        self.data_changed()

    def _time_passes(self) -> None:
        """Expiry and lapse are decided at read time and write nothing, so no change is
        announced when a grant ends or a request lapses: at that moment (the store's
        next_deadline, by the database's clock) reload as if one had been. Open request lists
        are read again each minute so their ages move."""
        if self._stop.is_set() or not self._showing_main():
            return
        now = self.db.now()
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            self.data_changed()
            self._ages_read_at = now
        elif now - self._ages_read_at >= timedelta(minutes=1):
            self._ages_read_at = now
            for screen in self.screen_stack:
                if isinstance(screen, RequestsScreen):
                    screen.view.reload()

    def data_changed(self, focus: str | None = None) -> None:
        """Reload the context and what is on screen; the rest reloads when it is shown.

        ``focus``: the key of a row just added or changed here, for the cursor to land on.
        """
        if not self._showing_main():
            return  # quitting: a change announced as the screens went away
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
            if isinstance(screen, AccessScreen | KeysScreen | RequestsScreen):
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
        line = clean(about_you(in_dashboard_words(message), self.actor.email) if error
                     else message)
        if line.startswith("cannot "):  # the store's reason opens a sentence here
            line = "C" + line[1:]
        if line.endswith(".."):  # a reason that ended in a full stop, given one more
            line = line[:-1]
        self.last_message = line
        if error:
            self.last_error = line
        # One at a time, and short-lived: it sits over the footer's keys (see app.tcss).
        self.clear_notifications()
        self.notify(line, severity="error" if error else "information",
                    markup=False, timeout=self.REFUSAL_SECONDS if error else self.OUTCOME_SECONDS)

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
        except Exception as err:  # shown as one line, never a traceback on the dashboard
            self.post_message(self.Reported(unexpected(err, "changing the data"), True, True))
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
        except Exception as err:  # shown as one line, never a traceback on the dashboard
            self.call_from_thread(self._fetched, None, unexpected(err, "reading the data"))
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
            compose_off_stack(self, self._access)
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

    def action_command_palette(self) -> None:
        """The command palette, with its own keys in its footer."""
        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(KeysPalette(id="--command-palette"))

    def action_keys(self) -> None:
        """Show your own SSH keys (from any screen: it opens on top)."""
        if not isinstance(self.screen, KeysScreen):
            self.push_screen(KeysScreen())

    def action_requests(self) -> None:
        """Show the access requests: of the app whose pane is open, else of the team."""
        screen = self.screen
        if isinstance(screen, RequestsScreen):
            return
        if isinstance(screen, AccessScreen):
            self.push_screen(RequestsScreen(screen.app_name))
        elif self.team is None:
            self.report("You belong to no team yet: no requests to show.", error=True)
        else:
            self.push_screen(RequestsScreen())

    def action_switch_team(self) -> None:
        """Choose another of your teams."""

        def chosen(name: str | None) -> None:
            if name and name != self.team:
                self.team = name
                self.relation = None
                if self.watcher is not None:
                    self.watcher.follow(self._followed())
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
        keys.extend([("j / k", "Down / up (arrows too)"),
                     ("g / G", "First / last row of the whole list (home / end too)"),
                     ("pgup / pgdn", "A page up / down"),
                     ("enter", "Open the selected row"),
                     ("ctrl+p", "Every action you may take here, by name"),
                     ("escape", "Back out of a dialog, a filter or a pane")])
        notes = [
            "Only the actions your role allows are offered; the store refuses the rest and says why.",
            f"Badges: '{'✗ no MFA'}' marks users without MFA; 'locked' marks locked apps.",
            "Left (access pane): the time until a temporary grant ends; Req (Apps): access "
            "requests waiting for your decision (r lists them).",
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


