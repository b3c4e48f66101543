"""Following a run directory from the TUI: the log tail, new metrics lines and the status, read incrementally.

Pure Python over `lora_tui.core.runs` (no Textual, no training stack), so the monitor's polling worker calls
one function and the reading logic is tested on its own. Memory stays bounded however fast the run writes: each
poll reads at most `max_chunk_bytes` of new log text and only the last `max_lines` lines are kept.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import runs

LOG_LINES_KEPT = 5000
"""Lines of run.log the monitor keeps in memory (older lines scroll away)."""
MAX_CHUNK_BYTES = 1 << 20
"""Most new log bytes read per poll; a run writing faster than this per poll has its oldest lines skipped."""

LOSS_KEYS = ("loss", "train_loss")
"""Metrics keys holding the training loss (first present wins)."""
EVAL_LOSS_KEYS = ("eval_loss",)
"""Metrics keys holding the evaluation loss."""
LR_KEYS = ("learning_rate", "lr")
"""Metrics keys holding the learning rate."""
GRAD_NORM_KEYS = ("grad_norm",)
"""Metrics keys holding the gradient norm."""
TOKENS_KEYS = ("tokens_per_second", "tokens_per_sec", "train_tokens_per_second")
"""Metrics keys holding the training throughput in tokens per second."""


@dataclass
class Poll:
    """What changed in a run directory since the previous poll."""

    lines: list[str]
    """New complete log lines (at most LOG_LINES_KEPT)."""
    skipped_lines: bool
    """True when log text was skipped because more arrived than one poll reads."""
    metrics: list[dict[str, Any]]
    """New metrics records, in order."""
    status: runs.RunStatus | None
    """The current status.json, or None when absent."""


@dataclass
class RunFollower:
    """Reads a run directory incrementally: byte offsets into run.log and metrics.jsonl."""

    run_dir: Path
    """The run directory being followed."""
    max_lines: int = LOG_LINES_KEPT
    """Most log lines returned by one poll."""
    max_chunk_bytes: int = MAX_CHUNK_BYTES
    """Most new log bytes read by one poll."""
    log_offset: int = 0
    """Bytes of run.log already consumed."""
    metrics_offset: int = 0
    """Bytes of metrics.jsonl already consumed."""
    _partial: bytes = field(default=b"", repr=False)
    """An incomplete last log line carried to the next poll."""

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.max_lines <= 0:
            raise ValueError("`max_lines` must be positive")
        if self.max_chunk_bytes <= 0:
            raise ValueError("`max_chunk_bytes` must be positive")

    def poll(self) -> Poll:
        """Read what is new: log lines, metrics records and the status."""
        lines, skipped = self._read_log()
        metrics, self.metrics_offset = runs.read_metrics(self.run_dir, self.metrics_offset)
        return Poll(lines=lines, skipped_lines=skipped, metrics=metrics, status=runs.read_status(self.run_dir))

    def _read_log(self) -> tuple[list[str], bool]:
        path = self.run_dir / runs.LOG_FILE
        try:
            size = path.stat().st_size
        except OSError:
            return [], False
        if size < self.log_offset:  # truncated or replaced: start again
            self.log_offset, self._partial = 0, b""
        skipped = size - self.log_offset > self.max_chunk_bytes
        if skipped:
            self.log_offset, self._partial = size - self.max_chunk_bytes, b""
        try:
            with open(path, "rb") as fh:
                fh.seek(self.log_offset)
                chunk = fh.read(size - self.log_offset)
        except OSError:
            return [], False
        self.log_offset += len(chunk)
        data = self._partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return [], skipped
        self._partial = data[cut + 1 :]
        text = data[:cut].decode("utf-8", errors="replace").replace("\r", "")
        tail: deque[str] = deque(text.split("\n"), maxlen=self.max_lines)
        if skipped and tail:
            tail.popleft()  # the first line of a skipped-to chunk is usually cut in half
        return list(tail), skipped


def first_value(record: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    """The first finite number among `keys` in a metrics record, else None."""
    for key in keys:
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def series(records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[float]:
    """Every value of a metric across records, in order (records without it are skipped)."""
    values = (first_value(r, keys) for r in records)
    return [v for v in values if v is not None]


def format_duration(seconds: float | None) -> str:
    """`1h02m`, `4m05s` or `12s`; `-` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def eta_seconds(step: int, max_steps: int | None, elapsed: float | None) -> float | None:
    """Remaining time at the average pace so far, or None when it cannot be told yet."""
    if not max_steps or step <= 0 or elapsed is None or elapsed <= 0:
        return None
    return max(0.0, elapsed / step * (max_steps - step))
