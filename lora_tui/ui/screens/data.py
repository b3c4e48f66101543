"""Step 2, Data: choose a file (path field with completion, or a file browser), see its inspection: schema and
columns (chosen from the file's fields when not detected), token lengths, and a preview of what is trained.

The inspection runs in a worker with a timeout and can be cancelled (Escape): a file that takes too long never
leaves the step stuck on "Inspecting…" with Next refused.
"""

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
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, DirectoryTree, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from lora_tui.cells import pad
from lora_tui.core.demo_assets import PREBUILD_LOG, demo_tokenizer_file
from lora_tui.core.paths import SAMPLE_DATA_PATH, cache_dir
from lora_tui.core.progress import Progress
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _
from lora_tui.ui.format import display_path, fmt_bytes
from lora_tui.ui.messages import DataInspected
from lora_tui.ui.screens.base import WizardScreen
from lora_tui.ui.widgets.columns import ColumnsPicker

INSPECT_TIMEOUT_S = 120.0
"""Seconds an inspection may take before it is cancelled (a 50 MB JSONL takes a few)."""

PREVIEW_EXAMPLES = 2
"""Examples the preview shows, rendered as training sees them."""

TRAINED_STYLE = "bold black on green"
"""How the preview shows the text that carries the loss."""
CONTEXT_STYLE = "dim"
"""How the preview shows the text the model only reads."""
CUT_STYLE = "strike dim"
"""How the preview shows what max_seq_length cuts off."""


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


def preview_text(previews: tuple[Any, ...], template: str) -> Text:
    """The preview examples as rich text: trained spans highlighted, context dim, the cut struck through."""
    text = Text()
    if not previews:
        return text
    text.append(_("Preview ({template}): ").format(template=template or _("plain text, no chat template")),
                style="bold")
    text.append(_("highlighted"), style=TRAINED_STYLE)
    text.append(_(" text carries the loss\n"))
    for example in previews:
        text.append(_("── {where}: {tokens} tokens, {trained} trained\n").format(
            where=example.where, tokens=f"{example.tokens:,}", trained=f"{example.trained_tokens:,}"), style="bold")
        if example.problem:
            text.append(_("(not rendered: {why})\n").format(why=example.problem), style="red")
            continue
        for seg in example.segments:
            text.append(seg.text, style=CUT_STYLE if seg.cut else TRAINED_STYLE if seg.trained else CONTEXT_STYLE)
        text.append("\n")
    return text


class DataScreen(WizardScreen):
    """Pick the training data and see what it holds."""

    STEP = "data"
    BINDINGS = [
        Binding("ctrl+o", "browse", N_("Browse"), tooltip=N_("Show or hide the file browser"), id="browse"),
        Binding("ctrl+d", "sample", N_("Sample data"), tooltip=N_("Use the built-in sample dataset"), id="sample"),
        Binding("ctrl+t", "fetch_tokenizer", N_("Get tokenizer"), id="fetch-tokenizer",
                tooltip=N_("Fetch the model's tokenizer files (a few MB, not the weights) to measure the data")),
        Binding("escape", "cancel_inspection", N_("Cancel"), tooltip=N_("Stop the running inspection"), id="cancel",
                show=False),
    ]

    def compose_body(self) -> ComposeResult:
        """Path field, buttons, browser (hidden), the inspection result, the columns and the preview."""
        with VerticalScroll(id="body"):
            yield Static(_("Training data: a JSONL, JSON, CSV, Parquet or Arrow file, or a directory of shards "
                           "(Enter to inspect)"), classes="label")
            with Horizontal(classes="row"):
                yield Input(display_path(self.state.data_path), id="data-path", suggester=PathSuggester())
                yield Button(_("Browse"), id="browse-btn")
                yield Button(_("Sample"), id="sample-btn")
            yield Static("", id="data-summary")
            yield Static("", id="data-issues")
            yield ColumnsPicker(id="data-columns")
            yield Static("", id="data-preview")
            yield Static("", id="data-notes", classes="dim")

    def __init__(self) -> None:
        super().__init__()
        self._inspected: tuple[str, str, int, str | None] | None = None
        """(path, model, max_seq_length, columns) of the last inspection asked for."""
        self._inspecting: Worker[None] | None = None
        """The inspection in progress, if any."""
        self._deadline: Timer | None = None
        """Cancels the running inspection when it takes longer than INSPECT_TIMEOUT_S."""

    def on_mount(self) -> None:
        """Inspect the current file (the browser is built when first asked for)."""
        super().on_mount()
        self.choose(str(self.state.data_path))

    def on_screen_resume(self) -> None:
        """Measure again when the model (its tokenizer), the max length or the columns changed on a later step."""
        if self._inspected is not None and self._inspected[1:] != self._token_key():
            self.choose(self._inspected[0])

    def _token_key(self) -> tuple[str, int, str | None]:
        plan = self.state.plan
        return plan.model, plan.max_seq_length, plan.columns

    @work(thread=True, exclusive=True, exit_on_error=False, group="dataset")
    def inspect(self, path: str, model: str, max_seq_length: int, columns: str | None) -> None:
        """Inspect a data file (streaming, so large files do not block the UI; a cancel stops it within a few
        hundred records); token lengths and the preview when the model's tokenizer is on this machine."""
        from lora_tui.core.dataset.preview import preview
        from lora_tui.core.dataset.report import InspectionCancelled, inspect_for_model
        from lora_tui.core.dataset.tokens import local_tokenizer

        worker = get_current_worker()

        def progress(event: Progress) -> None:
            if not event.final and not worker.is_cancelled:
                self.app.call_from_thread(self._show_progress, path, event)

        try:
            report = inspect_for_model(path, model, max_seq_length=max_seq_length, columns=columns,
                                       stop=lambda: worker.is_cancelled, progress=progress)
        except InspectionCancelled:
            return
        shown: tuple[Any, ...] = ()
        template = ""
        tokenizer = local_tokenizer(model)
        if tokenizer is not None and report.examples and not worker.is_cancelled:
            examples, template = preview(path, tokenizer, PREVIEW_EXAMPLES, columns=columns,
                                         max_seq_length=max_seq_length)
            shown = tuple(examples)
        if not worker.is_cancelled:
            self.post_message(DataInspected(path, report, shown, template))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Get tokenizer is offered only while the model's tokenizer is missing and the hub has it."""
        if action == "fetch_tokenizer":
            report = self.state.data_report
            return report is not None and report.token_stats is None and self._hub_repo() is not None
        return super().check_action(action, parameters)

    def _hub_repo(self) -> str | None:
        from lora_tui.core.dataset.tokens import hub_repo

        return hub_repo(self.state.plan.model)

    def action_fetch_tokenizer(self) -> None:
        """Fetch the model's tokenizer files from the hub, then measure the data with them."""
        repo = self._hub_repo()
        if repo is None or self._inspected is None:
            return
        self.query_one("#data-summary", Static).update(
            Text(_("Fetching the tokenizer files of {repo} (a few MB)…").format(repo=repo), style="dim"))
        self.fetch_tokenizer(repo, self._inspected[0])

    @work(thread=True, exclusive=True, exit_on_error=False, group="tokenizer")
    def fetch_tokenizer(self, repo: str, path: str) -> None:
        """The fetch itself, in a thread; a failure is one line on this screen, naming the model."""
        from lora_tui.core.dataset.tokens import get_tokenizer

        try:
            get_tokenizer(repo)
        except UserError as exc:
            self.app.call_from_thread(self._fetch_failed, str(exc), path)
            return
        self.app.call_from_thread(self.choose, path)

    def _fetch_failed(self, why: str, path: str) -> None:
        self.show_error(_("Tokenizer: {why}").format(why=why))
        self.choose(path)

    def _show_progress(self, path: str, event: Progress) -> None:
        """`Inspecting FILE: reading and tokenizing the data: 4.4 MiB of 5.7 MiB, about 2s left`, while it runs."""
        if self._inspecting is not None and self._inspected is not None and self._inspected[0] == path:
            self.query_one("#data-summary", Static).update(
                Text(_("Inspecting {path}: {progress} (Escape cancels)").format(path=path, progress=event.describe()),
                     style="dim"))

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
            row = self.query_one("#data-path").parent
            await self.query_one("#body").mount(tree, after=row if isinstance(row, Widget) else None)
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

    @on(ColumnsPicker.Chosen)
    def _columns_chosen(self, event: ColumnsPicker.Chosen) -> None:
        """Read the file again with the chosen mapping (None: the detected schema)."""
        try:
            self.state.update(columns=event.columns)
        except UserError as exc:
            self.show_error(_("Columns: {why}").format(why=exc))
            return
        if self._inspected is not None:
            self.choose(self._inspected[0])

    def choose(self, path: str) -> None:
        """Inspect `path`; the plan takes it once the inspection comes back."""
        path = os.path.expanduser(path.strip())
        if not path:
            self.show_error(_("Data: type a file path, or press ctrl+d for the built-in sample"))
            return
        self.clear_error()
        doing = _("Inspecting {path}… (Escape cancels)")
        if self.state.plan.model.strip().lower() == "demo" and demo_tokenizer_file() is None:
            doing = _("Inspecting {path} and building the demo tokenizer (once, a few seconds)… (Escape cancels)")
        self.query_one("#data-summary", Static).update(Text(doing.format(path=path), style="dim"))
        self._inspected = (path, *self._token_key())
        self._stop_deadline()
        self._inspecting = self.inspect(path, *self._token_key())
        self._deadline = self.set_timer(INSPECT_TIMEOUT_S, self._timed_out)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.stop()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        self._cancel(_("inspecting took longer than {seconds} s and was stopped").format(
            seconds=f"{INSPECT_TIMEOUT_S:.0f}"))

    def action_cancel_inspection(self) -> None:
        """Stop the running inspection (Escape)."""
        if self._inspecting is not None:
            self._cancel(_("inspection cancelled"))

    def _cancel(self, why: str) -> None:
        worker, self._inspecting = self._inspecting, None
        if worker is not None:
            worker.cancel()
        self._stop_deadline()
        path = self._inspected[0] if self._inspected else _("the file")
        self.query_one("#data-summary", Static).update(Text(_("Not inspected: {path}: {why}").format(
            path=path, why=why), style="yellow"))
        self.show_error(_("Data: {why}; choose another file, or press Enter to try again").format(why=why))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """An inspection that failed (a path that is not a data file): say so where the summary was."""
        if event.worker is self._inspecting and event.state in (WorkerState.ERROR, WorkerState.SUCCESS):
            self._inspecting = None
            self._stop_deadline()
            if event.state == WorkerState.ERROR:
                self.query_one("#data-summary", Static).update(Text(_("Not inspected"), style="yellow"))
        super().on_worker_state_changed(event)

    def on_data_inspected(self, message: DataInspected) -> None:
        """Show the report and keep the file in the plan."""
        report = message.report
        is_sample = Path(message.path).resolve() == SAMPLE_DATA_PATH.resolve()
        measured_for = self._inspected[1] if self._inspected is not None else self.state.plan.model
        self.state.set_inputs(data_report=report, data_model=measured_for)
        self.state.update(data=None if is_sample else message.path)
        if self._inspected is not None and self._inspected[0] == message.path:
            self._inspected = (message.path, *self._token_key())  # the lengths are compared with the plan's below
        self.query_one("#data-summary", Static).update(self._summary(report.at(self.state.plan.max_seq_length)))
        issues = Text()
        if report.issue_count:
            issues.append(_("{count} problem(s):\n").format(count=report.issue_count), style="bold red")
            for issue in report.issues:
                issues.append(f"  {issue}\n", style="red")
            if report.issue_count > len(report.issues):
                issues.append(_("  … and {count} more\n").format(count=report.issue_count - len(report.issues)),
                              style="red")
        self.query_one("#data-issues", Static).update(issues)
        detected = report.schema is not None and report.columns is not None
        title = _("Columns: {schema} ({columns})").format(schema=report.schema, columns=report.columns) if detected \
            else _("Columns: choose the fields to train on")
        self.query_one(ColumnsPicker).show(report.fields, report.columns, title,
                                           open_=not detected and bool(report.fields))
        self.query_one("#data-preview", Static).update(preview_text(message.preview, message.template))
        self.query_one("#data-notes", Static).update("\n".join(_(note) for note in report.notes))
        self.refresh_bindings()  # Get tokenizer comes and goes with the token statistics

    def _summary(self, report: Any) -> Text:
        from lora_tui.core.tables import describe_size_tier

        text = Text()
        text.append(_("✔ ready\n") if report.ok else _("✘ has problems\n"),
                    style="bold green" if report.ok else "bold red")
        schema = f"{report.schema} ({report.columns})" if report.columns else report.schema or _("not recognised")
        rows = [
            (_("Format"), f"{report.file_format} ({report.shape or _('no valid examples')})"),
            (_("Schema"), schema),
            (_("Examples"), f"{report.examples:,}"),
            (_("Size tier"), _("{tier}  {description}").format(
                tier=report.size_tier, description=describe_size_tier(report.size_tier)) if report.size_tier
             else "-"),
            (_("On disk"), fmt_bytes(report.bytes)),
        ]
        stats = report.token_stats
        if stats is not None:
            over = _("{over} over {length}").format(over=stats.over_max, length=stats.max_seq_length)
            if stats.first_over:
                over += _(" (first: {first}; they are cut at the end)").format(first=stats.first_over)
            rows.append((_("Tokens"), _("median {median}, p95 {p95}, max {max}; {over}").format(
                median=stats.median, p95=stats.p95, max=stats.max, over=over)))
            rows.append((_("Loss on"), _("{share} of the tokens").format(share=f"{stats.trained_token_share:.0%}")))
        else:
            model = self.state.plan.model
            if model.strip().lower() == "demo":
                how = _("building the demo tokenizer failed; see {path}").format(
                    path=display_path(cache_dir() / PREBUILD_LOG))
            elif self._hub_repo() is not None:
                how = _("ctrl+t fetches its tokenizer files, a few MB, not the weights")
            else:
                how = _("choose a model directory with tokenizer.json on the Task and model step")
            rows.append((_("Tokens"), _("not measured: `{model}`'s tokenizer is not on this machine ({how})").format(
                model=model, how=how)))
        for label, value in rows:
            text.append(f"{pad(label, 10, 'right')}  ", style="bold")
            text.append(f"{value}\n")
        return text

    def can_leave(self) -> bool:
        """Refuse to go on while the inspection runs, or while the chosen file has problems (they would fail the
        run later)."""
        if self._inspecting is not None:
            self.show_error(_("Data: still inspecting; wait, or press Escape to cancel"))
            return False
        report = self.state.data_report
        if report is not None and not report.ok:
            self.show_error(_("Data: {count} problem(s) in {path}; fix them, choose the columns, or choose another "
                              "file (ctrl+d: sample)").format(count=report.issue_count, path=report.path))
            return False
        return True
