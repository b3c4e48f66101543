"""How far the build of the demo model has got, read without torch: for the monitor and `lora-tui train`.

The training process builds the demo model on first use (`lora_tui.train.demo.ensure_demo_model`) in a
temporary directory `<cache>/.demo-model.*` that is renamed into place when complete. While it builds it keeps
`PROGRESS_FILE` in that directory up to date (rewritten atomically: a temporary file renamed over it), so any
reader sees either the previous state or the new one, never half a file:

    {"stage": "pretraining", "step": 37, "total": 100, "elapsed": 33.1, "updated_at": 1716.2, "pid": 4242}

`stage` is `tokenizer` (training the tokenizer and tokenizing the text), `pretraining` (step of total) or
`saving`; `elapsed` counts the pre-training's seconds so far, from which the time left is told.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lora_tui.core.follow import eta_seconds, format_duration
from lora_tui.i18n import _

DEMO_DIR_NAME = "demo-model"
"""Directory name of the demo model under the cache root (its build directories are `.demo-model.*`)."""
PROGRESS_FILE = "build_progress.json"
"""The progress file in a build directory."""
STAGES = ("tokenizer", "pretraining", "saving")
"""The build's stages, in order."""


@dataclass(frozen=True)
class BuildProgress:
    """One reading of a demo-model build's progress file."""

    stage: str
    """tokenizer, pretraining or saving."""
    step: int
    """Pre-training steps done."""
    total: int
    """Pre-training steps in all."""
    elapsed: float
    """Seconds of pre-training so far (0 before it starts)."""
    updated_at: float
    """When the file was written (time.time())."""
    pid: int | None = None
    """The building process."""

    def seconds_left(self, now: float | None = None) -> float | None:
        """Time left in the pre-training at the pace so far (None until a step is done), counted from `now`."""
        eta = eta_seconds(self.step, self.total, self.elapsed)
        if eta is None:
            return None
        since = max(0.0, (time.time() if now is None else now) - self.updated_at)
        return max(0.0, eta - since)

    def describe(self, now: float | None = None) -> str:
        """`building the demo model: step 37/100, about 50s left` (or what it does before or after its steps), in
        the current language."""
        if self.stage == "tokenizer":
            return _("building the demo model: training its tokenizer")
        if self.stage == "saving":
            return _("building the demo model: saving it")
        left = self.seconds_left(now) if self.step < self.total else None
        if left is None:
            return _("building the demo model: step {step}/{total}").format(step=self.step, total=self.total)
        return _("building the demo model: step {step}/{total}, about {left} left").format(
            step=self.step, total=self.total, left=format_duration(left))


def write_progress(build_dir: Path, *, stage: str, step: int = 0, total: int = 0, elapsed: float = 0.0) -> None:
    """Record the build's progress in BUILD_DIR/PROGRESS_FILE, atomically (a reader never sees half a file)."""
    if stage not in STAGES:
        raise ValueError(f"unknown build stage {stage!r}")
    data = {"stage": stage, "step": int(step), "total": int(total), "elapsed": round(float(elapsed), 3),
            "updated_at": round(time.time(), 3), "pid": os.getpid()}
    target = Path(build_dir) / PROGRESS_FILE
    tmp = target.with_name(f".{PROGRESS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def read_progress(build_dir: Path) -> BuildProgress | None:
    """The progress in BUILD_DIR/PROGRESS_FILE; None when it is missing or not a progress record."""
    try:
        data = json.loads((Path(build_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
        progress = BuildProgress(stage=str(data["stage"]), step=int(data["step"]), total=int(data["total"]),
                                 elapsed=float(data["elapsed"]), updated_at=float(data["updated_at"]),
                                 pid=int(data["pid"]) if data.get("pid") is not None else None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return progress if progress.stage in STAGES and progress.total >= 0 and progress.step >= 0 else None


def build_dirs(cache: Path | None = None) -> list[Path]:
    """The demo-model builds under way in the cache: `.demo-model.*` directories (not an old build being
    deleted)."""
    from lora_tui.core.paths import cache_dir

    root = cache if cache is not None else cache_dir()
    try:
        return [p for p in root.glob(f".{DEMO_DIR_NAME}.*")
                if p.is_dir() and not p.name.startswith(f".{DEMO_DIR_NAME}.old.")]
    except OSError:
        return []


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True


def current_build(cache: Path | None = None) -> BuildProgress | None:
    """The progress of the demo-model build under way (the most recently updated one whose process is alive),
    None when none is building or none has written its progress yet."""
    found = [p for p in (read_progress(d) for d in build_dirs(cache)) if p is not None and _alive(p.pid)]
    return max(found, key=lambda p: p.updated_at) if found else None


@dataclass
class BuildPrinter:
    """Prints a build's progress on a terminal now and then (`lora-tui train` following its run): when the
    stage changes, and otherwise every `every_steps` steps or `every_s` seconds."""

    enabled: bool = True
    """False: print nothing (the run does not use the demo model)."""
    every_steps: int = 10
    """Steps between lines."""
    every_s: float = 15.0
    """Most seconds between lines while steps are done."""
    _last: tuple[str, int] | None = None
    _last_t: float = 0.0

    @classmethod
    def for_run(cls, run_dir: Path) -> BuildPrinter:
        """A printer for a run: enabled when its run.toml trains the demo model."""
        from lora_tui.core.plan import load_run_file
        from lora_tui.core.runs import RUN_FILE
        from lora_tui.errors import UserError

        try:
            settings, _sources = load_run_file(Path(run_dir) / RUN_FILE)
        except UserError:
            return cls(enabled=False)
        return cls(enabled=str(settings.get("model", "demo")).strip().lower() == "demo")

    def tick(self, out: TextIO, cache: Path | None = None) -> str | None:
        """Print the current progress when it is worth a line; returns the line printed (None when none)."""
        if not self.enabled:
            return None
        progress = current_build(cache)
        if progress is None:
            return None
        now = time.time()
        key = (progress.stage, progress.step)
        if self._last is not None:
            same_stage = self._last[0] == progress.stage
            if key == self._last or (same_stage and progress.step < self._last[1] + self.every_steps
                                     and now - self._last_t < self.every_s and progress.step < progress.total):
                return None
        self._last, self._last_t = key, now
        line = f"lora-tui: {progress.describe(now)}"
        out.write(line + "\n")
        out.flush()
        return line
