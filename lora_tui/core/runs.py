"""A run directory: its layout, its status file, its checkpoints, and the choice of where to resume.

Layout (written by the training process, read by the CLI, the TUI monitor and the adapter manager):

    RUN/
      run.toml               the resolved TrainingPlan with the source of each value
      launch.json            what the launcher knew: data report, memory estimate, mode, retry budget
      status.json            state, pid, process group, times, last complete checkpoint, error summary
      metrics.jsonl          one JSON object per logging step, flushed line by line (rank 0 only)
      run.log                everything the training process printed
      training_info.json     settings, data statistics, hardware, versions, timings, losses, memory
      STOP                   created to ask the run to save and stop at the next step
      .lora_tui.lock         flock held by the run's writer for the run's life (`core.run_lock`)
      .lora_tui_trash/       what `--overwrite` replaced, until the new run has started (`core.output_dir`)
      checkpoints/checkpoint-N/   Trainer checkpoints; complete only when COMPLETE_MARKER is present
      adapter_config.json, adapter_model.safetensors, tokenizer files   the final (or last saved) adapter

The status file is replaced atomically (write to a temporary name, fsync, rename), so a reader never sees a
half-written one. The file names are defined here, once; metrics.jsonl, launch.json and training_info.json are
typed in `lora_tui.core.run_files`.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import run_lock

RUN_FILE = "run.toml"
LAUNCH_FILE = "launch.json"
"""Written by the launcher next to run.toml (`run_files.LaunchInfo`), read by the training process."""
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
"""One `run_files.MetricsRecord` per line."""
LOG_FILE = "run.log"
INFO_FILE = "training_info.json"
"""`run_files.TrainingInfo`, written when the run ends."""
STOP_FILE = "STOP"
CHECKPOINTS_DIR = "checkpoints"
COMPLETE_MARKER = "lora_tui_complete.json"
"""Written last into a checkpoint directory, after every other file is on disk."""
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""Files that make a directory a loadable PEFT adapter."""

STATES = ("starting", "running", "finished", "failed", "stopped", "oom")
"""Run states as written by the training process."""
FINAL_STATES = ("finished", "failed", "stopped", "oom")
"""States after which the process has exited."""
LIVE_STATES = ("starting", "running")
"""States of a run whose process is (meant to be) alive."""

_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class RunStatus:
    """The contents of status.json."""

    state: str = "starting"
    """One of STATES; `lost` is derived when a starting/running run's lock is free (see `effective_state`)."""
    pid: int | None = None
    """Process id of the training process (rank 0 or the launcher)."""
    pid_started: float | None = None
    """When the process `pid` started (psutil create_time): a pid reused by another process does not match."""
    pgid: int | None = None
    """Process group of the run; signals for a graceful stop go to the whole group."""
    started_at: float | None = None
    """Unix time the run started."""
    ended_at: float | None = None
    """Unix time the run ended, if it has."""
    step: int = 0
    """Last completed optimizer step."""
    max_steps: int | None = None
    """Total optimizer steps planned, when known."""
    last_checkpoint: str | None = None
    """Path (relative to the run dir) of the newest complete checkpoint."""
    error: str | None = None
    """One-line summary of what went wrong (failed/oom)."""
    next_settings: dict[str, Any] | None = None
    """For `oom`: the guide's remedy as concrete settings for the next try."""
    adapter_dir: str | None = None
    """Where the final adapter was written (usually the run dir itself)."""
    adapter_step: int | None = None
    """The optimizer step the adapter in `adapter_dir` was saved at."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else the writer wants readers to see (world size, device)."""
    run_dir: Path | None = field(default=None, compare=False, repr=False)
    """Where this status was read from (not written): lets `effective_state` probe the run's lock."""

    def effective_state(self) -> str:
        """The state, or `lost` when it says starting/running but nothing runs there: the run's lock is free
        (or, for a directory without a lock file, its pid is gone or now belongs to another process)."""
        if self.state not in LIVE_STATES:
            return self.state
        locked = run_lock.probe(self.run_dir) if self.run_dir is not None else None
        if locked is not None and self.run_dir is not None:
            if locked:
                return self.state
            # the run may have ended between this status being read and its lock being probed: read it again
            now = read_status(self.run_dir)
            return now.state if now is not None and now.state not in LIVE_STATES else "lost"
        if self.pid is not None and not self.process_is_ours():
            return "lost"
        return self.state

    def process_is_ours(self) -> bool:
        """Whether `pid` is alive and still the process that was recorded (its start time matches)."""
        return self.pid is not None and run_lock.same_process(self.pid, self.pid_started, pid_alive(self.pid))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        data = asdict(self)
        data.pop("run_dir", None)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStatus:
        """Tolerant reader: unknown keys go to `extra`; a value of the wrong type (a file written by another
        version, or edited by hand) is left out, so the field keeps its default; a non-string `state` reads
        as `unknown`."""
        known = {k: v for k, v in data.items()
                 if k in _FIELD_TYPES and (v is None and k in _NULLABLE or _fits(v, _FIELD_TYPES[k]))}
        if "state" in data and "state" not in known:
            known["state"] = "unknown"
        extra = dict(known.pop("extra", {}))
        extra.update({k: v for k, v in data.items() if k not in _FIELD_TYPES})
        return cls(**known, extra=extra)


_FIELD_TYPES: dict[str, str] = {
    "state": "str", "pid": "int", "pgid": "int", "started_at": "time", "ended_at": "time", "step": "int",
    "max_steps": "int", "last_checkpoint": "str", "error": "str", "next_settings": "dict", "adapter_dir": "str",
    "extra": "dict", "pid_started": "time", "adapter_step": "int",
}
"""The JSON type each status.json field must have to be read."""

_NULLABLE = frozenset(k for k in _FIELD_TYPES if k not in ("state", "step", "extra"))
"""Fields whose default is None, so a null in the file is a valid value."""


def _fits(value: Any, kind: str) -> bool:
    """Whether a status.json value has the type its field needs."""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "time":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "str":
        return isinstance(value, str)
    return isinstance(value, dict)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `path` so that readers see either the old or the new file, never a partial one (a write that
    fails, e.g. on a full disk, leaves the old file and no temporary one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to `path` so that readers see either the old or the new file, never a partial one."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON file holding an object; None when it is missing, unreadable, not JSON or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # undecodable bytes are a ValueError; absurd nesting recurses
        return None
    return data if isinstance(data, dict) else None


def read_status(run_dir: str | Path) -> RunStatus | None:
    """The run's status, or None when there is no (readable) status file."""
    data = read_json_object(Path(run_dir) / STATUS_FILE)
    if data is None:
        return None
    status = RunStatus.from_dict(data)
    status.run_dir = Path(run_dir)
    return status


def write_status(run_dir: str | Path, status: RunStatus) -> None:
    """Replace status.json atomically."""
    write_json_atomic(Path(run_dir) / STATUS_FILE, status.to_dict())


def update_status(run_dir: str | Path, **changes: Any) -> RunStatus:
    """Read, change the given fields, write back; returns the new status."""
    status = read_status(run_dir) or RunStatus(run_dir=Path(run_dir))
    for key, value in changes.items():
        if key not in RunStatus.__dataclass_fields__ or key == "run_dir":
            raise KeyError(key)
        setattr(status, key, value)
    write_status(run_dir, status)
    return status


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie we can see)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0); /proc tells the truth on Linux
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# ---- checkpoints ----------------------------------------------------------------------------------------


def checkpoint_step(path: Path) -> int | None:
    """N for a directory named checkpoint-N, else None."""
    m = _CHECKPOINT_RE.match(path.name)
    return int(m.group(1)) if m else None


def is_complete_checkpoint(path: Path) -> bool:
    """A checkpoint is complete when its marker, trainer state and adapter weights are all present."""
    return (
        (path / COMPLETE_MARKER).is_file()
        and (path / "trainer_state.json").is_file()
        and (path / "adapter_model.safetensors").is_file()
    )


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every checkpoint-N directory under RUN/checkpoints, oldest first (complete or not)."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(checkpoint_step(p), p) for p in root.iterdir() if p.is_dir()]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def latest_complete_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint: the one `--resume` continues from."""
    for path in reversed(list_checkpoints(run_dir)):
        if is_complete_checkpoint(path):
            return path
    return None


def mark_checkpoint_complete(path: Path, step: int) -> None:
    """Write the completion marker last, after the checkpoint's files have been flushed to disk."""
    for child in path.rglob("*"):
        if child.is_file():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())
    write_json_atomic(path / COMPLETE_MARKER, {"step": step, "time": time.time()})


# ---- output directory policy ----------------------------------------------------------------------------


def is_adapter_dir(path: str | Path) -> bool:
    """True when the directory holds a loadable PEFT adapter."""
    p = Path(path)
    return all((p / name).is_file() for name in ADAPTER_FILES)


def check_output_dir(path: str | Path, *, resume: bool = False, overwrite: bool = False,
                     protect: Iterable[tuple[str, str | Path]] = (), held_by_caller: bool = False) -> str:
    """Decide what to do with an output directory: `new`, `resume` or `overwrite` (see `core.output_dir`)."""
    from lora_tui.core.output_dir import check_output_dir as check

    return check(path, resume=resume, overwrite=overwrite, protect=protect, held_by_caller=held_by_caller)


# ---- stop and discovery ---------------------------------------------------------------------------------


def request_stop(run_dir: str | Path, *, send_signal: bool = True) -> bool:
    """Ask a run to save and stop at its next step: create STOP and SIGTERM its process group.

    The signal goes only to the recorded process, checked by pid and start time: a pid the OS has given to
    another process since is never signalled (the STOP file alone then asks).

    A multi-process run (world size > 1 in status.json) gets the STOP file only: torchrun answers SIGTERM by
    killing its workers, while every rank polls the STOP file and stops at the same step. Returns True when the
    run was live and has been asked.
    """
    p = Path(run_dir)
    status = read_status(p)
    if status is None or status.effective_state() not in LIVE_STATES:
        return False
    (p / STOP_FILE).write_text(f"stop requested at {time.time()}\n", encoding="utf-8")
    if int(status.extra.get("world_size", 1) or 1) > 1:
        send_signal = False
    if send_signal and status.pid is not None and status.process_is_ours():
        _terminate(status.pid, status.pgid)
    return True


def _terminate(pid: int, pgid: int | None) -> None:
    """SIGTERM the run's process group (its own pid alone when the group is not the pid's)."""
    try:
        if pgid is not None and os.getpgid(pid) == pgid:
            os.killpg(pgid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def iter_run_dirs(root: str | Path, *, max_depth: int = 3) -> Iterator[Path]:
    """Directories under `root` (itself included) holding a status.json, a run.toml or an adapter."""
    base = Path(root)
    if not base.is_dir():
        return
    stack: list[tuple[Path, int]] = [(base, 0)]
    while stack:
        path, depth = stack.pop()
        if (path / STATUS_FILE).is_file() or (path / RUN_FILE).is_file() or is_adapter_dir(path):
            yield path
            continue
        if depth >= max_depth:
            continue
        try:
            children = sorted((c for c in path.iterdir() if c.is_dir() and not c.name.startswith(".")),
                              reverse=True)
        except OSError:
            continue
        stack.extend((c, depth + 1) for c in children if c.name != CHECKPOINTS_DIR)

