"""A log pane whose long lines wrap instead of being cut at the right edge, and that keeps following its end.

Textual's `Log` is fast (lines, not Rich renderables) but never wraps, so a run.log line such as
`step 37/69  epoch 1.62  loss 5.4894  grad norm 0.6778  lr 4.87e-5  1,234 tok/s` loses its last fields on a
narrow pane. `WrappedLog` keeps the last `max_lines` lines as written and shows each one wrapped at the pane's
width (continuations indented), wrapping them again when the width changes.

It also follows its end for as long as the person has not scrolled up: `Log` auto-scrolls only when the view is
already at the end, so when the pane got shorter (the advice above it grew) the view stayed where it was and
every later line was written below it; the log seemed to lag the progress bar by however many lines the pane
lost. Here a pane that was following scrolls to the end after every write and every resize.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

from rich.cells import cell_len, chop_cells
from textual.events import Resize
from textual.widgets import Log
from typing_extensions import Self

CONTINUATION = "  "
"""Indent of the continuation lines of a wrapped line."""
_TOKENS = re.compile(r"\S+|\s+")


def wrap_line(line: str, width: int, indent: str = CONTINUATION) -> list[str]:
    """`line` as rows of at most `width` cells: broken at spaces, words longer than a row folded, continuation
    rows indented by `indent` (dropped when the width is too small for it)."""
    line = line.expandtabs()
    if width <= 0 or cell_len(line) <= width:
        return [line]
    if cell_len(indent) >= width // 2:
        indent = ""
    rows: list[str] = []
    current, space = "", ""
    for token in _TOKENS.findall(line):
        if token.isspace():
            space = token if current.strip() else ""
            continue
        limit = width - (cell_len(indent) if rows else 0)
        if cell_len(current) + cell_len(space) + cell_len(token) <= limit:
            current += space + token
            space = ""
            continue
        if current.strip():
            rows.append(current)
            limit = width - cell_len(indent)
        while cell_len(token) > limit:  # a word longer than a row: fold it
            piece = chop_cells(token, limit)[0]
            rows.append(piece)
            token, limit = token[len(piece):], width - cell_len(indent)
        current, space = token, ""
    if current:
        rows.append(current)
    return [rows[0], *(indent + row for row in rows[1:])]


class WrappedLog(Log):
    """A `Log` that wraps long lines at its width and keeps following the end while the person has not
    scrolled up."""

    DEFAULT_CSS = """
    WrappedLog {
        overflow-x: hidden;
        scrollbar-gutter: stable;
    }
    """

    def __init__(self, *, max_lines: int, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, id=id, classes=classes)
        self.raw_lines: deque[str] = deque(maxlen=max_lines)
        """The last `max_lines` lines as written (before wrapping)."""
        self._wrap_width = 0
        self._following = True

    @property
    def following(self) -> bool:
        """True while the view keeps to the end (the person has not scrolled up)."""
        return self._following

    def _pane_width(self) -> int:
        return self.scrollable_content_region.width

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> Self:
        """Append lines (each may wrap onto several rows); follow the end unless the person scrolled up."""
        new = list(lines)
        self.raw_lines.extend(new)
        width = self._wrap_width = self._wrap_width or self._pane_width()
        rows = [row for line in new for row in wrap_line(line, width)] if width > 0 else new
        follow = self._following if scroll_end is None else scroll_end
        super().write_lines(rows, scroll_end=False)
        if follow:
            self._to_end()
        return self

    def write_line(self, line: str, scroll_end: bool | None = None) -> Self:
        """Append one line."""
        return self.write_lines([line], scroll_end)

    def clear(self) -> Self:
        """Forget every line."""
        self.raw_lines.clear()
        self._following = True
        return super().clear()

    def _to_end(self) -> None:
        if not self.is_vertical_scrollbar_grabbed:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
            self._following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Remember whether the person left the end (scrolled up) or came back to it."""
        super().watch_scroll_y(old_value, new_value)
        if new_value < old_value:
            self._following = new_value >= self.max_scroll_y
        elif new_value >= self.max_scroll_y:
            self._following = True

    def on_resize(self, event: Resize) -> None:
        """Wrap again at a new width; keep to the end when following (a shorter pane must not hide the end)."""
        width = self._pane_width()
        follow = self._following
        if width > 0 and width != self._wrap_width:
            self._wrap_width = width
            kept = list(self.raw_lines)
            super().clear()
            if kept:
                super().write_lines([row for line in kept for row in wrap_line(line, width)], scroll_end=False)
        if follow:
            self.call_after_refresh(self._to_end)
