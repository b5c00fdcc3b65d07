"""The shared shape of every list in the dashboard: a filter, a windowed live table, a status line."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from teamaccess.store.errors import StoreError
from teamaccess.tui.errorlog import log_quietly, unexpected
from teamaccess.tui.widgets.dialogs import field
from teamaccess.tui.widgets.safe import clean, text
from teamaccess.tui.widgets.table import LiveTable
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import get_current_worker

if TYPE_CHECKING:
    from teamaccess.tui.app import TeamAccessApp


@functools.cache
def _binding_actions(view_class: type) -> tuple[str, ...]:
    """The actions of every binding a view class declares or inherits (public BINDINGS only)."""
    return tuple(
        binding.action
        for cls in view_class.__mro__
        for binding in Binding.make_bindings(cls.__dict__.get("BINDINGS", ()))
    )


def cut(value: object, width: int) -> Text:
    """User data as text of at most ``width`` cells, ending in an ellipsis when it was longer
    (a long cell must not push the columns after it off the screen; enter shows it in full)."""
    shown = text(value)
    if shown.cell_len > width:
        shown.truncate(width, overflow="ellipsis")
    return shown


class TableView(Vertical):
    """A filterable list loaded from the store in a thread worker and shown by row key.

    Only the first ``WINDOW`` matching rows go into the DataTable (with a "showing N of M"
    line), so a 10,000-user team costs a keystroke no more than a small one does; the window
    grows by as much again when the cursor nears its end, so j/k still reach every row.
    """

    WINDOW = 60
    COLUMNS: tuple[tuple[str, str], ...] = ()
    #: Free-text columns that may be cut (with an ellipsis) so that every column fits the
    #: width: column -> (the most it shows, the least it is cut to). The widest is cut first;
    #: roles, permissions, badges and dates are never listed here.
    SQUEEZE: dict[str, tuple[int, int]] = {}
    #: SQUEEZE columns that name someone or something (an email): cut only once the others
    #: are down to their least.
    SQUEEZE_LAST: tuple[str, ...] = ()
    noun = "rows"

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="view.filter", tooltip="Filter as you type"),
        Binding("escape", "unfilter", "Clear filter", id="view.unfilter", show=False,
                tooltip="Clear the filter"),
    ]

    class Loaded(Message):
        """What a load worker found: the items, or the store's reason for refusing.

        ``partial`` marks a first page only: the rest follows in another Loaded.
        """

        def __init__(self, items: Any, error: str | None, generation: int,
                     partial: bool = False) -> None:
            super().__init__()
            self.items = items
            self.error = error
            self.generation = generation
            self.partial = partial

    class Indexed(Message):
        """The filter's search text for each loaded item, built after the rows were shown."""

        def __init__(self, haystack: list[tuple[str, Any]], generation: int) -> None:
            super().__init__()
            self.haystack = haystack
            self.generation = generation

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, classes="table-view")
        # Set once the first page is on screen: the full read waits for it rather than compete.
        self._first_shown = threading.Event()
        self._generation = 0
        self._forget()

    def _forget(self) -> None:
        """The state of a view that has shown nothing yet (at start, and on :meth:`reset`)."""
        self.items: list[Any] = []
        self.refusal: str | None = None
        self.filter_text = ""
        self.loaded = False
        self.pending = False
        # A first page is shown and the rest is still being read (see ``fetch_first``).
        self.filling = False
        self.partial = False
        self.stale = True
        self._haystack: list[tuple[str, Any]] | None = []
        self._shown: dict[str, Any] = {}
        # The last search and its hits: typing on narrows those hits instead of every item.
        self._last_search: tuple[str, list[tuple[str, Any]]] | None = None
        # Cells built for each shown key since the last load (building Text is the slow part).
        self._cells: dict[str, tuple[Any, Sequence[Text | str]]] = {}
        self.window = self.WINDOW
        self._found = 0
        # The footer's keys are decided afresh for what loads next.
        self._keys_signature: Any = None
        # A row just added or changed here: the cursor goes to it once the next load shows it.
        self._land_on: str | None = None
        # How wide each SQUEEZE column may be now (empty: as wide as its most).
        self._room: dict[str, int] = {}

    @property
    def dashboard(self) -> TeamAccessApp:
        """The dashboard app, typed."""
        return self.app  # type: ignore[return-value]

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", classes="refusal")
        yield field("type to filter (enter: back to the list, escape: clear)",
                    id=f"{self.id}-filter").set_classes("filter")
        yield LiveTable(id=f"{self.id}-table")
        yield Static("", classes="status")

    def on_mount(self) -> None:
        self.table.reset([(key, Text(label)) for key, label in self.COLUMNS])

    def reset(self) -> None:
        """Forget everything shown (for a view that is reused for other data): no rows, no
        filter, no refusal; a load still in flight is ignored when it arrives."""
        self._generation += 1
        self._first_shown.clear()
        self._forget()
        box = self.filter_box
        with box.prevent(Input.Changed):
            box.value = ""
        box.remove_class("-shown")
        self.remove_class("-refused")
        self.query_one(".refusal", Static).update("")
        self.query_one(".status", Static).update("")
        self.table.reset([(key, Text(label)) for key, label in self.COLUMNS])

    @property
    def table(self) -> LiveTable:
        """This view's table."""
        return self.query_one(LiveTable)

    @property
    def filter_box(self) -> Input:
        """This view's filter input."""
        return self.query_one(".filter", Input)

    def focus_list(self) -> None:
        """Put the keyboard on the table (or the filter, when only it can take it)."""
        if self.refusal is None:
            self.table.focus()
        else:
            self.focus()

    # -- loading -----------------------------------------------------------------------------

    def fetch(self) -> Any:
        """Read this view's items from the store (runs in a worker thread)."""
        raise NotImplementedError

    def fetch_first(self) -> Any | None:
        """A cheap first page of what ``fetch`` returns, or None when there is none.

        Read only on a view's first load, so that its first rows cost the same on a team of
        100,000 as on one of 100; ``fetch`` follows at once for the rest.
        """
        return None

    def reload(self) -> None:
        """Read the items again in a worker; the table follows without losing cursor or filter."""
        self.pending = True
        self.filling = True
        self.stale = False
        self._generation += 1
        self._load(self._generation, first=not self.loaded)

    @work(thread=True, exclusive=True, group="load")
    def _load(self, generation: int, first: bool = False) -> None:
        worker = get_current_worker()
        if first:
            try:
                page = self.fetch_first()
            except Exception as err:  # noqa: BLE001 - the full read below says what is wrong
                if not isinstance(err, StoreError):
                    log_quietly(err, "reading the first rows")
                page = None
            if page is not None and not worker.is_cancelled:
                self.post_message(self.Loaded(page, None, generation, partial=True))
                self._first_shown.wait(1.0)
        try:
            items, error = self.fetch(), None
        except StoreError as err:
            items, error = None, str(err)
        except Exception as err:  # a broken database must not take the screen down
            items, error = None, unexpected(err, "reading the list")
        if worker.is_cancelled:
            return
        self.post_message(self.Loaded(items, error, generation))
        if error is None:
            # Show the rows first; the search text of 10,000 rows follows, off the UI thread.
            haystack = [(self.haystack(item), item) for item in self.listed(items)]
            if not worker.is_cancelled:
                self.post_message(self.Indexed(haystack, generation))

    def listed(self, items: Any) -> list[Any]:
        """The rows within what ``fetch`` returned (a view may return extra data too)."""
        return list(items)

    def on_table_view_indexed(self, message: Indexed) -> None:
        """Take the search text, unless a newer load has replaced the items since."""
        message.stop()
        if message.generation == self._generation and self._haystack is None:
            self._haystack = message.haystack

    def on_table_view_loaded(self, message: Loaded) -> None:
        """Take the new items and show them through the current filter."""
        message.stop()
        if message.generation != self._generation:
            return  # a newer load is on its way
        self.pending = False
        self.filling = message.partial
        self.partial = message.partial
        self.loaded = True
        self.refusal = message.error
        if message.partial and self.screen.is_current:
            # The rest is read once this page is drawn (a list being filled before its screen
            # is shown calls first_page_drawn when it is).
            self.first_page_drawn()
        if message.error is None:
            self.accept(message.items)
            # The search text follows in Indexed (built on demand if needed sooner).
            self._haystack = None
        else:
            self.items, self._haystack = [], []
        self._last_search = None
        self._cells = {}
        self.set_class(message.error is not None, "-refused")
        refusal = self.query_one(".refusal", Static)
        refusal.update(text(message.error or ""))
        self.refilter()
        if self._land_on is not None and not message.partial and message.error is None:
            self._landed()
        if (self.app.focused is None and self.screen.is_current
                and getattr(self.screen, "active_view", self) is self):
            # A refusal hid the table and took the keyboard with it (the actor lost their role
            # for a moment): now that rows are back, give it back, or no key would work.
            self.call_after_refresh(self.focus_list)
        self.after_load()
        self.refresh_keys()

    def land_on(self, key: str) -> None:
        """Put the cursor on the row with ``key`` once the next load shows it."""
        self._land_on = key

    def _landed(self) -> None:
        key, self._land_on = self._land_on, None
        found = self.matching()
        index = next((i for i, item in enumerate(found) if self.key(item) == key), None)
        if index is None:
            return
        if index >= self.window:  # beyond the window: grow it to reach the row
            self.window = (index // self.WINDOW + 1) * self.WINDOW
            self.refilter()
        self.table.move_cursor(row=self.table.get_row_index(key), animate=False)

    def first_page_drawn(self) -> None:
        """Let the read of the rest start, after the next refresh: it competes for the
        interpreter with drawing, so it waits until the first page is on screen."""
        self.call_after_refresh(self._first_shown.set)

    def refresh_keys(self) -> None:
        """Redraw the footer only when what it offers changed (a footer rebuild is not cheap)."""
        actions = _binding_actions(type(self))
        signature = (self.dashboard.relation, tuple(self.check_action(a, ()) for a in actions))
        if signature != self._keys_signature:
            self._keys_signature = signature
            self.screen.refresh_bindings()

    def accept(self, items: Any) -> None:
        """Keep the loaded items (a view may unpack extra data here)."""
        self.items = list(items)

    def after_load(self) -> None:
        """Hook run after each load has been shown."""

    # -- rows ------------------------------------------------------------------------------

    def key(self, item: Any) -> str:
        """The row key of an item."""
        raise NotImplementedError

    def cells(self, item: Any) -> Sequence[Text | str]:
        """The cells of an item, as Text (never markup strings holding user data)."""
        raise NotImplementedError

    def haystack(self, item: Any) -> str:
        """The lower-cased text the filter searches in."""
        return " ".join(clean(c).lower() for c in self.cells_plain(item))

    def cells_plain(self, item: Any) -> Iterable[str]:
        """The plain text of each cell."""
        for cell in self.cells(item):
            yield cell.plain if isinstance(cell, Text) else str(cell)

    def narrow(self, items: list[Any]) -> list[Any]:
        """Extra filtering beyond the text filter (e.g. "no MFA only")."""
        return items

    def order(self, items: list[Any]) -> list[Any]:
        """The order to show the items in."""
        return items

    def matching(self) -> list[Any]:
        """The items that pass the filter, in display order."""
        needle = " ".join(self.filter_text.lower().split())
        if not needle:
            self._last_search = None
            return self.order(self.narrow(list(self.items)))
        if self._haystack is None:
            self._haystack = [(self.haystack(item), item) for item in self.items]
        pool = self._haystack
        if self._last_search is not None and needle.startswith(self._last_search[0]):
            pool = self._last_search[1]  # every hit of the longer filter was a hit before
        words = needle.split()
        if len(words) == 1:
            word = words[0]
            hits = [pair for pair in pool if word in pair[0]]
        else:
            hits = [pair for pair in pool if all(w in pair[0] for w in words)]
        self._last_search = (needle, hits)
        return self.order(self.narrow([item for _hay, item in hits]))

    def row_cells(self, item: Any) -> Sequence[Text | str]:
        """The cells of an item, built once per load."""
        key = self.key(item)
        cached = self._cells.get(key)
        if cached is None or cached[0] is not item:
            cached = (item, self.cells(item))
            self._cells[key] = cached
        return cached[1]

    def refilter(self) -> None:
        """Show the first WINDOW matching items and the status line."""
        found = self.matching()
        self._found = len(found)
        shown = found[: self.window]
        self._shown = {self.key(item): item for item in shown}
        keep = None
        if self._fit():
            # Textual's columns only ever widen: narrower cells need the columns made afresh.
            keep = self.table.cursor_key
            self._cells = {}
            self.table.reset([(key, self.label(key, label)) for key, label in self.COLUMNS])
        self.table.show_rows([(self.key(item), self.row_cells(item)) for item in shown])
        if keep is not None and keep in self._shown:
            self.table.move_cursor(row=self.table.get_row_index(keep), animate=False)
        self.query_one(".status", Static).update(self.status(len(shown), len(found)))
        self.after_refilter()

    def after_refilter(self) -> None:
        """Hook run after the table was updated."""

    # -- fitting the width -------------------------------------------------------------------

    def room(self, column: str) -> int:
        """How many cells a SQUEEZE column's values may take now."""
        return self._room.get(column, self.SQUEEZE[column][0])

    def label(self, column: str, label: str) -> Text:
        """A column's label, cut to the column's room like its cells."""
        if column in self._room:
            return cut(label, self._room[column])
        return Text(label)

    def squeeze_text(self, item: Any) -> dict[str, str]:
        """The uncut text of each SQUEEZE column of an item (to measure what it needs)."""
        return {}

    def _fit(self) -> bool:
        """Decide how wide each SQUEEZE column may be so that the last column is on screen;
        True when that changed (the rows must then be built again)."""
        if not self.SQUEEZE or not self.table.is_mounted:
            return False
        table = self.table
        available = table.scrollable_content_region.width
        if available <= 0:
            return False
        pad = 2 * table.cell_padding
        labels = dict(self.COLUMNS)
        # The other columns as the rows about to be shown need them (the table may still hold
        # the last rows, or none).
        keys = [key for key, _label in self.COLUMNS]
        widths = {key: cell_len(label) for key, label in self.COLUMNS if key not in self.SQUEEZE}
        for item in self._shown.values():
            for key, cell in zip(keys, self.row_cells(item), strict=False):
                if key in widths:
                    size = cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))
                    widths[key] = max(widths[key], size)
        fixed = sum(widths.values()) + pad * len(widths)
        want = {c: min(most, cell_len(labels[c])) for c, (most, _least) in self.SQUEEZE.items()}
        for item in self._shown.values():
            for c, value in self.squeeze_text(item).items():
                if want[c] < self.SQUEEZE[c][0]:
                    want[c] = max(want[c], min(self.SQUEEZE[c][0], cell_len(value)))
        over = fixed + sum(want.values()) + pad * len(want) - available
        room: dict[str, int] = {}
        if over > 0:
            while over > 0:
                cuttable = [c for c in want if want[c] > self.SQUEEZE[c][1]]
                first = [c for c in cuttable if c not in self.SQUEEZE_LAST] or cuttable
                widest = max(first, key=want.__getitem__, default=None)
                if widest is None:
                    break  # cut to the least everywhere: the rest scrolls sideways
                want[widest] -= 1
                over -= 1
            room = want
        if room == self._room:
            return False
        self._room = room
        return True

    def on_resize(self, _event: Any) -> None:
        """A new width: cut the free-text columns afresh once the table has its new size."""
        if self.SQUEEZE and self.loaded:
            self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        if self.is_mounted and self.table.is_mounted:
            self.refilter()

    def show_all(self) -> None:
        """Put every matching row in the table (G / End go to the very last one)."""
        if self._found > self.table.row_count:
            self.window = self._found
            self.refilter()

    def empty_hint(self) -> str:
        """What an empty list says, with the key that would fill it."""
        return f"no {self.noun} yet"

    def status(self, shown: int, found: int) -> Text:
        """The line under the table."""
        if self.refusal is not None:
            return Text("")
        if self.loaded and not self.partial and not self.items:
            return Text(self.empty_hint(), style="bold")
        if self.loaded and not self.partial and not found:
            return Text(f"nothing matches out of {len(self.items)} {self.noun} — escape clears "
                        "the filter" + (", m shows everyone" if getattr(self, "no_mfa_only", False)
                                        else ""), style="bold")
        if self.partial:
            line = Text(f"the first {len(self.items)} {self.noun}; reading the rest…")
            if self.filter_text:
                line.append(" · filter ")
                line.append(clean(self.filter_text), style="bold")
                line.append(f" matches {found} so far")
            return line
        line = Text(f"{len(self.items)} {self.noun}")
        self.status_extra(line)
        if self.filter_text:
            line.append(" · filter ")
            line.append(clean(self.filter_text), style="bold")
            line.append(f" matches {found}")
        if shown < found:
            line.append(f" · showing the first {shown} of {found} (more as you scroll; / to narrow)",
                        style="bold")
        return line

    def status_extra(self, line: Text) -> None:
        """Add view-specific facts to the status line."""

    def selected(self) -> Any | None:
        """The item under the cursor, if any."""
        tables = self.query(LiveTable)
        key = tables.first().cursor_key if tables else None  # None while still composing
        return self._shown.get(key) if key is not None else None

    # -- filter ------------------------------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter box and type into it."""
        box = self.filter_box
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, ".filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value
        self.window = self.WINDOW
        self.refilter()

    def on_data_table_row_highlighted(self, _event: Any) -> None:
        """Near the end of the window: show the next rows (appended, nothing rebuilt)."""
        table = self.table
        if self._found > table.row_count and table.cursor_row >= table.row_count - 3:
            self.window += self.WINDOW
            self.refilter()
        self.refresh_keys()

    @on(Input.Submitted, ".filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.filter_text:
            self.filter_box.remove_class("-shown")
        self.table.focus()

    def has_filter(self) -> bool:
        """Whether a filter is typed or its box is open (escape clears it before backing out)."""
        return bool(self.filter_text) or self.filter_box.has_class("-shown")

    def action_unfilter(self) -> None:
        """Escape on the list: clear the filter first."""
        self.clear_filter()

    def clear_filter(self) -> bool:
        """Clear and hide the filter; True if there was one to clear."""
        box = self.filter_box
        had = bool(self.filter_text) or box.has_class("-shown")
        box.value = ""
        self.filter_text = ""
        self.window = self.WINDOW
        box.remove_class("-shown")
        if had:
            self.refilter()
        self.table.focus()
        return had

    def why_not(self, action: str) -> str | None:
        """One line on why ``action``'s key does nothing here now (None: nothing to say)."""
        return None

    def on_key(self, event) -> None:
        """Escape in the filter clears it; down goes back to the list. A key of this list that
        does nothing here (greyed out or hidden) says in one line why, rather than nothing."""
        if self.filter_box.has_focus:
            if event.key == "escape":
                event.stop()
                event.prevent_default()
                self.clear_filter()
            elif event.key == "down":
                event.stop()
                self.table.focus()
            return
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if self.check_action(binding.action, ()) is True:
                return  # it did run (or will): nothing to explain
            reason = self.why_not(binding.action)
            if reason:
                event.stop()
                self.dashboard.report(reason, error=True)
            return
