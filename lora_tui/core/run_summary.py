"""One run directory in a line: its state, step, last training loss and best eval loss, read cheaply.

`runs list`, `runs show` and the TUI's Runs screen read this, so they agree. The metrics are read through
`run_files.MetricsRecord`'s tolerant reader (one history across resumes applied), but only the lines that can
change a summary are parsed (evaluations, resume markers, the last losses): 100 runs of 1,000 logged steps each
read in well under a second, and nothing is cached, so a live run's summary is never stale.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lora_tui.core import run_files, runs

_KEYS = ("step", "loss", "eval_loss", "superseded_after", "resumed_from")
"""The metrics keys a summary reads (the marker keys keep one history across resumes)."""


@dataclass
class RunSummary:
    """What `runs list` shows of one run."""

    run: str
    """The run directory."""
    state: str
    """The effective state (`unknown` without a readable status.json)."""
    step: int
    """Optimizer steps done."""
    max_steps: int | None
    """Steps the run will take, when known."""
    last_loss: float | None
    """The last logged training loss."""
    best_eval_loss: float | None
    """The lowest finite eval loss so far (`run_files.best_eval`), None before any evaluation."""
    best_eval_step: int | None
    """The step of `best_eval_loss`."""
    error: str | None
    """The run's error line, when it failed."""
    last_checkpoint: str | None
    """The newest complete checkpoint, relative to the run directory."""
    started_at: float | None
    """Unix time the run started."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `runs list --json` prints for the run."""
        return asdict(self)


def _record(line: bytes) -> run_files.MetricsRecord | None:
    """One metrics line through the tolerant reader, with only the keys a summary needs; None if not an object."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return run_files.MetricsRecord.from_dict({k: obj[k] for k in _KEYS if k in obj}) if isinstance(obj, dict) \
        else None


def read_summary_metrics(run_dir: str | Path) -> tuple[list[run_files.MetricsRecord], float | None]:
    """(the eval records of the run's one history, its last training loss).

    Only the lines that can matter are parsed: evaluations, resume markers, and the last loss lines from the end
    back to the first one that the markers after it keep (`run_files.one_history` decides, as for every reader).
    """
    try:
        data = (Path(run_dir) / runs.METRICS_FILE).read_bytes()
    except OSError:
        return [], None
    lines = data[: data.rfind(b"\n") + 1].splitlines()  # a partial last line is still being written
    picked = [r for line in lines if b'"eval_loss"' in line or b'"superseded_after"' in line
              if (r := _record(line)) is not None]
    evals = [r for r in run_files.one_history(picked) if r.eval_loss is not None]
    later: list[run_files.MetricsRecord] = []  # the markers after the line being looked at
    for line in reversed(lines):
        record = _record(line) if b'"loss"' in line or b'"superseded_after"' in line else None
        if record is None:
            continue
        if record.is_marker:
            later.insert(0, record)
        elif record.loss is not None and run_files.one_history([record, *later]):
            return evals, record.loss
    return evals, None


def summarize(run_dir: str | Path, status: runs.RunStatus | None = None) -> RunSummary:
    """The summary of one run directory (`status` when the caller read it already)."""
    path = Path(run_dir)
    status = status if status is not None else runs.read_status(path)
    evals, last_loss = read_summary_metrics(path)
    best = run_files.best_eval(evals)
    return RunSummary(
        run=str(path), state=status.effective_state() if status else "unknown", step=status.step if status else 0,
        max_steps=status.max_steps if status else None, last_loss=last_loss,
        best_eval_loss=best[1] if best else None, best_eval_step=best[0] if best else None,
        error=status.error if status else None, last_checkpoint=status.last_checkpoint if status else None,
        started_at=status.started_at if status else None)


def best_eval_text(summary: RunSummary) -> str:
    """"1.2345 @ 40" for a table cell, `-` before any evaluation."""
    if summary.best_eval_loss is None:
        return "-"
    return f"{summary.best_eval_loss:.4f} @ {summary.best_eval_step}"
