"""The run monitor: log tail, loss curve, lr and grad norm, progress, GPU, troubleshooting, end summary.

Everything comes from the run directory's files (run.log, metrics.jsonl, status.json, run.toml), read
incrementally by a `RunFollower` in a thread worker on a timer, so a run writing thousands of log lines a second
costs one message per poll and the log pane never holds more than LOG_LINES_KEPT lines. Before a demo run's
first step the same worker reads how far the demo model's build has got (`core.demo_progress`).

The log pane wraps long lines and keeps to its end (`WrappedLog`). The advice and the summary are shown in
full on a tall screen and in one line each on a short one (`d` switches), so at 80x24 the log keeps its lines;
a run of several machines shows each GPU's peak memory under its status on a tall screen, every machine's in one
line on a short one (each GPU's, and a failed run's whole error, then above the advice with `d`). The words are
`monitor_text`'s.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, ProgressBar, Sparkline, Static

from lora_tui.core import demo_progress, follow, runs
from lora_tui.core.demo_progress import BuildProgress
from lora_tui.core.paths import cache_dir
from lora_tui.core.plan import TrainingPlan, read_run_plan
from lora_tui.core.run_files import MetricsRecord, best_eval, finite, one_history
from lora_tui.core.run_world import last_ranks, world_of
from lora_tui.i18n import N_, _, pgettext
from lora_tui.ui.format import display_path, fmt_bytes, fmt_metric
from lora_tui.ui.messages import GpusSampled, RunLaunched, RunPolled
from lora_tui.ui.screens import monitor_text as words
from lora_tui.ui.screens.base import AppScreen
from lora_tui.ui.widgets.chart import LineChart, Mark, Series
from lora_tui.ui.widgets.wrapped_log import WrappedLog

SHORT_HEIGHT = 32
"""Below this many rows the advice and the summary are shown in one line each (until `d` is pressed)."""
LOG_MIN_ROWS = 6
"""Rows the log pane keeps below the advice and the summary on a narrow screen (4 lines and its border)."""


def demo_model_building() -> bool:
    """True while a training process builds the demo model (its temporary build directory is in the cache)."""
    return bool(demo_progress.build_dirs())


class BuildPolled(Message):
    """How far the demo model's build has got (None: no build under way)."""

    def __init__(self, progress: BuildProgress | None) -> None:
        super().__init__()
        self.progress = progress


class MonitorScreen(AppScreen):
    """Watch one run directory; stop, resume, and turn a diagnosed remedy into a new run."""

    BINDINGS = [
        Binding("s", "stop", N_("Stop"), tooltip=N_("Save a checkpoint and stop at the next step"), id="stop"),
        Binding("r", "resume", N_("Resume"), tooltip=N_("Continue a stopped run from its last checkpoint"),
                id="resume"),
        Binding("a", "apply", N_("Apply remedy"), tooltip=N_("Make a new run configuration from the remedy"),
                id="apply"),
        Binding("o", "open_adapter", N_("Adapter"), tooltip=N_("Open this run's adapter on the Adapters screen"),
                id="open-adapter"),
        Binding("d", "toggle_details", N_("Details"), tooltip=N_("Show the advice and the summary in full, or in "
                                                                 "one line each (the log gets the room)"),
                id="details"),
        Binding("escape", "app.back", N_("Back"), tooltip=N_("Leave the monitor (the run keeps going)"), id="leave"),
    ]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (SHORT_HEIGHT, "-tall")]

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        """The run directory watched."""
        self.follower = follow.RunFollower(self.run_dir)
        """Incremental reader of the run's files."""
        self.metrics: list[MetricsRecord] = []
        """Every metrics record seen, in order."""
        self.status: runs.RunStatus | None = None
        """The latest status.json."""
        self.symptoms: list[Any] = []
        """What `core.symptoms.diagnose` sees in the metrics now."""
        self.build: BuildProgress | None = None
        """The demo model's build progress, while the run waits for it."""
        self._lock = threading.Lock()
        self._plan: TrainingPlan | None = None

    def compose(self) -> ComposeResult:
        """Status and progress on top, curves and advice, the log pane."""
        yield Header(show_clock=False)
        yield Static("", id="mon-status")
        with Horizontal(id="mon-progress-row"):
            yield ProgressBar(id="mon-progress", show_eta=False, show_percentage=True)
            yield Static("", id="mon-progress-text")
        with Horizontal(id="mon-main"):
            with Vertical(id="mon-left"):
                yield LineChart(id="loss-chart")
                with Horizontal(classes="spark-row"):
                    yield Static(pgettext("sparkline", "lr"), classes="spark-label", id="lr-label")
                    yield Sparkline([], id="lr-spark")
                with Horizontal(classes="spark-row"):
                    yield Static(pgettext("sparkline", "grad"), classes="spark-label", id="gn-label")
                    yield Sparkline([], id="gn-spark")
                yield Static("", id="mon-gpu", classes="-blank")
                with VerticalScroll(id="mon-notes"):
                    for name in ("mon-details", "mon-advice", "mon-advice-brief", "mon-summary", "mon-summary-brief"):
                        yield Static("", id=name, classes="-blank")
            yield WrappedLog(max_lines=follow.LOG_LINES_KEPT, id="mon-log")
        yield Footer()

    def on_mount(self) -> None:
        """Read what is there now, then poll on a timer."""
        self.query_one("#mon-status", Static).update(_("Run {run}").format(run=self.run_dir))
        self.poll()
        self.set_interval(self.tui.poll_interval, self.poll)
        gpu_interval = getattr(self.app, "gpu_interval", 0)
        if gpu_interval > 0:
            self.sample_gpus()
            self.set_interval(gpu_interval, self.sample_gpus)

    # ---- workers ----------------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="follow")
    def poll(self) -> None:
        """Read the run's new log lines, metrics and status (skipped while the previous read still runs)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self.post_message(RunPolled(self.follower.poll()))
            if self._waits_for_demo():
                self.post_message(BuildPolled(demo_progress.current_build()))
            elif self.build is not None:
                self.post_message(BuildPolled(None))
        finally:
            self._lock.release()

    def _waits_for_demo(self) -> bool:
        """True while no step has been logged by a run of the demo model that is starting or running."""
        if self.metrics:
            return False
        state = self.status.effective_state() if self.status is not None else "starting"
        plan = self.plan()
        return state in ("starting", "running") and plan is not None and plan.model.strip().lower() == "demo"

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpus")
    def sample_gpus(self) -> None:
        """Live GPU memory and utilisation."""
        gpus, status = self.tui.gpu_query()
        self.post_message(GpusSampled(tuple(gpus), status))

    @work(thread=True, exclusive=True, exit_on_error=False, group="launch")
    def relaunch(self) -> None:
        """Resume this run from its last complete checkpoint: its run.toml resolved as `lora-tui train --resume`
        resolves it."""
        from lora_tui.core.launcher import resolve_plan

        resolved = resolve_plan({"output": str(self.run_dir)}, resume=True)
        launched = self.tui.launcher(resolved, overwrite=False, resume=True)
        self.post_message(RunLaunched(Path(launched.run_dir), getattr(launched, "pid", None)))

    # ---- handlers ---------------------------------------------------------------------------------------

    def on_run_polled(self, message: RunPolled) -> None:
        """Append the log, extend the curves, refresh progress, advice and summary."""
        poll = message.poll
        if poll.lines:
            self.query_one("#mon-log", WrappedLog).write_lines(poll.lines)
        if poll.metrics:
            self.metrics = one_history([*self.metrics, *poll.metrics])  # a resume drops the discarded steps
            self._show_curves()
        if poll.status is not None:
            self.status = poll.status
        if poll.metrics or poll.status is not None:
            self._show_progress()
            self._diagnose()
            self._show_summary()
            self.call_after_refresh(self._fit_notes)

    def on_resize(self) -> None:
        """A new terminal size: the status lines in full or brief, the advice and the summary get what the log
        can spare."""
        self.call_after_refresh(self._show_progress)
        self.call_after_refresh(self._fit_notes)

    def _fit_notes(self) -> None:
        """On a narrow (stacked) layout, the advice and the summary scroll in what is left above the log's
        LOG_MIN_ROWS rows, however tall the status lines above them are; side by side they take the column."""
        found = self.query("#mon-notes").results(VerticalScroll)
        notes = next(found, None) if self.is_attached else None
        if notes is None:  # the screen was left, or is being composed again, before this ran
            return
        if not self.has_class("-narrow"):
            limit = None
        else:
            left = self.query_one("#mon-left", Vertical)
            above = sum(w.outer_size.height for w in left.children if w.display and w is not notes)
            limit = max(1, self.query_one("#mon-main").size.height - above - LOG_MIN_ROWS)
        current = notes.styles.max_height
        if (current.value if current is not None else None) != limit:
            notes.styles.max_height = limit

    def on_build_polled(self, message: BuildPolled) -> None:
        """Show how far the demo model's build has got (or that it is done)."""
        if message.progress != self.build:
            self.build = message.progress
            self._show_progress()

    def on_gpus_sampled(self, message: GpusSampled) -> None:
        """Show each GPU's memory and utilisation."""
        if not message.gpus:
            self._put("#mon-gpu", Text(_("GPU: none ({status})").format(status=_(message.status)), style="dim"))
            return
        parts = []
        for gpu in message.gpus:
            util = getattr(gpu, "utilization_pct", None)
            parts.append(f"GPU{gpu.index} {fmt_bytes(gpu.used_bytes)}/{fmt_bytes(gpu.total_bytes)}"
                         + ("" if util is None else f" {util}%"))
        self._put("#mon-gpu", "  ".join(parts))

    def on_run_launched(self, message: RunLaunched) -> None:
        """The run was resumed: keep following the same directory."""
        self.notify(_("Resumed (pid {pid}).").format(pid=message.pid), title=_("Run"))

    # ---- views ------------------------------------------------------------------------------------------

    def _show_curves(self) -> None:
        train = [(m.step, m.loss) for m in self.metrics if m.loss is not None and math.isfinite(m.loss)]
        evals = [(m.step, m.eval_loss) for m in self.metrics
                 if m.eval_loss is not None and math.isfinite(m.eval_loss)]
        data = [Series(_("train"), tuple(v for _s, v in train), "bold cyan", steps=tuple(s for s, _v in train))]
        if evals:
            data.append(Series(_("eval"), tuple(v for _s, v in evals), "bold magenta",
                               steps=tuple(s for s, _v in evals)))
        chart = self.query_one("#loss-chart", LineChart)
        chart.data = tuple(data)
        best = best_eval(self.metrics)
        chart.mark = Mark(best[0], best[1], words.best_eval_text(best), short=f"{best[1]:.4f} @ {best[0]}") \
            if best is not None else None
        for key, values, label in (("lr", finite(m.learning_rate for m in self.metrics), pgettext("sparkline", "lr")),
                                   ("gn", finite(m.grad_norm for m in self.metrics), pgettext("sparkline", "grad"))):
            self.query_one(f"#{key}-spark", Sparkline).data = values[-200:]
            self.query_one(f"#{key}-label", Static).update(f"{label} {fmt_metric(values[-1] if values else None)}")

    def _show_progress(self) -> None:
        status = self.status
        last = self.metrics[-1] if self.metrics else MetricsRecord()
        logged = last.step
        step = max(status.step, logged) if status else logged  # a resumed run's status restarts at 0
        max_steps = status.max_steps if status else None
        state = status.effective_state() if status else "waiting"
        bar = self.query_one("#mon-progress", ProgressBar)
        if self.build is not None and not self.metrics:  # the run waits for the demo model: the build's progress
            bar.update(total=self.build.total if self.build.stage == "pretraining" else None, progress=self.build.step)
            self.query_one("#mon-progress-text", Static).update(self.build.describe())
        else:
            bar.update(total=max_steps or None, progress=step)
            self.query_one("#mon-progress-text", Static).update(
                words.step_text(step, max_steps, last, state, self._elapsed()))
        short, ranks = self.has_class("-short"), last_ranks(self.metrics)
        self.query_one("#mon-status", Static).update(words.status_head(
            str(self.run_dir), state, pid=status.pid if status else None, error=status.error if status else None,
            memory=self._memory_text(), world=world_of(status, self.plan()), ranks=ranks, brief=short,
            cells=self.size.width - 2 if self.size.width > 2 else words.ERROR_CELLS))
        # on a short screen the whole error and each GPU's memory are details (`d`), above the advice, so the
        # status keeps to a few lines
        details = short and self.details_shown()
        self._put("#mon-details", words.details_text(status.error if status else None, ranks) if details else "")

    def _memory_text(self) -> str | None:
        """Estimated against measured peak memory, once the run has measured it (status.json's `memory`)."""
        measured = self.status.extra.get("memory") if self.status is not None else None
        if not isinstance(measured, dict):
            return None
        from lora_tui.core import run_files
        from lora_tui.core.memory_check import memory_line

        launch = run_files.read_launch_info(self.run_dir)
        return memory_line(launch.memory_estimate if launch is not None else None, measured)

    def _elapsed(self) -> float | None:
        status = self.status
        if status is None or status.started_at is None:
            return None
        end = status.ended_at if status.ended_at is not None else time.time()
        return max(0.0, end - status.started_at)

    def _diagnose(self) -> None:
        from lora_tui.core.symptoms import diagnose

        plan = self.plan()
        self.symptoms = diagnose(self.metrics, status=self.status, plan=plan)
        self._put("#mon-advice", words.advice_text(self.symptoms, plan))
        self._put("#mon-advice-brief", words.advice_brief(self.symptoms, plan))

    def _show_summary(self) -> None:
        status = self.status
        if status is None or status.effective_state() not in (*runs.FINAL_STATES, "lost"):
            self._put("#mon-summary", self._waiting_note())
            self._put("#mon-summary-brief", self._waiting_note(brief=True))
            return
        outcome = self.outcome()
        self._put("#mon-summary", words.summary_text(outcome))
        self._put("#mon-summary-brief", words.summary_brief(outcome))

    def _put(self, selector: str, text: Text | str) -> None:
        """Show text in a Static; an empty one takes no row (class `-blank`)."""
        widget = self.query_one(selector, Static)
        widget.update(text)
        widget.set_class(not str(text).strip(), "-blank")

    def outcome(self) -> words.RunOutcome:
        """What the end-of-run summary says (once the status is final)."""
        from lora_tui.core.run_files import read_training_info

        status = self.status or runs.RunStatus()
        losses = finite(m.loss for m in self.metrics)
        adapter = self.adapter_path()
        info = read_training_info(self.run_dir) if adapter is not None else None
        from lora_tui.core.adapter_report import adapter_choice_line

        adapter_from = adapter_choice_line(info.adapter_step, info.adapter_kept, info.adapter_eval_loss) \
            if info is not None else None
        return words.RunOutcome(
            state=status.effective_state(), steps=status.step, elapsed=follow.format_duration(self._elapsed()),
            final_loss=losses[-1] if losses else None, best_loss=min(losses) if losses else None,
            best_eval=best_eval(self.metrics), adapter=display_path(adapter) if adapter is not None else None,
            adapter_from=adapter_from, checkpoint=status.last_checkpoint)

    def _waiting_note(self, *, brief: bool = False) -> Text:
        """While no step has been logged yet: what the starting process is doing (in one line with `brief`)."""
        if self.metrics or self.status is None or self.status.effective_state() not in ("starting", "running"):
            return Text("")
        plan = self.plan()
        building = plan is not None and plan.model.strip().lower() == "demo" and demo_model_building()
        return words.waiting_note(building, str(cache_dir()), brief=brief)

    def adapter_path(self) -> Path | None:
        """Where the run's adapter is, once written."""
        status = self.status
        if status is not None and status.adapter_dir:
            path = Path(status.adapter_dir)
            path = path if path.is_absolute() else (self.run_dir / path)
            if runs.is_adapter_dir(path):
                return path.resolve()
        return self.run_dir.resolve() if runs.is_adapter_dir(self.run_dir) else None

    # ---- actions ----------------------------------------------------------------------------------------

    def plan(self) -> TrainingPlan | None:
        """The run's plan, read from its run.toml (None when missing or unreadable)."""
        if self._plan is None:
            self._plan = read_run_plan(self.run_dir / runs.RUN_FILE)
        return self._plan

    def action_stop(self) -> None:
        """Ask the run to save a checkpoint and stop."""
        if runs.request_stop(self.run_dir):
            self.notify(_("Stop requested: the run saves a checkpoint and stops at its next step."), title=_("Run"))
        else:
            self.notify(_("The run is not running."), severity="warning")

    def action_resume(self) -> None:
        """Continue the run from its last complete checkpoint."""
        plan = self.plan()
        state = self.status.effective_state() if self.status else None
        if state in ("running", "starting"):
            self.notify(_("The run is still going."), severity="warning")
        elif plan is None or runs.latest_complete_checkpoint(self.run_dir) is None:
            self.notify(_("Nothing to resume: no run file or no complete checkpoint."), severity="warning")
        else:
            self.relaunch()

    def action_apply(self) -> None:
        """Turn the first diagnosed remedy into a new run configuration on the review screen."""
        changes: dict[str, Any] = {}
        reason = ""
        if self.symptoms:
            changes, reason = self.symptoms[0].changes, self.symptoms[0].title
        elif self.status is not None and self.status.next_settings:
            changes, reason = dict(self.status.next_settings), _("out of memory")
        if not changes:
            self.notify(_("No remedy to apply."), severity="warning")
            return
        shown = words.describe_changes(changes, self.plan())
        self.tui.review_with(changes, reason=_("{reason}: {changes}").format(reason=reason, changes=shown),
                             base=self.plan())

    def details_shown(self) -> bool:
        """True when the advice and the summary are shown in full (tall screens, or after `d`)."""
        if self.has_class("-expanded") or self.has_class("-collapsed"):
            return self.has_class("-expanded")
        return not self.has_class("-short")

    def action_toggle_details(self) -> None:
        """Show the advice and the summary in full, or in one line each."""
        full = not self.details_shown()
        self.set_class(full, "-expanded")
        self.set_class(not full, "-collapsed")
        self._show_progress()
        self.call_after_refresh(self._fit_notes)

    async def action_open_adapter(self) -> None:
        """Open the Adapters screen with this run's adapter selected (to read it, try it, merge it)."""
        from textual.widgets import DataTable

        from lora_tui.ui.screens.adapters import AdaptersScreen

        adapter = self.adapter_path()
        if adapter is None:
            self.notify(_("No adapter yet: it is written when the run ends (or at a stop)."), severity="warning")
            return
        screen = AdaptersScreen(runs_root=self.tui.runs_root)
        await self.tui.push_screen(screen)
        table = screen.query_one("#adapter-list", DataTable)
        for index, (path, info) in enumerate(screen.adapters.items()):
            if Path(info.run_dir).resolve() == self.run_dir.resolve() or Path(path).resolve() == adapter:
                table.move_cursor(row=index)
                return
        screen.set_status(_("This run is outside the runs root {root}, which the Adapters screen lists.").format(
            root=display_path(self.tui.runs_root)), error=True)
