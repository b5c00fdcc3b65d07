"""Every private Textual API the dashboard relies on, in one place, each with why plain Textual won't do.

Written for Textual ``WRITTEN_FOR`` (pinned exactly in pyproject.toml). tests/test_textual_private.py
fails as soon as another version is installed: an upgrade starts here, by checking each piece
below against the new Textual's source (and dropping it if plain Textual now does the job).
Nothing else in teamaccess may touch a Textual name that starts with an underscore.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable

WRITTEN_FOR = "8.2.8"


class WidthTrackingDataTable(DataTable):
    """A DataTable that redraws every line when a column's width changes.

    Correctness, not speed: DataTable measures new or updated cells when idle
    (``_update_dimensions`` / ``_update_column_widths``) but keeps the lines it has already
    rendered, keyed by its private ``_update_count``, with the old widths. Under load that left
    cut-off cells on screen (and in snapshots). No public method invalidates those lines, so these
    two private hooks are wrapped and, when a width moved, the line caches are dropped.
    """

    def _widths(self) -> list[int]:
        return [column.content_width for column in self.columns.values()]

    def _update_dimensions(self, new_rows) -> None:  # type: ignore[no-untyped-def]
        before = self._widths()
        super()._update_dimensions(new_rows)
        if self._widths() != before:
            self._redraw_all()

    def _update_column_widths(self, updated_cells) -> None:  # type: ignore[no-untyped-def]
        before = self._widths()
        super()._update_column_widths(updated_cells)
        if self._widths() != before:
            self._redraw_all()

    def _redraw_all(self) -> None:
        self._clear_caches()
        self._update_count += 1
        self.refresh()


def set_row_order(table: DataTable, ranked: Iterable[str]) -> None:
    """Put ``table``'s rows in the order of their keys in ``ranked`` (unlisted rows last).

    ``DataTable.sort`` hands its key function a row's cell values, never its key, and the
    table's rows can't be told apart by their cells alone; rebuilding the table instead costs
    a keystroke on a 10,000-user roster far more than the 50 ms target allows (measured in
    tests/bench/RESULTS.md). So the row locations are re-ranked as ``DataTable.sort`` itself
    does it.
    """
    from textual._two_way_dict import TwoWayDict

    order = {key: index for index, key in enumerate(ranked)}
    rows = sorted(table._data, key=lambda row_key: order.get(row_key.value, 1 << 30))
    table._row_locations = TwoWayDict({row_key: i for i, row_key in enumerate(rows)})
    table._update_count += 1
    table.refresh()


def compose_off_stack(app: App, screen: Screen) -> None:
    """Compose and style an installed ``screen`` now, before anyone pushes it.

    Textual composes a screen the first time it is pushed; for the access pane that is most of
    the first open. Registering it early (what ``push_screen`` does first) moves that work to a
    moment nobody is waiting, without showing it.
    """
    app._register(app, screen)
