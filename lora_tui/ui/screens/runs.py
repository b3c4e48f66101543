"""The runs found under the output root, with their state and best eval loss; open one's monitor (re-attach to a
live run); mark several (space) and compare them (c). The table fits the screen: its last column (the run's name)
wraps instead of being cut."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from lora_tui.core import runs
from lora_tui.core.run_summary import RunSummary, best_eval_text, summarize
from lora_tui.i18n import N_, _, pgettext
from lora_tui.ui.screens.base import AppScreen
from lora_tui.ui.widgets.fit_table import fill_fitted

MARK = "● "
"""Put before a marked run's name."""
HEADER = (N_("state"), N_("step"), N_("best eval @ step"), N_("started"), N_("checkpoint"), N_("run"))
"""The Runs table's columns; the run's name last, where a long one wraps."""


def list_runs(root: Path) -> list[tuple[Path, runs.RunStatus | None]]:
    """Every run under `root` with its status, most recently started first."""
    found = [(path, runs.read_status(path)) for path in runs.iter_run_dirs(root)]
    return sorted(found, key=lambda item: -(item[1].started_at or 0) if item[1] else 0)


@dataclass
class RunsSummarized(Message):
    """The runs under the output root, read: (directory, status, summary) per run, newest first."""

    rows: list[tuple[Path, runs.RunStatus | None, RunSummary]]


def _cells(root: Path, path: Path, status: runs.RunStatus | None, summary: RunSummary) -> list[str]:
    name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    state = pgettext("run state", status.effective_state()) if status else (
        _("adapter") if runs.is_adapter_dir(path) else "-")
    step = f"{status.step}/{status.max_steps or '?'}" if status else "-"
    started = time.strftime("%m-%d %H:%M", time.localtime(status.started_at)) \
        if status and status.started_at else "-"
    ckpt = Path(status.last_checkpoint).name if status and status.last_checkpoint else "-"
    return [state, step, best_eval_text(summary), started, ckpt, name]


class RunsScreen(AppScreen):
    """Runs under the output root; Enter opens a run's monitor."""

    BINDINGS = [
        Binding("enter", "open", N_("Open monitor"), tooltip=N_("Watch this run (re-attach if it is running)"),
                id="open"),
        Binding("space", "mark", N_("Mark"), tooltip=N_("Mark this run for comparing (again: unmark)"), id="mark"),
        Binding("c", "compare", N_("Compare"),
                tooltip=N_("Compare the marked runs: settings, results, overlaid curves"), id="compare"),
        Binding("f5", "refresh", N_("Refresh"), tooltip=N_("List the runs again"), id="refresh"),
        Binding("escape", "app.back", N_("Back"), tooltip=N_("Back to the wizard"), id="runs-back"),
    ]

    def compose(self) -> ComposeResult:
        """Title line and the table."""
        yield Header(show_clock=False)
        with VerticalScroll(id="body"):
            yield Static("", id="runs-title")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name=name)
        self._rows: list[tuple[Path, runs.RunStatus | None, RunSummary]] = []
        self.marked: list[str] = []
        """The run directories marked for comparing, in the order they were marked."""

    def on_mount(self) -> None:
        """List the runs."""
        self.action_refresh()

    def on_screen_resume(self) -> None:
        """List again when coming back (states change while away)."""
        if self.is_mounted:
            self.action_refresh()

    def action_refresh(self) -> None:
        """List the runs again."""
        root = self.tui.runs_root
        self.query_one("#runs-title", Static).update(_("Runs under {root}").format(root=root))
        self.scan(root)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs")
    def scan(self, root: Path) -> None:
        """Find the runs (a directory walk) and read each one's summary (its metrics' best eval loss)."""
        self.post_message(RunsSummarized([(path, status, summarize(path, status))
                                          for path, status in list_runs(root)]))

    def on_runs_summarized(self, message: RunsSummarized) -> None:
        """Fill the table."""
        self._rows = message.rows
        self._fill()
        if not message.rows:
            self.query_one("#runs-title", Static).update(
                _("No runs under {root} yet: launch one from the wizard.").format(root=self.tui.runs_root))

    def _fill(self) -> None:
        root = self.tui.runs_root
        rows = [(str(path), _cells(root, path, status, summary)) for path, status, summary in self._rows]
        rows = [(key, [*cells[:-1], (MARK if key in self.marked else "") + cells[-1]]) for key, cells in rows]
        table = self.query_one("#runs-table", DataTable)
        width = self.query_one("#body").size.width or self.size.width
        fill_fitted(table, [_(label) for label in HEADER], rows, width=width)

    def on_resize(self, event: events.Resize) -> None:
        """Fit the table to the new width."""
        if self._rows:
            self._fill()

    def _current(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return str(key) if key else None

    def action_mark(self) -> None:
        """Mark (or unmark) the selected run for comparing."""
        key = self._current()
        if key is None:
            return
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self._fill()

    def action_compare(self) -> None:
        """Compare the marked runs (at least two)."""
        live = {str(path) for path, _status, _summary in self._rows}
        chosen = [key for key in self.marked if key in live]
        if len(chosen) < 2:
            self.notify(_("Mark two or more runs with space, then press c to compare them."), timeout=6)
            return
        self.tui.open_compare([Path(key) for key in chosen])

    def action_open(self) -> None:
        """Open the selected run's monitor."""
        table = self.query_one("#runs-table", DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key:
            self.tui.open_monitor(Path(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Mouse click or Enter on a row opens it."""
        if event.row_key.value:
            self.tui.open_monitor(Path(event.row_key.value))
