"""Several runs side by side: the settings that differ, the numbers that matter, and each run's loss curves.

`lora-tui runs compare`, the TUI's Compare view and a sweep's results table all read `compare_runs`, so they
agree. Every number comes from the run's own files, whatever its state: the metrics history (one history across
resumes, `run_files.read_metrics`) for losses, steps and throughput, so a stopped or lost run compares as well as
a finished one; training_info.json for the wall time and the measured memory when the run wrote it, else
status.json; launch.json for the memory estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import run_files, runs
from lora_tui.core.memory_check import measured_peak
from lora_tui.core.plan import load_run_file
from lora_tui.errors import UserError
from lora_tui.i18n import _, pgettext

IGNORED_SETTINGS = ("output",)
"""Settings never reported as a difference (every run has its own directory)."""


@dataclass(frozen=True)
class Point:
    """One point of a loss curve."""

    step: int
    """Optimizer step."""
    tokens: int | None
    """Tokens trained on by then (None when the run did not log it)."""
    loss: float
    """The (finite) loss."""


@dataclass
class ComparedRun:
    """One run's row of a comparison."""

    run: str
    """The run directory."""
    state: str
    """Its effective state (finished, stopped, lost, ...; unknown without a readable status.json)."""
    settings: dict[str, Any]
    """Its run.toml [plan] table (empty when the file is missing or damaged)."""
    final_loss: float | None = None
    """Last finite training loss."""
    best_loss: float | None = None
    """Lowest finite training loss."""
    best_eval_loss: float | None = None
    """Lowest finite eval loss (`run_files.best_eval`)."""
    best_step: int | None = None
    """The step of `best_eval_loss`."""
    steps: int = 0
    """Optimizer steps done."""
    tokens_per_second: float | None = None
    """Mean logged training throughput."""
    wall_seconds: float | None = None
    """Seconds from start to end (to the last logged line for a run that is still going or was lost)."""
    peak_estimated_bytes: int | None = None
    """The memory estimate made before the run (launch.json)."""
    peak_measured_bytes: int | None = None
    """The measured peak (CUDA allocated, or the CPU's resident-set growth)."""
    train: list[Point] = field(default_factory=list)
    """The training loss curve."""
    eval: list[Point] = field(default_factory=list)
    """The eval loss curve."""

    @property
    def name(self) -> str:
        """The run directory's name."""
        return Path(self.run).name

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `runs compare --json` prints for the run (curves left out)."""
        return {"run": self.run, "state": self.state, "settings": self.settings, "final_loss": self.final_loss,
                "best_loss": self.best_loss, "best_eval_loss": self.best_eval_loss, "best_step": self.best_step,
                "steps": self.steps, "tokens_per_second": self.tokens_per_second,
                "wall_seconds": self.wall_seconds, "peak_estimated_bytes": self.peak_estimated_bytes,
                "peak_measured_bytes": self.peak_measured_bytes}


@dataclass
class Comparison:
    """Runs side by side."""

    runs: list[ComparedRun]
    """One row per run, in the order asked."""
    differences: list[str]
    """Setting names whose value is not the same in every run, in plan order."""

    def to_dict(self) -> dict[str, Any]:
        """`{"runs": [...], "differences": [...]}`."""
        return {"runs": [r.to_dict() for r in self.runs], "differences": list(self.differences)}


def is_run_dir(path: Path) -> bool:
    """Whether `path` is a run directory (it has a status.json or a run.toml)."""
    return path.is_dir() and ((path / runs.STATUS_FILE).is_file() or (path / runs.RUN_FILE).is_file())


def differences(settings: Sequence[dict[str, Any]]) -> list[str]:
    """The setting names whose value differs between the runs (missing counts as a value), first seen first."""
    names: list[str] = []
    for one in settings:
        names += [k for k in one if k not in names and k not in IGNORED_SETTINGS]
    return [k for k in names if len({repr(s.get(k)) for s in settings}) > 1]


def compare_runs(paths: Iterable[str | Path]) -> Comparison:
    """Read every run; UserError (one line) for a path that is not a run, or fewer than two runs."""
    dirs = [Path(p).expanduser() for p in paths]
    for path in dirs:
        if not path.is_dir():
            raise UserError(_("{path}: no such run directory").format(path=path))
        if not is_run_dir(path):
            raise UserError(_("{path}: not a run directory (no status.json or run.toml)").format(path=path))
    if len({p.resolve() for p in dirs}) < 2:
        raise UserError(_("compare needs at least two different run directories"))
    rows = [read_run(p) for p in dirs]
    return Comparison(runs=rows, differences=differences([r.settings for r in rows]))


def _settings(path: Path) -> dict[str, Any]:
    try:
        values, _ = load_run_file(path / runs.RUN_FILE)
    except UserError:
        return {}
    return values


def read_run(path: Path) -> ComparedRun:
    """One run's row and curves (see the module docstring for where each number comes from)."""
    status = runs.read_status(path)
    records, _ = run_files.read_metrics(path)
    row = ComparedRun(run=str(path), state=status.effective_state() if status else "unknown",
                      settings=_settings(path))
    _curves(row, records)
    trains = [p.loss for p in row.train]
    row.final_loss = trains[-1] if trains else None
    row.best_loss = min(trains) if trains else None
    best = run_files.best_eval(records)
    row.best_step, row.best_eval_loss = best if best else (None, None)
    last_step = max((r.step for r in records), default=0)
    row.steps = max(status.step if status else 0, last_step)
    speeds = run_files.finite(r.tokens_per_second for r in records)
    row.tokens_per_second = sum(speeds) / len(speeds) if speeds else None
    info = run_files.read_training_info(path)
    row.wall_seconds = _wall(info, status, records)
    launch = run_files.read_launch_info(path)
    estimate = launch.memory_estimate if launch else None
    total = estimate.get("total_bytes") if isinstance(estimate, dict) else None
    row.peak_estimated_bytes = int(total) if isinstance(total, (int, float)) and not isinstance(total, bool) \
        else None
    measured = info.memory.measured if info is not None and info.memory is not None else None
    if measured is None and status is not None and isinstance(status.extra.get("memory"), dict):
        measured = status.extra["memory"]
    row.peak_measured_bytes = measured_peak(measured)
    return row


def _curves(row: ComparedRun, records: list[run_files.MetricsRecord]) -> None:
    tokens: dict[int, int] = {r.step: r.tokens_seen for r in records if r.tokens_seen is not None}
    for r in records:
        if r.loss is not None and math.isfinite(r.loss):
            row.train.append(Point(r.step, tokens.get(r.step), float(r.loss)))
        if r.eval_loss is not None and math.isfinite(r.eval_loss):
            row.eval.append(Point(r.step, tokens.get(r.step), float(r.eval_loss)))


def _wall(info: run_files.TrainingInfo | None, status: runs.RunStatus | None,
          records: list[run_files.MetricsRecord]) -> float | None:
    if info is not None and info.timings is not None and info.timings.wall_seconds is not None:
        return info.timings.wall_seconds
    if status is not None and status.started_at is not None and status.ended_at is not None:
        return max(0.0, status.ended_at - status.started_at)
    elapsed = run_files.finite(r.elapsed for r in records)
    return elapsed[-1] if elapsed else None


def sort_key(row: ComparedRun) -> tuple[float, float, str]:
    """Best eval loss first, then final training loss (a run without one sorts last), then the name."""
    return (row.best_eval_loss if row.best_eval_loss is not None else math.inf,
            row.final_loss if row.final_loss is not None else math.inf, row.name)


def setting_text(value: Any) -> str:
    """A setting's value as a table cell (`-` when the run does not set it)."""
    from lora_tui.core.plan import fmt_value

    return "-" if value is None else fmt_value(value)


def number_text(value: float | None, digits: int = 4) -> str:
    """A loss or rate as a table cell."""
    return "-" if value is None else f"{value:.{digits}f}"


def table(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the comparison as text cells: the differing settings, then the numbers."""
    from lora_tui.core.units import fmt_bytes

    header = [_("run"), _("state"), *comparison.differences, _("final loss"), _("best loss"), _("best eval @ step"),
              _("steps"), _("tok/s"), _("wall s"), _("peak est."), _("peak meas.")]
    rows = []
    for r in comparison.runs:
        best = f"{r.best_eval_loss:.4f} @ {r.best_step}" if r.best_eval_loss is not None else "-"
        rows.append([r.name, pgettext("run state", r.state),
                     *(setting_text(r.settings.get(k)) for k in comparison.differences),
                     number_text(r.final_loss), number_text(r.best_loss), best, str(r.steps),
                     number_text(r.tokens_per_second, 0), number_text(r.wall_seconds, 0),
                     fmt_bytes(r.peak_estimated_bytes) if r.peak_estimated_bytes is not None else "-",
                     fmt_bytes(r.peak_measured_bytes) if r.peak_measured_bytes is not None else "-"])
    return header, rows
