"""The data files of a run directory as types: metrics.jsonl lines, launch.json and training_info.json.

Every writer builds one of these dataclasses and every reader gets one back, so each key is spelled once (as a
field name) instead of by every reader. Reading is tolerant, as `runs.RunStatus.from_dict` is: a file written by
another version, or edited by hand, never breaks a reader.

- A value of the wrong JSON type is left out, so its field keeps its default (an int where a float is wanted
  counts as that float; a bool is never a number).
- Keys no field knows are kept in `extra` and written back at the top level by `to_dict`, so a file from a
  newer version goes through a reader and a writer unchanged. A key named `extra` in the file is just such a key.
- A whole file that is missing, unreadable, not JSON or not a JSON object reads as None; a metrics line that is
  not a JSON object is skipped.
- Numbers are kept as written, NaN and infinities included (a diverging run logs a NaN loss); `finite()` keeps
  the finite ones for curves and statistics.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lora_tui.core import runs
from lora_tui.core.typed_json import dump as _dump
from lora_tui.core.typed_json import load as _load


@dataclass
class RankMemory:
    """One training process's peak memory, as rank 0 gathered it at a logging step (unknown keys are ignored)."""

    rank: int = 0
    """The process's global rank."""
    node: int = 0
    """The machine it runs on (its node rank)."""
    local_rank: int = 0
    """Its rank on that machine: the GPU it uses on CUDA."""
    device: str = "cpu"
    """cuda or cpu: what `peak_bytes` measures."""
    peak_bytes: int | None = None
    """CUDA: peak allocated bytes; CPU: peak resident-set growth since the model started loading (`MemoryCheck`)."""
    reserved_bytes: int | None = None
    """On CUDA the caching allocator's peak reserved bytes."""
    total_bytes: int | None = None
    """On CUDA the GPU's memory."""


@dataclass
class MetricsRecord:
    """One line of metrics.jsonl: what the training process logged at one optimizer step."""

    step: int = 0
    """Optimizer step the line was logged at (1-based; 0 when the line does not say)."""
    epoch: float | None = None
    """Passes over the training data so far (fractional)."""
    loss: float | None = None
    """Training loss averaged over the steps since the previous line; None on evaluation-only lines."""
    eval_loss: float | None = None
    """Loss on the held-out split, on the steps where an evaluation ran."""
    learning_rate: float | None = None
    """Learning rate at this step (after warmup and decay)."""
    grad_norm: float | None = None
    """Gradient L2 norm before clipping."""
    tokens_seen: int | None = None
    """Tokens trained on so far (non-padding), all processes."""
    tokens_per_second: float | None = None
    """Useful throughput since the previous line: non-padding tokens per second."""
    trained_tokens_per_second: float | None = None
    """Loss-carrying tokens (whose next token is scored) per second since the previous line."""
    padding_share: float | None = None
    """Share of the batches' positions since the previous line that were padding, 0 to 1."""
    token_accuracy: float | None = None
    """Share of the scored tokens the model ranked first (TRL's `mean_token_accuracy`), averaged since the
    previous line."""
    entropy: float | None = None
    """Mean entropy of the model's next-token distribution over the scored tokens, nats (TRL's `entropy`)."""
    samples_per_second: float | None = None
    """Training throughput since the previous line, examples per second."""
    elapsed: float | None = None
    """Seconds since the training callback started (model loading excluded)."""
    gpu_mem_allocated: int | None = None
    """Peak CUDA memory allocated by tensors so far, bytes (absent off CUDA)."""
    gpu_mem_reserved: int | None = None
    """Peak CUDA memory reserved by the caching allocator so far, bytes (absent off CUDA)."""
    superseded_after: int | None = None
    """Set only on a marker line, written when a run resumes from checkpoint-N (N) or an out-of-memory retry
    starts over (0): the records before the line at steps above N belong to a discarded attempt."""
    resumed_from: str | None = None
    """On a resume marker line: the checkpoint (relative to the run directory) the run continued from."""
    ranks: list[RankMemory] | None = None
    """Every training process's peak memory so far, on a line of a run of several processes where one of them
    changed since the last line that held them (`core.run_world.last_ranks` finds the latest)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys no field knows, written back as they were."""

    @property
    def is_marker(self) -> bool:
        """True for a resume (or retry) marker line, which holds no measurements."""
        return self.superseded_after is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsRecord:
        """Tolerant reader (see the module docstring)."""
        return _load(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict; fields left at None are left out, so each line holds what was measured."""
        return _dump(self, drop_none=True)


@dataclass
class LaunchInfo:
    """launch.json: what the launcher knew when it started the run, beyond the plan in run.toml."""

    data_report: dict[str, Any] | None = None
    """`core.dataset`'s report of the data file (`DatasetReport.to_dict()`), when it was inspected."""
    memory_estimate: dict[str, Any] | None = None
    """`core.memory`'s estimate for the plan (`to_dict()`; `total_bytes` is the total in bytes)."""
    mode: str = "new"
    """Output directory policy outcome: new, resume or overwrite."""
    auto_oom_retry: int = 0
    """Out-of-memory retries left to the training process (`--auto-oom-retry`)."""
    reasons: dict[str, str] = field(default_factory=dict)
    """TrainingPlan field -> why the advisor recommended its value (recommended fields only)."""
    command_line: str | None = None
    """The `lora-tui train` command line that reproduces the plan."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys no field knows, written back as they were."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaunchInfo:
        """Tolerant reader (see the module docstring)."""
        return _load(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return _dump(self)


@dataclass
class Timings:
    """When the run happened and how long it took (unknown keys are ignored)."""

    started_at: float | None = None
    """Unix time the last training attempt started."""
    ended_at: float | None = None
    """Unix time it ended."""
    wall_seconds: float | None = None
    """Seconds from start to end, model loading included."""
    train_loop_seconds: float | None = None
    """Seconds inside the training loop; None when the loop did not finish."""
    first_step_at: float | None = None
    """Unix time the first optimizer step of the last attempt ended (time to first step = this - started_at)."""


@dataclass
class MemoryCheck:
    """The memory estimate made before the run against what the run measured (unknown keys are ignored)."""

    estimate: dict[str, Any] | None = None
    """`core.memory`'s estimate (as in launch.json), `total_bytes` in bytes."""
    measured: dict[str, Any] | None = None
    """The measured peak (`core.memory_check`): on CUDA `peak_allocated_bytes` and `peak_reserved_bytes`, on the CPU
    `peak_rss_growth_bytes` (resident-set growth since the model started loading); `first_steps` holds the peak
    after the first steps; None when nothing was measured."""
    measured_over_estimate: float | None = None
    """Measured peak (CUDA allocated, or CPU resident-set growth) / estimated total bytes (1.0: exact)."""


@dataclass
class TrainingInfo:
    """training_info.json: everything about a run, written by the training process when the run ends."""

    state: str | None = None
    """How the run ended: finished, stopped, failed or oom."""
    error: str | None = None
    """One-line summary of what went wrong, if anything did."""
    settings: dict[str, Any] | None = None
    """TrainingPlan field -> {"value": ..., "source": given/config/recommended/default/oom-retry}."""
    effective_batch_size: int | None = None
    """Examples per optimizer step: batch x accumulation x processes."""
    data: dict[str, Any] | None = None
    """Data statistics measured by the training process (else the launcher's report)."""
    data_report: dict[str, Any] | None = None
    """The launcher's report of the data file (launch.json's `data_report`)."""
    base_model_path: str | None = None
    """The base model the adapter was trained on, as loaded (a local directory or a hub id)."""
    precision: str | None = None
    """bf16, fp16 or fp32, as chosen for this device."""
    assistant_only_loss: bool | None = None
    """True when the loss was taken on assistant turns only."""
    world_size: int | None = None
    """Training processes (1 without torchrun)."""
    resumed_from: str | None = None
    """Checkpoint (relative to the run directory) the run continued from, if it was resumed."""
    hardware: dict[str, Any] | None = None
    """The device: backend, GPU name and memory in bytes, CPU threads, Python and platform."""
    versions: dict[str, Any] | None = None
    """Installed version of each library of the training stack (None where not installed)."""
    timings: Timings | None = None
    """Start, end and durations."""
    steps: int | None = None
    """Optimizer steps completed."""
    max_steps: int | None = None
    """Optimizer steps planned."""
    tokens_seen: int | None = None
    """Tokens trained on (non-padding), all processes."""
    trained_tokens: int | None = None
    """Loss-carrying tokens among them (the positions whose next token was scored)."""
    tokens_per_second: float | None = None
    """Useful throughput of the training loop: non-padding tokens per second of train_loop_seconds."""
    padding_share: float | None = None
    """Share of all batch positions that were padding, 0 to 1."""
    first_loss: float | None = None
    """First logged training loss."""
    final_loss: float | None = None
    """Last logged training loss."""
    best_loss: float | None = None
    """Lowest logged training loss."""
    final_eval_loss: float | None = None
    """Last evaluation loss."""
    best_eval_loss: float | None = None
    """Lowest evaluation loss."""
    adapter_step: int | None = None
    """The step of the checkpoint the run's final adapter is."""
    adapter_kept: str | None = None
    """Why that one: `best` (the lowest eval loss, --keep best) or `last`."""
    adapter_eval_loss: float | None = None
    """The eval loss of the final adapter's checkpoint, when it was chosen as the best."""
    memory: MemoryCheck | None = None
    """The memory estimate against the measured peak."""
    attempts: list[dict[str, Any]] | None = None
    """One {"settings": plan dict, "outcome": state} per attempt (several after out-of-memory retries)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys no field knows, written back as they were."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingInfo:
        """Tolerant reader (see the module docstring)."""
        return _load(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (None for what is not known)."""
        return _dump(self)


# ---- reading and writing the files ----------------------------------------------------------------------


def one_history(records: Iterable[MetricsRecord], *, keep_markers: bool = False) -> list[MetricsRecord]:
    """The records of the attempts the run kept: each marker drops the records before it at steps above its
    `superseded_after` (those of an attempt a resume or a retry discarded). Markers are dropped once applied,
    or kept (`keep_markers`) for a reader that applies them to records it read earlier."""
    out: list[MetricsRecord] = []
    for record in records:
        if record.superseded_after is not None:
            after = record.superseded_after
            out = [r for r in out if r.is_marker or r.step <= after]
            if keep_markers:
                out.append(record)
        else:
            out.append(record)
    return out if keep_markers else [r for r in out if not r.is_marker]


def read_metrics(run_dir: str | Path, offset: int = 0) -> tuple[list[MetricsRecord], int]:
    """Metrics lines appended since byte `offset`: (records, new offset). A partial last line is left for the
    next read; a line that is not a JSON object is skipped.

    One history: the resume markers among the lines read are applied (`one_history`). A read from the start
    returns the records of the kept attempts only; a later read (offset > 0) also returns the markers it found,
    so a reader that accumulates records applies them to what it read before (`one_history` again)."""
    path = Path(run_dir) / runs.METRICS_FILE
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except OSError:
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    records = []
    for line in chunk[: end + 1].splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            records.append(MetricsRecord.from_dict(obj))
    return one_history(records, keep_markers=offset > 0), offset + end + 1


def append_metrics(fh: IO[str], record: MetricsRecord) -> None:
    """Write one record to an open metrics.jsonl as one line, flushed (followers read complete lines only)."""
    fh.write(json.dumps(record.to_dict(), default=str) + "\n")
    fh.flush()


def open_metrics(run_dir: str | Path) -> IO[str]:
    """RUN/metrics.jsonl opened for appending records with `append_metrics`."""
    return open(Path(run_dir) / runs.METRICS_FILE, "a", encoding="utf-8")


def mark_superseded(run_dir: str | Path, after_step: int, resumed_from: str | None = None) -> None:
    """Append a marker: the records logged so far at steps above `after_step` belong to a discarded attempt.

    A last line cut short (a write that failed) is ended first, so the marker is a line of its own."""
    path = Path(run_dir) / runs.METRICS_FILE
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return  # nothing logged yet: nothing to supersede
            fh.seek(-1, 2)
            cut = fh.read(1) != b"\n"
    except OSError:
        return
    marker = MetricsRecord(superseded_after=after_step, resumed_from=resumed_from)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(("\n" if cut else "") + json.dumps(marker.to_dict()) + "\n")
        fh.flush()


def read_launch_info(run_dir: str | Path) -> LaunchInfo | None:
    """RUN/launch.json, or None when it is missing or damaged."""
    data = runs.read_json_object(Path(run_dir) / runs.LAUNCH_FILE)
    return LaunchInfo.from_dict(data) if data is not None else None


def write_launch_info(run_dir: str | Path, info: LaunchInfo) -> None:
    """Replace RUN/launch.json atomically."""
    runs.write_json_atomic(Path(run_dir) / runs.LAUNCH_FILE, info.to_dict())


def read_training_info(run_dir: str | Path) -> TrainingInfo | None:
    """RUN/training_info.json, or None when it is missing or damaged (e.g. the run was killed while writing)."""
    data = runs.read_json_object(Path(run_dir) / runs.INFO_FILE)
    return TrainingInfo.from_dict(data) if data is not None else None


def write_training_info(run_dir: str | Path, info: TrainingInfo) -> None:
    """Replace RUN/training_info.json atomically."""
    runs.write_json_atomic(Path(run_dir) / runs.INFO_FILE, info.to_dict())


def finite(values: Iterable[float | None]) -> list[float]:
    """The finite numbers among `values`, in order (None, NaN and infinities left out)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def best_eval(records: Iterable[MetricsRecord]) -> tuple[int, float] | None:
    """(step, eval loss) of the lowest finite eval loss among `records` (the first such step on a tie), or None
    when no evaluation has run. The monitor's best-step mark, `runs list` and the Runs screen all read this."""
    best: tuple[int, float] | None = None
    for record in records:
        value = record.eval_loss
        if value is not None and math.isfinite(value) and (best is None or value < best[1]):
            best = (record.step, float(value))
    return best
