"""The run monitor: log tail, loss curve, lr and grad norm, progress, GPU, troubleshooting, end summary.

Everything comes from the run directory's files (run.log, metrics.jsonl, status.json, run.toml), read
incrementally by a `RunFollower` in a thread worker on a timer, so a run writing thousands of log lines a second
costs one message per poll and the log pane never holds more than LOG_LINES_KEPT lines.
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
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Log, ProgressBar, Sparkline, Static

from lora_tui.core import follow, runs
from lora_tui.core.paths import cache_dir
from lora_tui.core.plan import TrainingPlan, load_run_file
from lora_tui.core.run_files import MetricsRecord, finite, one_history
from lora_tui.errors import UserError
from lora_tui.ui.format import display_path, fmt_bytes, fmt_metric, fmt_value
from lora_tui.ui.messages import GpusSampled, RunLaunched, RunPolled
from lora_tui.ui.screens.base import AppScreen
from lora_tui.ui.widgets.chart import LineChart, Series

STATE_STYLE = {"running": "bold green", "starting": "bold", "finished": "bold cyan", "stopped": "bold yellow",
               "failed": "bold red", "oom": "bold red", "lost": "bold red"}
"""Colour of each run state."""


def demo_model_building() -> bool:
    """True while a training process builds the demo model (its temporary build directory is in the cache)."""
    try:
        return any(p.is_dir() for p in cache_dir().glob(".demo-model.*"))
    except OSError:
        return False


class MonitorScreen(AppScreen):
    """Watch one run directory; stop, resume, and turn a diagnosed remedy into a new run."""

    BINDINGS = [
        Binding("s", "stop", "Stop", tooltip="Save a checkpoint and stop at the next step", id="stop"),
        Binding("r", "resume", "Resume", tooltip="Continue a stopped run from its last checkpoint", id="resume"),
        Binding("a", "apply", "Apply remedy", tooltip="Make a new run configuration from the remedy", id="apply"),
        Binding("escape", "app.back", "Back", tooltip="Leave the monitor (the run keeps going)", id="leave"),
    ]

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
                    yield Static("lr", classes="spark-label", id="lr-label")
                    yield Sparkline([], id="lr-spark")
                with Horizontal(classes="spark-row"):
                    yield Static("grad", classes="spark-label", id="gn-label")
                    yield Sparkline([], id="gn-spark")
                yield Static("", id="mon-gpu")
                yield Static("", id="mon-advice")
                yield Static("", id="mon-summary")
            yield Log(max_lines=follow.LOG_LINES_KEPT, id="mon-log", auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        """Read what is there now, then poll on a timer."""
        self.query_one("#mon-status", Static).update(f"Run {self.run_dir}")
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
        finally:
            self._lock.release()

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
            self.query_one("#mon-log", Log).write_lines(poll.lines)
        if poll.metrics:
            self.metrics = one_history([*self.metrics, *poll.metrics])  # a resume drops the discarded steps
            self._show_curves()
        if poll.status is not None:
            self.status = poll.status
        if poll.metrics or poll.status is not None:
            self._show_progress()
            self._diagnose()
            self._show_summary()

    def on_gpus_sampled(self, message: GpusSampled) -> None:
        """Show each GPU's memory and utilisation."""
        if not message.gpus:
            self.query_one("#mon-gpu", Static).update(Text(f"GPU: none ({message.status})", style="dim"))
            return
        parts = []
        for gpu in message.gpus:
            util = getattr(gpu, "utilization_pct", None)
            parts.append(f"GPU{gpu.index} {fmt_bytes(gpu.used_bytes)}/{fmt_bytes(gpu.total_bytes)}"
                         + ("" if util is None else f" {util}%"))
        self.query_one("#mon-gpu", Static).update("  ".join(parts))

    def on_run_launched(self, message: RunLaunched) -> None:
        """The run was resumed: keep following the same directory."""
        self.notify(f"Resumed (pid {message.pid}).", title="Run")

    # ---- views ------------------------------------------------------------------------------------------

    def _show_curves(self) -> None:
        train = tuple(finite(m.loss for m in self.metrics))
        evals = tuple(finite(m.eval_loss for m in self.metrics))
        data = [Series("train", train, "bold cyan")]
        if evals:
            data.append(Series("eval", evals, "bold magenta"))
        self.query_one("#loss-chart", LineChart).data = tuple(data)
        for key, values, label in (("lr", finite(m.learning_rate for m in self.metrics), "lr"),
                                   ("gn", finite(m.grad_norm for m in self.metrics), "grad")):
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
        bar.update(total=max_steps or None, progress=step)
        text = Text()
        text.append(f"step {step}/{max_steps or '?'}")
        if last.epoch is not None and math.isfinite(last.epoch):
            text.append(f" · epoch {last.epoch:.2f}")
        if last.tokens_per_second is not None and math.isfinite(last.tokens_per_second):
            text.append(f" · {last.tokens_per_second:,.0f} tok/s")
        elapsed = self._elapsed()
        text.append(f" · {follow.format_duration(elapsed)}")
        if state in ("running", "starting"):
            eta = follow.eta_seconds(step, max_steps, elapsed)
            text.append(f" · ETA {follow.format_duration(eta)}")
        self.query_one("#mon-progress-text", Static).update(text)
        head = Text.assemble(("Run ", "bold"), str(self.run_dir), "  ", (state, STATE_STYLE.get(state, "bold")))
        if status and status.pid and state in ("running", "starting"):
            head.append(f"  pid {status.pid}", style="dim")
        if status and status.error:
            head.append(f"\n{status.error}", style="red")
        memory = self._memory_text()
        if memory:
            head.append(f"\nmemory: {memory}", style="dim")
        self.query_one("#mon-status", Static).update(head)

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

        self.symptoms = diagnose(self.metrics, status=self.status, plan=self.plan())
        text = Text()
        for symptom in self.symptoms:
            text.append(f"⚠ {symptom.title}: ", style="bold yellow")
            text.append(f"{symptom.evidence}\n")
            if symptom.remedies:
                text.append(f"  remedy: {symptom.remedies[0].description}  (a: new run with it)\n", style="italic")
        self.query_one("#mon-advice", Static).update(text)

    def _show_summary(self) -> None:
        status = self.status
        if status is None or status.effective_state() not in (*runs.FINAL_STATES, "lost"):
            self.query_one("#mon-summary", Static).update(self._waiting_note())
            return
        losses = finite(m.loss for m in self.metrics)
        evals = finite(m.eval_loss for m in self.metrics)
        text = Text()
        text.append(f"Run {status.effective_state()}", style=STATE_STYLE.get(status.effective_state(), "bold"))
        text.append(f" after {status.step} steps in {follow.format_duration(self._elapsed())}\n")
        if losses:
            text.append(f"final loss {losses[-1]:.4f} · best loss {min(losses):.4f}")
            if evals:
                text.append(f" · best eval loss {min(evals):.4f}")
            text.append("\n")
        adapter = display_path(self.adapter_path() or "") if self.adapter_path() else None
        if adapter is not None:
            text.append("Adapter: ", style="bold")
            text.append(f"{adapter}\n")
            text.append(f"Next: `lora-tui adapters show {adapter}` explains it, "
                        f"`lora-tui adapters try {adapter}` answers with it.\n", style="dim")
        if status.effective_state() != "finished" and status.last_checkpoint:
            text.append(f"Last checkpoint: {status.last_checkpoint} (r resumes from it)\n")
        self.query_one("#mon-summary", Static).update(text)

    def _waiting_note(self) -> Text:
        """While no step has been logged yet: what the starting process is doing."""
        if self.metrics or self.status is None or self.status.effective_state() not in ("starting", "running"):
            return Text("")
        plan = self.plan()
        text = Text("Starting: the training process loads torch, transformers and the model", style="dim")
        if plan is not None and plan.model.strip().lower() == "demo" and demo_model_building():
            text.append(f"; first, it builds the demo model in {cache_dir()} (once per machine, a few minutes "
                        "on a CPU)", style="dim")
        text.append(". The first loss appears after the first optimizer step.", style="dim")
        return text

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
            try:
                settings, _sources = load_run_file(self.run_dir / runs.RUN_FILE)
                self._plan = TrainingPlan.from_dict(settings)
            except UserError:
                return None
        return self._plan

    def action_stop(self) -> None:
        """Ask the run to save a checkpoint and stop."""
        if runs.request_stop(self.run_dir):
            self.notify("Stop requested: the run saves a checkpoint and stops at its next step.", title="Run")
        else:
            self.notify("The run is not running.", severity="warning")

    def action_resume(self) -> None:
        """Continue the run from its last complete checkpoint."""
        plan = self.plan()
        state = self.status.effective_state() if self.status else None
        if state in ("running", "starting"):
            self.notify("The run is still going.", severity="warning")
        elif plan is None or runs.latest_complete_checkpoint(self.run_dir) is None:
            self.notify("Nothing to resume: no run file or no complete checkpoint.", severity="warning")
        else:
            self.relaunch()

    def action_apply(self) -> None:
        """Turn the first diagnosed remedy into a new run configuration on the review screen."""
        changes: dict[str, Any] = {}
        reason = ""
        if self.symptoms:
            changes, reason = self.symptoms[0].changes, self.symptoms[0].title
        elif self.status is not None and self.status.next_settings:
            changes, reason = dict(self.status.next_settings), "out of memory"
        if not changes:
            self.notify("No remedy to apply.", severity="warning")
            return
        shown = ", ".join(f"{name} {fmt_value(value)}" for name, value in changes.items())
        self.tui.review_with(changes, reason=f"{reason}: {shown}", base=self.plan())
