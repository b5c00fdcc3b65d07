"""A DataTable that is updated by row key (remove stale, update changed, add new) and keeps its cursor."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from teamaccess.tui.textual_private import WidthTrackingDataTable, set_row_order
from textual.binding import Binding
from textual.widgets.data_table import CellDoesNotExist

Cell = Text | str
Row = tuple[str, Sequence[Cell]]

#: Above this many removals a diff costs more than a rebuild (DataTable.remove_row is O(rows)).
_REBUILD_AFTER = 40


def _signature(cell: Cell) -> object:
    if isinstance(cell, Text):
        return (cell.plain, str(cell.style), tuple(cell.spans))
    return cell


class LiveTable(WidthTrackingDataTable):
    """A row-cursor table fed whole lists of ``(key, cells)`` and updating only what changed."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        # The first and last row of the whole list, not of the rows loaded into the table.
        Binding("g,home", "first_row", "First", show=False),
        Binding("G,end", "last_row", "Last", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cursor_foreground_priority="renderable")
        self._shown: dict[str, tuple[object, ...]] = {}
        self._given: dict[str, Sequence[Cell]] = {}

    def action_first_row(self) -> None:
        """The cursor to the first row."""
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        """The cursor to the last row of the whole list: the list around it shows every row
        first (see ``TableView.show_all``), since the table holds only a window of them."""
        show_all = getattr(self.parent, "show_all", None)
        if show_all is not None:
            show_all()
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except CellDoesNotExist:  # the cursor is past the end while rows are being replaced
            return None

    def reset(self, columns: Sequence[tuple[str, Text]]) -> None:
        """Empty the table and set its columns afresh (widths measured from the labels again)."""
        self.clear(columns=True)
        self._shown.clear()
        self._given.clear()
        for key, label in columns:
            self.add_column(label, key=key)

    def show_rows(self, rows: Sequence[Row]) -> None:
        """Make the table show exactly ``rows``, in order, touching only the rows that changed.

        The cursor stays on the same row key when that row is still shown, otherwise at the
        same position.
        """
        keep_key = self.cursor_key
        keep_index = self.cursor_row
        wanted = {key: cells for key, cells in rows}
        stale = [key for key in self._shown if key not in wanted]
        columns = list(self.columns)
        with self.app.batch_update():
            if len(stale) > _REBUILD_AFTER:
                self.clear()
                self._shown.clear()
                self._given.clear()
            else:
                for key in stale:
                    self.remove_row(key)
                    del self._shown[key]
                    del self._given[key]
            for key, cells in rows:
                if self._given.get(key) is cells:
                    continue  # the very same cells as shown: nothing to compare
                self._given[key] = cells
                sig = tuple(_signature(c) for c in cells)
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                elif old != sig:
                    for column, cell, before, after in zip(columns, cells, old, sig, strict=False):
                        if before != after:
                            self.update_cell(key, column, cell, update_width=True)
                self._shown[key] = sig
            # Compared every time, not only when rows came or went: a new sort order moves
            # the same rows (issue 12: "sort doesn't sort" until something else changed).
            wanted_order = [key for key, _cells in rows]
            if [row.key.value for row in self.ordered_rows] != wanted_order:
                set_row_order(self, wanted_order)
            if keep_key is not None and keep_key in wanted:
                target = self.get_row_index(keep_key)
            else:
                target = min(keep_index, self.row_count - 1)
            if self.row_count and target != self.cursor_row:
                self.move_cursor(row=target, animate=False)

