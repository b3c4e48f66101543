"""Setting up a run directory for `core.launcher.prepare_run_dir`: its path, its lock, its files, and undoing a
launch that could not be written (a full disk) so the directory is left as it was found. Errors are in the
language shown; the run files are English."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lora_tui.core import distributed, output_dir, run_lock, runs
from lora_tui.errors import UserError
from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.core.launcher import ResolvedRun
    from lora_tui.core.plan import TrainingPlan


def run_dir_path(output: str) -> Path:
    """The absolute run directory; UserError for a path that cannot be resolved (a symbolic link loop)."""
    path = Path(output).expanduser()
    output_dir.check_usable(path)
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        raise UserError(_("--output {path}: cannot be resolved (a symbolic link loop?); choose a real "
                          "directory").format(path=output)) from None


def make_run_dir(run_dir: Path, output: str) -> bool:
    """Create the run directory (and its parents); whether it was created."""
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(_("--output {path}: cannot create the run directory ({error}); choose a directory you can "
                          "write").format(path=output, error=exc.strerror or exc)) from None
    return created


def lock_run_dir(run_dir: Path, output: str, created: bool) -> run_lock.RunLock:
    """The directory's lock; UserError when another process holds it (or it cannot be created)."""
    try:
        lock = run_lock.acquire(run_dir)
    except OSError as exc:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise UserError(_("--output {path}: cannot create the run directory ({error}); choose a directory you can "
                          "write").format(path=output, error=exc.strerror or exc)) from None
    if lock is None:
        raise UserError(_("--output {path}: another lora-tui process is starting or running a run there; wait for "
                          "it, stop it (`lora-tui runs stop {path}`) or choose another directory").format(path=output))
    return lock


def write_run_files(run_dir: Path, resolved: ResolvedRun, mode: str) -> None:
    """run.toml, launch.json and status.json, each replaced atomically (status last)."""
    (run_dir / runs.STOP_FILE).unlink(missing_ok=True)
    runs.write_text_atomic(run_dir / runs.RUN_FILE, resolved.plan.to_toml(resolved.sources))
    from lora_tui.core.run_files import LaunchInfo, write_launch_info

    write_launch_info(run_dir, LaunchInfo(data_report=resolved.data_report, memory_estimate=resolved.memory,
                                          mode=mode, auto_oom_retry=resolved.auto_oom_retry,
                                          reasons=dict(resolved.reasons), command_line=resolved.plan.command_line()))
    status = runs.RunStatus(state="starting", started_at=time.time(),
                            max_steps=resolved.plan.max_steps if resolved.plan.max_steps > 0 else None)
    previous = runs.read_status(run_dir) if mode == "resume" else None
    if previous is not None:  # a resumed run keeps its progress until the worker reports again
        status.step, status.last_checkpoint = previous.step, previous.last_checkpoint
        status.max_steps = previous.max_steps or status.max_steps
        status.adapter_dir, status.adapter_step = previous.adapter_dir, previous.adapter_step
        status.extra = {**previous.extra, "resumed_from_step": previous.step}
    runs.write_status(run_dir, status)


def undo(run_dir: Path, moved: Path | None, created: bool, mode: str) -> None:
    """After a failed launch: put the replaced run back, or remove the directory this launch created."""
    try:
        if moved is not None:
            output_dir.restore_from_trash(run_dir, moved)
        elif created:
            shutil.rmtree(run_dir, ignore_errors=True)
        elif mode == "new":  # an empty directory that was there before: empty again
            for name in (runs.RUN_FILE, runs.LAUNCH_FILE, runs.STATUS_FILE, run_lock.LOCK_FILE):
                (run_dir / name).unlink(missing_ok=True)
    except OSError:
        pass


WORKER_ENV = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "LORA_TUI_LANG": "en"}
"""What every training process runs with: unbuffered output, quiet tokenizers, and English, since everything it
writes (run.log, status.json, training_info.json) is a run file, English whatever language the TUI shows."""


def start_node(run_dir: Path, plan: TrainingPlan, command: list[str]) -> subprocess.Popen[bytes]:
    """Start the training processes of a node other than 0: no lock and no run files (node 0 owns those), the
    plan handed over in the environment, output appended to RUN/node-R.log (the only file this node writes)."""
    env = {**os.environ, **WORKER_ENV, distributed.PLAN_ENV: plan.to_toml()}
    env.pop(run_lock.LOCK_FD_ENV, None)
    try:
        with open(run_dir / distributed.node_log_name(plan.node_rank), "ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env, cwd=os.getcwd())
    except OSError as exc:
        raise UserError(_("{path}: cannot start the training process ({error})").format(
            path=run_dir, error=exc.strerror or exc)) from None
