"""Compare: several runs side by side (`core.compare`, as `lora-tui runs compare`): the settings that differ,
highlighted, the results of each run, and every run's train and eval loss overlaid on one chart, x in optimizer
steps or in tokens seen, the loss optionally on a log scale."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static

from lora_tui.core.compare import ComparedRun, Comparison, compare_runs, table
from lora_tui.i18n import N_, _
from lora_tui.ui.screens.base import AppScreen
from lora_tui.ui.widgets.overlay_chart import KINDS, Curve, OverlayChart, colour_of

DIFFERS = "bold yellow"
"""Style of a setting that is not the same in every run."""
SHOWN = (KINDS, ("train",), ("eval",))
"""What `e` cycles through: both curves of each run, train only, eval only."""


@dataclass
class ComparisonRead(Message):
    """The runs, read."""

    comparison: Comparison


def curves_of(runs: list[ComparedRun], *, x: str, kinds: tuple[str, ...]) -> tuple[Curve, ...]:
    """The chart's curves: per run (its colour by position) the kinds asked, x in steps or tokens (points
    without a token count are left out of a tokens chart)."""
    out = []
    for index, run in enumerate(runs):
        for kind in kinds:
            points = run.train if kind == "train" else run.eval
            pairs = [(float(p.step), p.loss) for p in points] if x == "step" else \
                [(float(p.tokens), p.loss) for p in points if p.tokens is not None]
            if pairs:
                out.append(Curve(run.name, kind, tuple(a for a, _b in pairs), tuple(b for _a, b in pairs),
                                 colour_of(index)))
    return tuple(out)


def settings_table(comparison: Comparison) -> Table:
    """One row per setting or result, one column per run (in its chart colour): a few runs fit 80 columns, and a
    long value (a target list) wraps in its cell instead of running off the screen. Differing settings are
    highlighted."""
    header, rows = table(comparison)
    differing = set(header[2:2 + len(comparison.differences)])
    grid = Table(box=None, pad_edge=False, show_edge=False, expand=True, header_style="bold")
    grid.add_column("", no_wrap=True, style="bold")
    for index, run in enumerate(comparison.runs):
        grid.add_column(Text(run.name, style=f"bold {colour_of(index)}"), overflow="fold", ratio=1)
    for column, label in enumerate(header[1:], start=1):
        style = DIFFERS if label in differing else ""
        grid.add_row(Text(label, style=style), *(Text(cells[column], style=style) for cells in rows))
    return grid


class CompareScreen(AppScreen):
    """Runs side by side, with their loss curves overlaid."""

    DEFAULT_CSS = """
    #compare-body { height: 1fr; }
    #compare-table-box { height: auto; max-height: 45%; }
    #compare-status { height: 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("x", "toggle_x", N_("Steps/tokens"), tooltip=N_("x axis in optimizer steps or in tokens seen"),
                id="cmp-x"),
        Binding("l", "toggle_log", N_("Log scale"), tooltip=N_("Loss on a log scale"), id="cmp-log"),
        Binding("e", "cycle_kinds", N_("Train/eval"), tooltip=N_("Show train and eval, train only, or eval only"),
                id="cmp-kinds"),
        Binding("f5", "refresh", N_("Refresh"), tooltip=N_("Read the runs again"), id="cmp-refresh"),
        Binding("escape", "app.back", N_("Back"), tooltip=N_("Back to the runs"), id="cmp-back"),
    ]

    def __init__(self, run_dirs: list[Path]) -> None:
        super().__init__()
        self.run_dirs = [Path(p) for p in run_dirs]
        """The runs compared, in this order."""
        self.comparison: Comparison | None = None
        """What was read (None until then)."""
        self.x = "step"
        """The x axis: step or tokens."""
        self.log_y = False
        """Whether the loss is on a log scale."""
        self.shown = 0
        """Index into SHOWN."""

    def compose(self) -> ComposeResult:
        """Title, the table, the chart and a status line."""
        yield Header(show_clock=False)
        with Vertical(id="compare-body"):
            yield Static(_("Comparing {count} runs").format(count=len(self.run_dirs)), id="compare-title")
            with VerticalScroll(id="compare-table-box"):
                yield Static("", id="compare-table")
            yield OverlayChart(id="compare-chart")
            yield Static("", id="compare-status")
        yield Footer()

    def on_mount(self) -> None:
        """Read the runs."""
        self.action_refresh()

    def action_refresh(self) -> None:
        """Read the runs again (a live run's curves grow)."""
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def load(self) -> None:
        """Read every run's files (a UserError, e.g. a directory that is no run, is shown by the app)."""
        self.post_message(ComparisonRead(compare_runs(self.run_dirs)))

    def on_comparison_read(self, message: ComparisonRead) -> None:
        """Fill the table and draw the chart."""
        self.comparison = message.comparison
        differ = _(", ").join(message.comparison.differences) or _("none")
        title = _("Comparing {count} runs · settings that differ: {settings}").format(
            count=len(message.comparison.runs), settings="\x00")
        before, _sep, after = title.partition("\x00")
        self.query_one("#compare-title", Static).update(Text.assemble(before, (differ, DIFFERS), after))
        self._fill_table()
        self._draw()

    def _fill_table(self) -> None:
        assert self.comparison is not None
        self.query_one("#compare-table", Static).update(settings_table(self.comparison))

    def _draw(self) -> None:
        if self.comparison is None:
            return
        chart = self.query_one("#compare-chart", OverlayChart)
        kinds = SHOWN[self.shown]
        chart.curves = curves_of(self.comparison.runs, x=self.x, kinds=kinds)
        chart.x_label = _("steps") if self.x == "step" else _("tokens seen")
        chart.log_y = self.log_y
        shown = {("train", "eval"): _("train and eval"), ("train",): _("train"), ("eval",): _("eval")}[kinds]
        scale = _("log scale") if self.log_y else _("linear scale")
        self.query_one("#compare-status", Static).update(
            _("x: {axis} (x) · loss: {scale} (l) · showing {shown} (e)").format(axis=chart.x_label, scale=scale,
                                                                               shown=shown))

    def action_toggle_x(self) -> None:
        """x in steps, or in tokens seen."""
        self.x = "tokens" if self.x == "step" else "step"
        self._draw()

    def action_toggle_log(self) -> None:
        """Linear or log loss."""
        self.log_y = not self.log_y
        self._draw()

    def action_cycle_kinds(self) -> None:
        """Both curves, train only, eval only."""
        self.shown = (self.shown + 1) % len(SHOWN)
        self._draw()
