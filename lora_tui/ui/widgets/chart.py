"""A small braille line chart for loss curves (Textual has sparklines, but no two-series plot with an axis).

Each terminal cell holds a 2x4 grid of braille dots, so a 60x8 cell area plots 120x32 points. A series with
`steps` is placed by step on an x axis shared by every such series (so eval points sit above the training steps
they were measured at); one without is spread evenly. Values falling in one dot column are averaged, and
neighbouring dots are joined vertically so the curve reads as a line. A `Mark` (the best eval step) is drawn as
a diamond over the curve and named in the legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from lora_tui.i18n import _

_BRAILLE_BASE = 0x2800
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
"""Bit of the braille dot at (row 0-3, column 0-1) within one cell."""
MARK_CHAR = "◆"
"""How a mark is drawn on the plot and in the legend."""


@dataclass(frozen=True)
class Series:
    """One line on the chart."""

    label: str
    """Legend text."""
    values: tuple[float, ...]
    """Y values (x is the position in the run, not wall time)."""
    style: str
    """Rich style of the line, e.g. `bold cyan`."""
    steps: tuple[float, ...] | None = None
    """The x of each value (the optimizer step); None spreads the values evenly over the width."""


@dataclass(frozen=True)
class Mark:
    """One point called out on the chart, e.g. the best eval loss."""

    step: float
    """Its x (same unit as the series' `steps`)."""
    value: float
    """Its y."""
    label: str
    """Legend text, e.g. `best eval 1.234 at step 40`."""
    style: str = "bold yellow"
    """Rich style of the diamond and its legend."""
    short: str = ""
    """Legend text where `label` leaves the legend wider than the chart, e.g. `1.234 @ 40`."""


Grid = list[list[tuple[int, str | None]]]


def resample(values: Sequence[float], columns: int) -> list[float]:
    """`columns` values: the mean of each equal slice of `values` (or the values themselves when fewer)."""
    if columns <= 0 or not values:
        return []
    if len(values) <= columns:
        return list(values)
    out = []
    for i in range(columns):
        lo = i * len(values) // columns
        hi = max(lo + 1, (i + 1) * len(values) // columns)
        chunk = values[lo:hi]
        out.append(sum(chunk) / len(chunk))
    return out


def _x_range(series: Sequence[Series]) -> tuple[float, float] | None:
    """The shared step range of every series that has steps."""
    xs = [x for s in series if s.steps is not None
          for x, v in zip(s.steps, s.values, strict=False) if math.isfinite(v)]
    return (min(xs), max(xs)) if xs else None


def _dot_x(x: float, x_range: tuple[float, float], dots_x: int) -> int:
    lo, hi = x_range
    return round((x - lo) / (hi - lo) * (dots_x - 1)) if hi > lo else 0


def _columns(s: Series, dots_x: int, x_range: tuple[float, float] | None) -> list[tuple[int, float]]:
    """(dot column, value) of a series: by step when it has steps, else spread evenly."""
    if s.steps is None or x_range is None:
        points = resample([v for v in s.values if math.isfinite(v)], dots_x)
        return list(enumerate(points))
    buckets: dict[int, list[float]] = {}
    for x, v in zip(s.steps, s.values, strict=False):
        if math.isfinite(v):
            buckets.setdefault(_dot_x(x, x_range, dots_x), []).append(v)
    return [(col, sum(vs) / len(vs)) for col, vs in sorted(buckets.items())]


def _segment(prev: tuple[int, int] | None, point: tuple[int, int]) -> list[tuple[int, int, int]]:
    """The dots joining `prev` to `point` (dot x, y): for each column from the one after `prev` to `point`'s,
    the vertical run from the line's height at the previous column to its height at this one."""
    x, y = point
    if prev is None or x <= prev[0]:
        return [(x, y, y)]
    (x0, y0), out, last = prev, [], prev[1]
    for xx in range(x0 + 1, x + 1):
        here = round(y0 + (y - y0) * (xx - x0) / (x - x0))
        out.append((xx, last, here))
        last = here
    return out


def plot(series: Sequence[Series], width: int, height: int) -> Grid:
    """A grid of (braille bits, style) cells; each series scaled to the shared min/max of all series."""
    grid: Grid = [[(0, None)] * width for _ in range(height)]
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    if not finite or width <= 0 or height <= 0:
        return grid
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    dots_y = height * 4
    x_range = _x_range(series)
    for s in series:
        prev: tuple[int, int] | None = None
        for x, value in _columns(s, width * 2, x_range):
            y = round((hi - value) / span * (dots_y - 1))
            for xx, yy_from, yy_to in _segment(prev, (x, y)):
                for yy in range(min(yy_from, yy_to), max(yy_from, yy_to) + 1):
                    row, col = yy // 4, xx // 2
                    bits, _ = grid[row][col]
                    grid[row][col] = (bits | _DOT_BITS[yy % 4][xx % 2], s.style)
            prev = (x, y)
    return grid


def _mark_cell(mark: Mark, series: Sequence[Series], width: int, height: int) -> tuple[int, int] | None:
    """(row, column) of the plot cell the mark falls in, None when it cannot be placed."""
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    x_range = _x_range(series)
    if not finite or x_range is None or width <= 0 or height <= 0 or not math.isfinite(mark.value):
        return None
    lo, hi = min(finite), max(finite)
    y = round((hi - mark.value) / (hi - lo or 1.0) * (height * 4 - 1))
    return min(max(y // 4, 0), height - 1), min(max(_dot_x(mark.step, x_range, width * 2) // 2, 0), width - 1)


def render_chart(series: Sequence[Series], width: int, height: int, mark: Mark | None = None) -> Text:
    """The chart as Rich text: a y-axis with the min and max, the plot, and a legend line."""
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    if not finite:
        return Text(_("waiting for the first loss value…"), style="dim")
    lo, hi = min(finite), max(finite)
    labels = (f"{hi:.3g}", f"{lo:.3g}")
    axis_w = max(len(x) for x in labels) + 1
    plot_h = max(1, height - 1)
    plot_w = max(1, width - axis_w - 1)
    grid = plot(series, plot_w, plot_h)
    cell = _mark_cell(mark, series, plot_w, plot_h) if mark is not None else None
    text = Text()
    for r, row in enumerate(grid):
        label = labels[0] if r == 0 else labels[1] if r == plot_h - 1 else ""
        text.append(label.rjust(axis_w) + "│", style="dim")
        for c, (bits, style) in enumerate(row):
            if mark is not None and cell == (r, c):
                text.append(MARK_CHAR, style=mark.style)
            else:
                text.append(chr(_BRAILLE_BASE + bits), style=style or "")
        text.append("\n")
    text.append_text(legend(series, mark, width))
    return text


def legend(series: Sequence[Series], mark: Mark | None, width: int) -> Text:
    """` ━ train 1.11 ━ eval 1.21 ◆ best eval 1.2097 at step 40` in at most `width` cells: the mark's short label
    where its label does not fit, then cut with an ellipsis."""
    labels = [mark.label, mark.short or mark.label] if mark is not None else [""]
    for label in labels:
        text = Text()
        for s in series:
            if s.values:
                text.append(f" ━ {s.label} {s.values[-1]:.4g}", style=s.style)
        if mark is not None:
            text.append(f" {MARK_CHAR} {label}", style=mark.style)
        if text.cell_len <= width:
            break
    text.truncate(max(1, width), overflow="ellipsis")
    return text


class LineChart(Widget):
    """A braille line chart of one or more series sharing one y axis, with an optional mark."""

    DEFAULT_CSS = """
    LineChart {
        height: 8;
        width: 1fr;
    }
    """

    data: reactive[tuple[Series, ...]] = reactive((), layout=False)
    """The series drawn; assign a new tuple to redraw."""
    mark: reactive[Mark | None] = reactive(None, layout=False)
    """The point called out (the best eval step), or None."""

    def render(self) -> Text:
        """Draw the chart at the widget's current size."""
        return render_chart(self.data, self.size.width, self.size.height, self.mark)
