"""A DataTable that fits its width: every column but the last as wide as its widest cell, the last one given
what is left, its long cells wrapped onto more lines instead of cut at the edge or scrolled out of view."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

MIN_LAST = 12
"""The last column is never narrower than this (the table scrolls sideways below it)."""


def fill_fitted(table: DataTable, header: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]],
                width: int | None = None) -> None:
    """Replace the table's columns and rows: `rows` are (row key, cells); `width` defaults to the table's own."""
    cursor = table.cursor_row
    table.clear(columns=True)
    widths = [max([cell_len(header[i])] + [cell_len(cells[i]) for _key, cells in rows]) for i in range(len(header))]
    pad = 2 * table.cell_padding
    room = (width if width is not None else table.size.width) - 2  # the vertical scrollbar
    last = max(MIN_LAST, min(widths[-1], room - sum(w + pad for w in widths[:-1]) - pad))
    for i, label in enumerate(header):
        table.add_column(label, width=widths[i] if i < len(header) - 1 else last, key=f"c{i}")
    for key, cells in rows:
        *first, tail = cells
        table.add_row(*first, Text(tail, overflow="fold"), key=key, height=None)
    if rows:
        table.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
