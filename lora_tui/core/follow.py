"""Following a run directory: new log lines, new metrics records and the status, read incrementally.

The one follower of every reader that watches a run: the TUI monitor (a thread worker polls it on a timer),
`lora-tui runs logs [-f]` and `lora-tui train`'s follow loop. Pure Python over `core.runs` and `core.run_files`
(no Textual, no training stack). It keeps byte offsets into run.log and metrics.jsonl and returns only complete
lines; an incomplete last line waits for its end (or for `copy_log(..., final=True)` once the run is over).

Two ways to read the log:

- tail (the default, the monitor): memory stays bounded however fast the run writes. Each read takes at most
  `max_chunk_bytes` of new text, skipping ahead to the newest when more arrived, and keeps the last `max_lines`.
- every line (`every_line=True`, the CLI): nothing is skipped. Each read takes at most `max_chunk_bytes` and
  leaves the rest for the next, so printing a large log never holds it all in memory.

Carriage returns are dropped; text that is not UTF-8 is shown with replacement characters.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from lora_tui.core import run_files, runs

LOG_LINES_KEPT = 5000
"""Lines of run.log the monitor keeps in memory (older lines scroll away)."""
MAX_CHUNK_BYTES = 1 << 20
"""Most new log bytes read at once; a tail follower skips the oldest when more arrived since the last read."""


@dataclass
class Poll:
    """What changed in a run directory since the previous poll."""

    lines: list[str]
    """New complete log lines (at most `max_lines` for a tail follower)."""
    skipped_lines: bool
    """True when log text was skipped because more arrived than one read takes (tail followers only)."""
    metrics: list[run_files.MetricsRecord]
    """New metrics records, in order."""
    status: runs.RunStatus | None
    """The current status.json, or None when absent or unreadable."""


@dataclass
class RunFollower:
    """Reads a run directory incrementally: byte offsets into run.log and metrics.jsonl."""

    run_dir: Path
    """The run directory being followed."""
    max_lines: int = LOG_LINES_KEPT
    """Most log lines one read of a tail follower returns."""
    max_chunk_bytes: int = MAX_CHUNK_BYTES
    """Most new log bytes one read takes."""
    every_line: bool = False
    """True: skip nothing (the CLI); False: keep up with the newest lines, bounded (the monitor)."""
    log_offset: int = 0
    """Bytes of run.log already consumed (start past the end of an earlier run's log to show only new text)."""
    metrics_offset: int = 0
    """Bytes of metrics.jsonl already consumed."""
    _partial: bytes = field(default=b"", repr=False)
    """An incomplete last log line carried to the next read."""
    _behind: bool = field(default=False, repr=False)
    """True when the last read of an every-line follower stopped before the end of the log."""

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.max_lines <= 0:
            raise ValueError("`max_lines` must be positive")
        if self.max_chunk_bytes <= 0:
            raise ValueError("`max_chunk_bytes` must be positive")

    def poll(self) -> Poll:
        """Read what is new: metrics records and the status, then the log lines.

        The log is read last: the trainer writes a step's status and metrics before its log line, so a log
        read after them has reached the step they report (but for a line printed at that very instant), and a
        progress bar drawn from them does not run ahead of the log shown with it."""
        metrics, status = self.read_metrics(), self.read_status()
        lines, skipped = self.read_log()
        return Poll(lines=lines, skipped_lines=skipped, metrics=metrics, status=status)

    def read_metrics(self) -> list[run_files.MetricsRecord]:
        """Metrics records appended since the last read."""
        records, self.metrics_offset = run_files.read_metrics(self.run_dir, self.metrics_offset)
        return records

    def read_status(self) -> runs.RunStatus | None:
        """The run's current status."""
        return runs.read_status(self.run_dir)

    def read_log(self) -> tuple[list[str], bool]:
        """New complete log lines, and whether text was skipped to get to them."""
        path = self.run_dir / runs.LOG_FILE
        self._behind = False
        try:
            size = path.stat().st_size
        except OSError:
            return [], False
        if size < self.log_offset:  # truncated or replaced: start again
            self.log_offset, self._partial = 0, b""
        skipped = not self.every_line and size - self.log_offset > self.max_chunk_bytes
        if skipped:
            self.log_offset, self._partial = size - self.max_chunk_bytes, b""
        try:
            with open(path, "rb") as fh:
                fh.seek(self.log_offset)
                chunk = fh.read(min(size - self.log_offset, self.max_chunk_bytes))
        except OSError:
            return [], False
        self.log_offset += len(chunk)
        self._behind = self.log_offset < size
        data = self._partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0 and len(data) < self.max_chunk_bytes:
            self._partial = data
            return [], skipped
        if cut < 0:  # one line longer than a whole chunk: show it in pieces rather than hold it
            cut = len(data)
        self._partial = data[cut + 1 :]
        lines = _decode(data[:cut]).split("\n")
        if self.every_line:
            return lines, False
        tail: deque[str] = deque(lines, maxlen=self.max_lines)
        if skipped and tail:
            tail.popleft()  # the first line of a skipped-to chunk is usually cut in half
        return list(tail), skipped

    def copy_log(self, out: TextIO, *, final: bool = False) -> int:
        """Write the new complete log lines to `out` up to the log's current end; returns how many.

        With `final` (the run is over) the incomplete last line is written too, ended by a newline.
        """
        count = 0
        while True:
            lines, _ = self.read_log()
            if lines:
                out.write("".join(line + "\n" for line in lines))
                count += len(lines)
            if not self._behind:
                break
        if final and self._partial:
            out.write(_decode(self._partial) + "\n")
            self._partial = b""
            count += 1
        out.flush()
        return count


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\r", "")


def log_size(run_dir: str | Path) -> int:
    """Bytes in RUN/run.log now (0 when there is none): where a follower of only new output starts."""
    try:
        return (Path(run_dir) / runs.LOG_FILE).stat().st_size
    except OSError:
        return 0


# ---- progress ------------------------------------------------------------------------------------------


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
