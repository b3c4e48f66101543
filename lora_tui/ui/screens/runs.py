"""The runs found under the output root, with their state; open one's monitor (re-attach to a live run)."""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from lora_tui.core import runs
from lora_tui.ui.messages import RunsListed
from lora_tui.ui.screens.base import AppScreen


def list_runs(root: Path) -> list[tuple[Path, runs.RunStatus | None]]:
    """Every run under `root` with its status, most recently started first."""
    found = [(path, runs.read_status(path)) for path in runs.iter_run_dirs(root)]
    return sorted(found, key=lambda item: -(item[1].started_at or 0) if item[1] else 0)


class RunsScreen(AppScreen):
    """Runs under the output root; Enter opens a run's monitor."""

    BINDINGS = [
        Binding("enter", "open", "Open monitor", tooltip="Watch this run (re-attach if it is running)", id="open"),
        Binding("f5", "refresh", "Refresh", tooltip="List the runs again", id="refresh"),
        Binding("escape", "app.back", "Back", tooltip="Back to the wizard", id="runs-back"),
    ]

    def compose(self) -> ComposeResult:
        """Title line and the table."""
        yield Header(show_clock=False)
        with VerticalScroll(id="body"):
            yield Static("", id="runs-title")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        """Set up the table and list the runs."""
        self.query_one("#runs-table", DataTable).add_columns("run", "state", "step", "started", "checkpoint")
        self.action_refresh()

    def on_screen_resume(self) -> None:
        """List again when coming back (states change while away)."""
        if self.is_mounted:
            self.action_refresh()

    def action_refresh(self) -> None:
        """List the runs again."""
        root = self.tui.runs_root
        self.query_one("#runs-title", Static).update(f"Runs under {root}")
        self.scan(root)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs")
    def scan(self, root: Path) -> None:
        """Find the runs (a directory walk)."""
        self.post_message(RunsListed(list_runs(root)))

    def on_runs_listed(self, message: RunsListed) -> None:
        """Fill the table."""
        root = self.tui.runs_root
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        for path, status in message.rows:
            name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            state = status.effective_state() if status else ("adapter" if runs.is_adapter_dir(path) else "-")
            step = f"{status.step}/{status.max_steps or '?'}" if status else "-"
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(status.started_at)) \
                if status and status.started_at else "-"
            ckpt = (status.last_checkpoint or "-") if status else "-"
            table.add_row(name, state, step, started, ckpt, key=str(path))
        if not message.rows:
            self.query_one("#runs-title", Static).update(f"No runs under {root} yet: launch one from the wizard.")

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
