"""Several runs' loss curves on one chart: a shared x axis (optimizer steps or tokens seen) with its ticks and
label, a y axis in loss (optionally log scale) with three ticks, and a legend naming each run's curves.

The plotting itself is `widgets.chart.plot` (braille dots, 2x4 per cell, values averaged per dot column): 5,000
points in each of three runs draw in about 8 ms at 120x20. Each run has one colour; its training curve is drawn
bold and its eval curve plain, and either kind can be hidden (`kinds`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from lora_tui.i18n import _
from lora_tui.ui.widgets.chart import Series, plot

PALETTE = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_cyan")
"""One colour per run, in order (runs beyond its length reuse it)."""
KINDS = ("train", "eval")
"""The curves each run may have."""


@dataclass(frozen=True)
class Curve:
    """One run's curve of one kind."""

    run: str
    """The run's name (the legend's text)."""
    kind: str
    """train or eval."""
    xs: tuple[float, ...]
    """x of each point (steps or tokens)."""
    ys: tuple[float, ...]
    """The loss at each point."""
    colour: str
    """The run's colour."""

    @property
    def style(self) -> str:
        """Bold for training, plain for eval."""
        return f"bold {self.colour}" if self.kind == "train" else self.colour


def colour_of(index: int) -> str:
    """The colour of the run at `index`."""
    return PALETTE[index % len(PALETTE)]


def _tick(value: float) -> str:
    """A short axis label: 1.23, 45.6, 12k, 3.4M."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def _series(curves: Sequence[Curve], log_y: bool) -> list[Series]:
    out = []
    for c in curves:
        pairs = [(x, y) for x, y in zip(c.xs, c.ys, strict=False)
                 if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)]
        if pairs:
            out.append(Series(f"{c.run} {c.kind}", tuple(math.log10(y) if log_y else y for _, y in pairs), c.style,
                              steps=tuple(x for x, _y in pairs)))
    return out


def _x_axis(lo: float, hi: float, width: int, axis_w: int, label: str) -> Text:
    """The axis line, then the first, middle and last x under it, and the axis's name at the right."""
    line = Text(" " * axis_w + "└" + "─" * width + "\n", style="dim")
    ticks = [f"{_tick(lo)} ({label})", _tick((lo + hi) / 2), _tick(hi)]
    row = [" "] * (axis_w + 1 + width)
    spots = [axis_w + 1, axis_w + 1 + (width - len(ticks[1])) // 2, axis_w + 1 + width - len(ticks[2])]
    for text, at in zip(ticks, spots, strict=True):
        for i, ch in enumerate(text):
            if 0 <= at + i < len(row):
                row[at + i] = ch
    return line + Text("".join(row).rstrip() + "\n", style="dim")


def render_overlay(curves: Sequence[Curve], width: int, height: int, *, x_label: str = "step",
                   log_y: bool = False) -> Text:
    """The chart as Rich text: y ticks and plot, the x axis, and one legend line per run."""
    series = _series(curves, log_y)
    ys = [v for s in series for v in s.values]
    if not ys:
        return Text(_("no loss values to draw yet (log scale needs losses above 0)") if log_y else
                    _("no loss values to draw yet"),
                    style="dim")
    xs = [x for s in series for x in (s.steps or ())]
    lo, hi = min(ys), max(ys)
    shown = [10 ** v if log_y else v for v in (hi, (lo + hi) / 2, lo)]
    labels = [_tick(v) for v in shown]
    axis_w = max(len(t) for t in labels) + 1
    runs_in_legend = list(dict.fromkeys(c.run for c in curves))
    legend_rows = len(runs_in_legend)
    plot_h = max(2, height - 2 - legend_rows)
    plot_w = max(4, width - axis_w - 1)
    grid = plot(series, plot_w, plot_h)
    text = Text()
    middle = plot_h // 2
    for r, row in enumerate(grid):
        label = labels[0] if r == 0 else labels[2] if r == plot_h - 1 else labels[1] if r == middle else ""
        text.append(label.rjust(axis_w) + "│", style="dim")
        for bits, style in row:
            text.append(chr(0x2800 + bits), style=style or "")
        text.append("\n")
    axis = _("{axis}, log loss").format(axis=x_label) if log_y else x_label
    text.append_text(_x_axis(min(xs), max(xs), plot_w, axis_w, axis))
    for run in runs_in_legend:
        mine = [c for c in curves if c.run == run]
        line = Text(" " * (axis_w + 1))
        line.append(run, style=f"bold {mine[0].colour}")
        for c in mine:  # `━ train 1.234  ╌ eval 1.345`: the last value of each curve
            last = c.ys[-1] if c.ys else math.nan
            line.append(f"  {'━' if c.kind == 'train' else '╌'} {_(c.kind)} {last:.4g}", style=c.style)
        text.append_text(line)
        text.append("\n")
    text.rstrip()
    return text


class OverlayChart(Widget):
    """Every selected run's train and eval loss on one chart."""

    DEFAULT_CSS = """
    OverlayChart {
        height: 1fr;
        min-height: 8;
        width: 1fr;
    }
    """

    curves: reactive[tuple[Curve, ...]] = reactive((), layout=False)
    """The curves drawn; assign a new tuple to redraw."""
    x_label: reactive[str] = reactive("step", layout=False)
    """The x axis's name (step or tokens)."""
    log_y: reactive[bool] = reactive(False, layout=False)
    """Loss on a log scale."""

    def render(self) -> Text:
        """Draw at the widget's current size."""
        return render_overlay(self.curves, self.size.width, self.size.height, x_label=self.x_label,
                              log_y=self.log_y)
