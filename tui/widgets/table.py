"""A DataTable that is updated by row key (remove stale, update changed, add new) and keeps its cursor."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

Cell = Text | str
Row = tuple[str, Sequence[Cell]]

#: Above this many removals a diff costs more than a rebuild (DataTable.remove_row is O(rows)).
_REBUILD_AFTER = 40


def _signature(cell: Cell) -> object:
    if isinstance(cell, Text):
        return (cell.plain, str(cell.style), tuple(cell.spans))
    return cell


class LiveTable(DataTable):
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
        except Exception:  # the cursor is past the end while rows are being replaced
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
            current = [row.key.value for row in self.ordered_rows]
            if current != [key for key, _ in rows]:
                self._sort_by({key: index for index, (key, _cells) in enumerate(rows)})
            if keep_key is not None and keep_key in wanted:
                target = self.get_row_index(keep_key)
            else:
                target = min(keep_index, self.row_count - 1)
            if self.row_count and target != self.cursor_row:
                self.move_cursor(row=target, animate=False)

    # DataTable measures new rows when idle but keeps lines it may already have drawn with the
    # old column widths (seen as cut-off cells under load): drop those lines when widths move.
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

    def _sort_by(self, order: dict[str, int]) -> None:
        # DataTable.sort hands its key function cell values, not row keys, so re-rank the row
        # locations the way DataTable.sort itself does (Textual is pinned exactly).
        from textual._two_way_dict import TwoWayDict

        ranked = sorted(self._data, key=lambda row_key: order.get(row_key.value, 1 << 30))
        self._row_locations = TwoWayDict({row_key: i for i, row_key in enumerate(ranked)})
        self._update_count += 1
        self.refresh()
