"""Step 2, Data: choose a file (path field with completion, or a file browser) and see its inspection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.suggester import Suggester
from textual.widgets import Button, DirectoryTree, Input, Static

from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.ui.format import display_path, fmt_bytes
from lora_tui.ui.messages import DataInspected
from lora_tui.ui.screens.base import WizardScreen


class PathSuggester(Suggester):
    """Completes the last component of a filesystem path (first match, directories get a trailing /)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        """The first entry of the typed directory starting with the typed name."""
        if not value:
            return None
        path = Path(os.path.expanduser(value))
        folder, stem = (path, "") if value.endswith(os.sep) else (path.parent, path.name)
        try:
            names = sorted(p.name + (os.sep if p.is_dir() else "") for p in folder.iterdir())
        except OSError:
            return None
        for name in names:
            if name.startswith(stem) and not name.startswith(".") and name != stem:
                return value + name[len(stem):]
        return None


class DataScreen(WizardScreen):
    """Pick the training data and see what it holds."""

    STEP = "data"
    BINDINGS = [
        Binding("ctrl+o", "browse", "Browse", tooltip="Show or hide the file browser", id="browse"),
        Binding("ctrl+d", "sample", "Sample data", tooltip="Use the built-in sample dataset", id="sample"),
    ]

    def compose_body(self) -> ComposeResult:
        """Path field, buttons, browser (hidden) and the inspection result."""
        with VerticalScroll(id="body"):
            yield Static("Training data: a JSONL, JSON, CSV, Parquet or Arrow file (Enter to inspect)",
                         classes="label")
            with Horizontal(classes="row"):
                yield Input(display_path(self.state.data_path), id="data-path", suggester=PathSuggester())
                yield Button("Browse", id="browse-btn")
                yield Button("Sample", id="sample-btn")
            yield Static("", id="data-summary")
            yield Static("", id="data-issues")
            yield Static("", id="data-notes", classes="dim")

    def __init__(self) -> None:
        super().__init__()
        self._inspected: tuple[str, str, int] | None = None
        """(path, model, max_seq_length) of the last inspection asked for."""

    def on_mount(self) -> None:
        """Inspect the current file (the browser is built when first asked for)."""
        super().on_mount()
        self.choose(str(self.state.data_path))

    def on_screen_resume(self) -> None:
        """Measure again when the model (its tokenizer) or the max length changed on a later step."""
        if self._inspected is not None and self._inspected[1:] != self._token_key():
            self.choose(self._inspected[0])

    def _token_key(self) -> tuple[str, int]:
        return self.state.plan.model, self.state.plan.max_seq_length

    @work(thread=True, exclusive=True, exit_on_error=False, group="dataset")
    def inspect(self, path: str, model: str, max_seq_length: int) -> None:
        """Inspect a data file (streaming, so large files do not block the UI); token lengths are measured
        when the model's tokenizer is on this machine."""
        from lora_tui.core.dataset.report import inspect_for_model

        report = inspect_for_model(path, model, max_seq_length=max_seq_length)
        self.post_message(DataInspected(path, report))

    @on(Input.Submitted, "#data-path")
    def _submitted(self, event: Input.Submitted) -> None:
        self.choose(event.value)

    @on(Button.Pressed, "#browse-btn")
    async def action_browse(self) -> None:
        """Show or hide the file browser (mounted on first use: it scans the working directory)."""
        trees = self.query("#tree").results(DirectoryTree)
        tree = next(trees, None)
        if tree is None:
            tree = DirectoryTree(Path.cwd(), id="tree")
            await self.query_one("#body").mount(tree, after=self.query_one("#data-path").parent)
        else:
            tree.display = not tree.display
        if tree.display:
            tree.focus()

    @on(Button.Pressed, "#sample-btn")
    def action_sample(self) -> None:
        """Use the built-in sample dataset."""
        self.query_one("#data-path", Input).value = display_path(SAMPLE_DATA_PATH)
        self.choose(str(SAMPLE_DATA_PATH))

    @on(DirectoryTree.FileSelected)
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#data-path", Input).value = str(event.path)
        self.query_one("#tree", DirectoryTree).display = False
        self.choose(str(event.path))

    def choose(self, path: str) -> None:
        """Inspect `path`; the plan takes it once the inspection comes back."""
        path = os.path.expanduser(path.strip())
        if not path:
            self.show_error("Data: type a file path, or press ctrl+d for the built-in sample")
            return
        self.clear_error()
        self.query_one("#data-summary", Static).update(Text(f"Inspecting {path}…", style="dim"))
        self._inspected = (path, *self._token_key())
        self.inspect(path, *self._token_key())

    def on_data_inspected(self, message: DataInspected) -> None:
        """Show the report and keep the file in the plan."""
        report = message.report
        is_sample = Path(message.path).resolve() == SAMPLE_DATA_PATH.resolve()
        self.state.set_inputs(data_report=report)
        self.state.update(data=None if is_sample else message.path)
        self.query_one("#data-summary", Static).update(self._summary(report))
        issues = Text()
        if report.issue_count:
            issues.append(f"{report.issue_count} problem(s):\n", style="bold red")
            for issue in report.issues:
                issues.append(f"  {issue}\n", style="red")
            if report.issue_count > len(report.issues):
                issues.append(f"  … and {report.issue_count - len(report.issues)} more\n", style="red")
        self.query_one("#data-issues", Static).update(issues)
        self.query_one("#data-notes", Static).update("\n".join(report.notes))

    def _summary(self, report: Any) -> Text:
        from lora_tui.core.tables import describe_size_tier

        text = Text()
        text.append("✔ ready\n" if report.ok else "✘ has problems\n", style="bold green" if report.ok else "bold red")
        rows = [
            ("Format", f"{report.file_format} ({report.shape or 'unrecognised shape'})"),
            ("Examples", f"{report.examples:,}"),
            ("Size tier", f"{report.size_tier}  {describe_size_tier(report.size_tier)}" if report.size_tier else "-"),
            ("On disk", fmt_bytes(report.bytes)),
        ]
        stats = report.token_stats
        if stats is not None:
            rows.append(("Tokens", f"median {stats.median}, p95 {stats.p95}, max {stats.max}; "
                                   f"{stats.over_max} over {stats.max_seq_length}"))
        else:
            model = self.state.plan.model
            how = ("it is built with the demo model, on the first run" if model.strip().lower() == "demo"
                   else "download the model, or choose a local directory with tokenizer.json")
            rows.append(("Tokens", f"not measured: `{model}`'s tokenizer is not on this machine ({how})"))
        for label, value in rows:
            text.append(f"{label:>10}  ", style="bold")
            text.append(f"{value}\n")
        return text

    def can_leave(self) -> bool:
        """Refuse to go on while the chosen file has problems (they would fail the run later)."""
        report = self.state.data_report
        if report is not None and not report.ok:
            self.show_error(f"Data: {report.issue_count} problem(s) in {report.path}; fix them or choose another "
                            "file (ctrl+d: sample)")
            return False
        return True
