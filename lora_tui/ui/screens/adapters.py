"""The Adapters screen: every adapter under the runs root, its details, base vs adapter answers, and merge.

One base model stays loaded while you move between adapters of that base (they are added with
`load_adapter` and chosen with `set_adapter`); a different base replaces it. Loading, generating and merging run
in thread workers; answers stream into the two panes token by token. The model stack is imported only inside
those workers. Every wait (loading the base and the adapter, generating, merging) shows a bar with what it is
doing, how far it is and about how long is left (`core.progress`); ctrl+t stops it where that is safe: an answer
at its next token, a merge before its final rename (nothing is written then).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Input, ProgressBar, Static

from lora_tui.core.adapter_report import format_details
from lora_tui.core.adapters import AdapterInfo, describe_adapter, find_adapters
from lora_tui.core.progress import Cancelled, Progress, ProgressTracker
from lora_tui.i18n import N_, _, pgettext
from lora_tui.ui.messages import AdapterDescribed, AdapterStatus, AnswerChunk
from lora_tui.ui.screens.base import AppScreen
from lora_tui.ui.widgets.fit_table import fill_fitted

LIST_HEADER = (N_("State"), "r", "alpha", N_("Loss"), N_("Adapter"))
"""The adapter list's columns; the name last, where a long one wraps."""
NARROW_LIST = 44
"""Below this width the list leaves out r and alpha (the details pane shows them), so the name keeps room."""


@dataclass
class ProgressTold(Message):
    """A worker's progress event (`core.progress.Progress`)."""

    event: Progress


class AdaptersScreen(AppScreen):
    """List, details, side-by-side answers and merge for the adapters under `runs_root`."""

    CSS_PATH = "../adapters.tcss"
    BINDINGS = [
        Binding("ctrl+r", "refresh", N_("Refresh"), tooltip=N_("Scan the runs root again"), id="adapters.refresh"),
        Binding("ctrl+g", "merge", N_("Merge"), tooltip=N_("Merge the selected adapter into its base (sibling "
                                                              "directory NAME-merged)"), id="adapters.merge"),
        Binding("ctrl+t", "stop", N_("Stop"), tooltip=N_("Stop the answer at its next token, or the merge before it "
                                                         "writes anything"), id="adapters.stop"),
        Binding("escape", "back", N_("Back"), tooltip=N_("Leave the Adapters screen"), id="adapters.back"),
        Binding("up", "select(-1)", N_("Previous adapter"), show=False, id="adapters.up"),
        Binding("down", "select(1)", N_("Next adapter"), show=False, id="adapters.down"),
    ]

    def __init__(self, runs_root: Path, *, max_new_tokens: int = 128, device: str = "auto",
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.runs_root = Path(runs_root)
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.adapters: dict[str, AdapterInfo] = {}
        self.answers: dict[str, str] = {"base": "", "adapter": ""}
        self.session: Any = None
        self.merged: list[str] = []
        self.progress: list[Progress] = []
        """Every progress event shown, oldest first (what the bar and its line told)."""
        self._model_lock = threading.Lock()
        self._cancel = threading.Event()

    # ---- layout ---------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """List and details on top, the prompt, then the two answer panes."""
        yield Header(show_clock=False)
        with Horizontal(id="adapters-top"):
            yield DataTable(id="adapter-list", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="adapter-details-box"):
                yield Static(_("Select an adapter."), id="adapter-details")
        yield Input(placeholder=_("Ask the base model and the selected adapter (Enter)"), id="adapter-prompt")
        with Horizontal(id="adapter-answers"):
            with Vertical(classes="answer-pane"):
                yield Static("", id="answer-base")
            with Vertical(classes="answer-pane"):
                yield Static("", id="answer-adapter")
        with Horizontal(id="adapter-progress-row"):
            yield ProgressBar(id="adapter-progress", show_eta=False)
            yield Static("", id="adapter-progress-text")
        yield Static("", id="adapter-status")
        yield Footer()

    def on_mount(self) -> None:
        """Fill the list."""
        self.query_one("#adapter-progress-row").display = False
        self.query_one("#answer-base").border_title = _("base model")
        self.query_one("#answer-adapter").border_title = _("adapter")
        self.action_refresh()
        self.query_one("#adapter-prompt", Input).focus()  # type a question at once; up/down pick the adapter

    def action_select(self, delta: int) -> None:
        """Move the adapter list's cursor while the prompt keeps the focus."""
        table = self.query_one("#adapter-list", DataTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + delta)))

    def action_refresh(self) -> None:
        """Scan the runs root again."""
        self.adapters = {a.path: a for a in find_adapters(self.runs_root)}
        self._fill_list()
        if not self.adapters:
            self.set_status(_("No adapters under {root}. Train one first.").format(root=self.runs_root))

    def _fill_list(self) -> None:
        table = self.query_one("#adapter-list", DataTable)
        width = table.size.width or self.size.width * 2 // 5
        keep = [0, 3, 4] if width < NARROW_LIST else [0, 1, 2, 3, 4]
        rows = [(info.path, [cells[i] for i in keep]) for info in self.adapters.values()
                for cells in [[pgettext("run state", info.state) if info.state else "-", str(info.r or "-"),
                               "-" if info.lora_alpha is None else f"{info.lora_alpha:g}",
                               "-" if info.final_loss is None else f"{info.final_loss:.3f}", info.name]]]
        fill_fitted(table, [_(LIST_HEADER[i]) for i in keep], rows, width=width)

    def on_resize(self, event: events.Resize) -> None:
        """Fit the list to the new width."""
        if self.adapters:
            self.call_after_refresh(self._fill_list)

    def action_back(self) -> None:
        """Return to the previous screen."""
        if len(self.tui.screen_stack) > 1:
            self.tui.pop_screen()

    @property
    def selected(self) -> AdapterInfo | None:
        """The highlighted adapter."""
        table = self.query_one("#adapter-list", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.adapters.get(str(key))

    def set_status(self, text: str, *, error: bool = False) -> None:
        """Show a status or an inline error line."""
        self.query_one("#adapter-status", Static).update(Text(text, style="bold red" if error else ""))

    # ---- details ----------------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#adapter-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.describe(str(event.row_key.value))

    @work(thread=True, exclusive=True, exit_on_error=False, group="adapter-details")
    def describe(self, path: str) -> None:
        """Read the adapter's config, files and training info (lora_math may build an inventory)."""
        self.post_message(AdapterDescribed(path, format_details(describe_adapter(path))))

    def on_adapter_described(self, message: AdapterDescribed) -> None:
        """Show the details of the still-selected adapter."""
        if self.selected is not None and self.selected.path == message.path:
            self.query_one("#adapter-details", Static).update(Text("\n".join(message.lines)))

    # ---- answers ----------------------------------------------------------------------------------------

    @on(Input.Submitted, "#adapter-prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        info = self.selected
        if not event.value.strip():
            return
        if info is None or not info.has_adapter:
            self.set_status(_("Select a loadable adapter first (its state shows why it is not)."), error=True)
            return
        self.ask(info.path, event.value.strip())

    def _tracker(self) -> ProgressTracker:
        """A tracker for a new wait: its events come to `on_progress_told`, ctrl+t sets its cancel."""
        self._cancel = threading.Event()
        return ProgressTracker(self._tell, self._cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="adapter-model")
    def ask(self, path: str, prompt: str) -> None:
        """Load the adapter onto the (shared) base if needed, then stream the base and adapter answers."""
        from lora_tui.inference.session import GenerationSettings

        tracker = self._tracker()
        try:
            with self._model_lock:
                name = self._ensure_loaded(path, tracker)
                settings = GenerationSettings(max_new_tokens=self.max_new_tokens)
                for column, adapter in (("base", None), ("adapter", name)):
                    if tracker.cancel.is_set():
                        break
                    self.post_message(AnswerChunk(column, "", replace=True))
                    text = self.session.answer(prompt, adapter, settings, tracker=tracker,
                                               on_text=lambda t, c=column: self.post_message(AnswerChunk(c, t)))
                    self.post_message(AnswerChunk(column, text, replace=True))
        except BaseException:
            tracker.finish(cancelled=tracker.cancel.is_set())
            raise
        stopped = tracker.cancel.is_set()
        tracker.finish(_("answered"), cancelled=stopped)
        self.post_message(AdapterStatus(_("stopped: the answer so far is shown") if stopped else
                                        _("answered with base {base} and adapter {adapter}").format(
                                            base=self.session.base_dir.name, adapter=name)))

    def _ensure_loaded(self, path: str, tracker: ProgressTracker) -> str:
        """Adapter name in the session; the base is loaded only when it differs from the loaded one."""
        from lora_tui.inference.session import AdapterSession, resolve_base

        base_dir = resolve_base(path)
        if self.session is None or self.session.base_dir != base_dir:
            self.session = None
            self.session = AdapterSession(base_dir, device=self.device, tracker=tracker)
        return str(self.session.add(path, tracker=tracker))

    def on_answer_chunk(self, message: AnswerChunk) -> None:
        """Append streamed text to its pane."""
        current = "" if message.replace else self.answers[message.column]
        self.answers[message.column] = current + message.text
        self.query_one(f"#answer-{message.column}", Static).update(Text(self.answers[message.column]))

    def on_adapter_status(self, message: AdapterStatus) -> None:
        """Show worker progress."""
        self.set_status(message.text)

    # ---- merge ------------------------------------------------------------------------------------------

    def action_merge(self) -> None:
        """Merge the selected adapter into a new sibling directory NAME-merged (NAME-merged-2, … when that one is
        taken: the TUI never replaces a directory)."""
        from lora_tui.core.paths import free_run_dir

        info = self.selected
        if info is None or not info.has_adapter:
            self.set_status(_("Select a loadable adapter to merge."), error=True)
            return
        run = Path(info.run_dir)
        self.merge(info.path, str(free_run_dir(run.parent, run.name + "-merged")))

    @work(thread=True, exclusive=True, exit_on_error=False, group="adapter-merge")
    def merge(self, path: str, output: str) -> None:
        """Plan the memory, merge, save; the progress goes to the bar."""
        from lora_tui.inference.merge import merge_adapter

        self._cancel = threading.Event()
        try:
            result = merge_adapter(path, output, device="auto", cancel=self._cancel, progress=self._tell)
        except Cancelled:
            self.post_message(AdapterStatus(_("merge stopped: nothing was written to {path}").format(path=output)))
            return
        self.merged.append(result.output)
        done = _("merged into {path} ({dtype} on {device}, {seconds} s); note: {note}") if result.note else \
            _("merged into {path} ({dtype} on {device}, {seconds} s)")
        self.post_message(AdapterStatus(done.format(path=result.output, dtype=result.plan.dtype,
                                                    device=result.plan.device, seconds=f"{result.seconds:.1f}",
                                                    note=result.note)))

    # ---- progress ---------------------------------------------------------------------------------------

    def _tell(self, event: Progress) -> None:
        """Hand a worker's progress event to the screen (any thread)."""
        self.post_message(ProgressTold(event))

    def on_progress_told(self, message: ProgressTold) -> None:
        """Show what the worker does, how far it is and the time left; the bar goes once the wait is over."""
        event = message.event
        self.progress.append(event)
        row = self.query_one("#adapter-progress-row")
        row.display = not event.final
        bar = self.query_one("#adapter-progress", ProgressBar)
        bar.update(total=event.total, progress=event.done)
        self.query_one("#adapter-progress-text", Static).update(event.describe())
        if not event.final:
            self.set_status(_("ctrl+t stops it"))

    def action_stop(self) -> None:
        """Stop the answer at its next token, or the merge at its next safe point (before the final rename)."""
        if self.query_one("#adapter-progress-row").display:
            self._cancel.set()
            self.set_status(_("stopping…"))
        else:
            self.set_status(_("Nothing to stop."))

    # ---- failures ---------------------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """A worker's failure (the app's one handler calls this): on the status line."""
        self.set_status(message, error=True)
