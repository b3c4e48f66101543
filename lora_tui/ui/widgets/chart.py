"""A small braille line chart for loss curves (Textual has sparklines, but no two-series plot with an axis).

Each terminal cell holds a 2x4 grid of braille dots, so a 60x8 cell area plots 120x32 points. Values are
bucketed per dot column (the mean of the points falling in it) and consecutive dots are joined vertically so
the curve reads as a line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

_BRAILLE_BASE = 0x2800
_DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
"""Bit of the braille dot at (row 0-3, column 0-1) within one cell."""


@dataclass(frozen=True)
class Series:
    """One line on the chart."""

    label: str
    """Legend text."""
    values: tuple[float, ...]
    """Y values, evenly spaced along x (x is the position in the run, not wall time)."""
    style: str
    """Rich style of the line, e.g. `bold cyan`."""


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


def plot(series: Sequence[Series], width: int, height: int) -> list[list[tuple[int, str | None]]]:
    """A grid of (braille bits, style) cells; each series scaled to the shared min/max of all series."""
    grid: list[list[tuple[int, str | None]]] = [[(0, None)] * width for _ in range(height)]
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    if not finite or width <= 0 or height <= 0:
        return grid
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    dots_y = height * 4
    for s in series:
        points = resample([v for v in s.values if math.isfinite(v)], width * 2)
        prev: int | None = None
        for x, value in enumerate(points):
            y = round((hi - value) / span * (dots_y - 1))
            ys = range(min(prev, y), max(prev, y) + 1) if prev is not None else range(y, y + 1)
            for yy in ys:
                row, col = divmod(yy, 4)[0], x // 2
                bits, _ = grid[row][col]
                grid[row][col] = (bits | _DOT_BITS[yy % 4][x % 2], s.style)
            prev = y
    return grid


def render_chart(series: Sequence[Series], width: int, height: int) -> Text:
    """The chart as Rich text: a y-axis with the min and max, the plot, and a legend line."""
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    if not finite:
        return Text("waiting for the first loss value…", style="dim")
    lo, hi = min(finite), max(finite)
    labels = (f"{hi:.3g}", f"{lo:.3g}")
    axis_w = max(len(x) for x in labels) + 1
    plot_h = max(1, height - 1)
    grid = plot(series, max(1, width - axis_w - 1), plot_h)
    text = Text()
    for r, row in enumerate(grid):
        label = labels[0] if r == 0 else labels[1] if r == plot_h - 1 else ""
        text.append(label.rjust(axis_w) + "│", style="dim")
        for bits, style in row:
            text.append(chr(_BRAILLE_BASE + bits), style=style or "")
        text.append("\n")
    for s in series:
        if s.values:
            text.append(f" ━ {s.label} {s.values[-1]:.4g}", style=s.style)
    return text


class LineChart(Widget):
    """A braille line chart of one or more series sharing one y axis."""

    DEFAULT_CSS = """
    LineChart {
        height: 8;
        width: 1fr;
    }
    """

    data: reactive[tuple[Series, ...]] = reactive((), layout=False)
    """The series drawn; assign a new tuple to redraw."""

    def render(self) -> Text:
        """Draw the chart at the widget's current size."""
        return render_chart(self.data, self.size.width, self.size.height)
