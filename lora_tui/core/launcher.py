"""Gather a plan's inputs, validate a resolved plan for launch, and start it, without the training stack.

`lora-tui train` and the TUI both go through here; the plan itself is assembled only by `core.resolve`:

1. `resolve_run(given, config=...)` (the CLI): reads the run file, inspects the data with the model's local
   tokenizer, detects the VRAM, loads the model's inventory, calls `resolve`, then `check_for_launch`.
   The TUI has all of that already and calls `launch_run(resolved)`, which runs `check_for_launch` only.
2. `check_for_launch(resolved)`: data has no problems, the model is available offline, its targets exist, a
   sharded run has GPUs here (as detected), the output directory policy (new, resume, overwrite), the memory
   estimate (`core.launch_checks`). No second recommendation.
3. `prepare_run_dir(run)`: takes the directory's lock (`core.run_lock`) before it writes anything, checks the
   output policy again under it, then writes RUN/run.toml, RUN/launch.json and status.json (`starting`); with
   `--overwrite` the old run is moved into RUN/.lora_tui_trash (`core.output_dir`), put back if the launch fails,
   and deleted by the training process once it has started. A write that fails (a full disk) undoes the launch.
4. `start_worker(run_dir)`: starts `python -m lora_tui.train RUN` (or torchrun for several processes) as its
   own session, output to RUN/run.log, so the run outlives the terminal or TUI that started it. The child
   inherits the locked descriptor, so the directory has one owner without a gap.

Errors and warnings are in the language shown; what goes into a run file (status.json's error) is English.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import distributed, launch_checks, output_dir, run_lock, run_setup, runs
from lora_tui.core.launch_checks import protected_paths
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan, load_run_file
from lora_tui.core.resolve import PlanInputs, ResolvedPlan, resolve
from lora_tui.errors import UserError
from lora_tui.i18n import _, english, language

MAX_OOM_RETRIES = 4
"""Upper bound of `--auto-oom-retry` (the guide has four OOM remedies)."""
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
"""The signals that ask a run to save and stop."""


@dataclass
class ResolvedRun:
    """A resolved plan validated for launch, ready to be written and started."""

    plan: TrainingPlan
    """Every setting of the run."""
    sources: dict[str, str]
    """Field -> given / config / recommended / default."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Field -> why it has its value (every value a rule chose)."""
    mode: str = "new"
    """Output directory policy outcome: new, resume or overwrite."""
    data_report: dict[str, Any] | None = None
    """core.dataset's report of the data file, as a dict."""
    memory: dict[str, Any] | None = None
    """The memory estimate made before the run, as a dict."""
    inventory: Any = None
    """The model's ModelInventory (for the per-layer math)."""
    model_available: bool = True
    """Whether the model's weights are on this machine (the demo model is always buildable)."""
    warnings: list[str] = field(default_factory=list)
    """Things the user should know that do not stop a dry run."""
    auto_oom_retry: int = 0
    """How many times to retry with the guide's next OOM settings."""
    notes: list[str] = field(default_factory=list)
    """The recommendation's notes."""
    target_pattern: str = "custom"
    """The guide's pattern the targets are on this model, or custom."""
    resume_from: str | None = None
    """For a resume: the checkpoint (relative to the run directory) the launcher found usable."""
    inputs: PlanInputs | None = None
    """What the plan was resolved from (to resolve it again, in English for the run files, without measuring)."""

    def __post_init__(self) -> None:
        if self.mode not in ("new", "resume", "overwrite"):
            raise ValueError("`mode` must be new, resume or overwrite")
        if not 0 <= self.auto_oom_retry <= MAX_OOM_RETRIES:
            raise UserError(_("--auto-oom-retry must be between 0 and {most}").format(most=MAX_OOM_RETRIES))


def _vram_bytes() -> int | None:
    from lora_tui.core.hardware.detect import detect_hardware

    return detect_hardware().usable_vram_bytes


def _read_config(path: str | Path) -> dict[str, Any]:
    """A run file's [plan] settings; a key that is no setting (a typo) is refused, not silently dropped."""
    values, _sources = load_run_file(path)
    unknown = sorted(set(values) - set(TrainingPlan.field_names()))
    if unknown:
        raise UserError(_("{path}: unknown setting(s) {names}; known: {known}").format(
            path=path, names=", ".join(unknown), known=", ".join(TrainingPlan.field_names())))
    return values


def inspect_data(data: str | None, model: str, max_seq_length: int | None = None,
                 columns: str | None = None) -> Any:
    """The DatasetReport of `data` (the built-in sample when None) read with the `columns` mapping, token lengths
    measured with the model's tokenizer when it is on this machine, as the wizard's Data step does."""
    from lora_tui.core.dataset.report import inspect_for_model

    return inspect_for_model(data or str(SAMPLE_DATA_PATH), model, max_seq_length=max_seq_length, max_issues=20,
                             columns=columns)


def resolve_run(given: Mapping[str, Any], *, config: str | None = None, resume: bool = False,
                overwrite: bool = False, dry_run: bool = False, auto_oom_retry: int = 0,
                vram_bytes: int | None = None, runs_root: Path | None = None,
                inputs: PlanInputs | None = None) -> ResolvedRun:
    """The CLI's path: gather the inputs (or reuse `inputs`), `resolve` once, validate for launch. Raises
    UserError."""
    resolved = resolve_plan(given, config=config, resume=resume, vram_bytes=vram_bytes, runs_root=runs_root,
                            inputs=inputs)
    return check_for_launch(resolved, resume=resume, overwrite=overwrite, dry_run=dry_run,
                            auto_oom_retry=auto_oom_retry)


def resolve_plan(given: Mapping[str, Any], *, config: str | None = None, resume: bool = False,
                 vram_bytes: int | None = None, runs_root: Path | None = None,
                 inputs: PlanInputs | None = None) -> ResolvedPlan:
    """Read the run file (`--config`, or the run's own run.toml on resume), inspect the data with the model's
    local tokenizer, detect the VRAM, load the model's inventory, and `resolve`; with `inputs` (an earlier
    resolution's: the same data, VRAM and model), those are not measured again."""
    config_values: dict[str, Any] = {}
    if config is not None:
        config_values = _read_config(config)
    elif resume and given.get("output"):
        run_file = Path(str(given["output"])) / runs.RUN_FILE
        if run_file.is_file():
            config_values = _read_config(run_file)
    if inputs is not None:
        return resolve(given, inputs, config=config_values)
    model = str(given.get("model") or config_values.get("model") or TrainingPlan.model)
    from lora_tui.core.models.modules import load_inventory

    seq = given.get("max_seq_length") or config_values.get("max_seq_length")
    columns = given.get("columns") or config_values.get("columns")
    inputs = PlanInputs(data_report=inspect_data(given.get("data") or config_values.get("data"), model, seq,
                                                 columns),
                        vram_bytes=vram_bytes if vram_bytes is not None else _vram_bytes(),
                        inventory=load_inventory(model), runs_root=runs_root)
    return resolve(given, inputs, config=config_values)


def check_for_launch(resolved: ResolvedPlan, *, resume: bool = False, overwrite: bool = False,
                     dry_run: bool = False, auto_oom_retry: int = 0) -> ResolvedRun:
    """Validate a resolved plan for launch: data, model, targets, output directory, memory. Raises UserError."""
    plan, inputs = resolved.plan, resolved.inputs
    report = inputs.data_report if inputs.data_report is not None else inspect_data(plan.data, plan.model,
                                                                                   plan.max_seq_length, plan.columns)
    launch_checks.check_data(report, plan.data)
    from lora_tui.core.trackers import check_tracker

    check_tracker(plan.report_to)  # a tracker that is not installed: refused before anything is written
    report = report.at(plan.max_seq_length)  # token statistics against the length the run trains with
    inventory, available, warnings = launch_checks.check_model(plan, inputs.inventory, dry_run)
    warnings += launch_checks.check_gpus(plan, dry_run)  # this machine's, whatever VRAM the plan was made for
    from lora_tui.core.dataset.report import truncation_warning

    warnings += [w for w in (truncation_warning(report),) if w]
    mode, resume_from = ("resume" if resume else "new"), None
    if plan.node_rank > 0:
        pass  # node 0 owns the run directory (output policy, checkpoints, disk); this node writes only its log
    elif not dry_run or resume:
        mode, resume_from, notes = launch_checks.output_mode(plan, resume=resume, overwrite=overwrite)
        warnings += notes
    if not dry_run and plan.node_rank == 0:
        warnings += launch_checks.check_space(plan, inventory)
    return ResolvedRun(plan=plan, sources=dict(resolved.sources), reasons=dict(resolved.reasons), mode=mode,
                       data_report=report.to_dict() | {"examples": report.examples},
                       memory=_memory(inventory, plan, inputs.vram_bytes, report.token_stats),
                       inventory=inventory,
                       model_available=available, warnings=warnings, auto_oom_retry=auto_oom_retry,
                       notes=list(resolved.notes), target_pattern=resolved.target_pattern, resume_from=resume_from,
                       inputs=inputs)


def _memory(inventory: Any, plan: TrainingPlan, vram: int | None, lengths: Any) -> dict[str, Any] | None:
    with english():  # launch.json holds the estimate, and run files are English whatever the language shown
        return memory_estimate(inventory, plan, vram, lengths)


def memory_estimate(inventory: Any, plan: TrainingPlan, vram: int | None, lengths: Any) -> dict[str, Any] | None:
    """The run's memory estimate as a dict (per GPU too for several processes), in the current language; None
    when the model cannot be estimated. launch.json's is made in English (`_memory`); a dry run shows this."""
    from lora_tui.core.memory_sharded import plan_memory

    try:
        memory = plan_memory(inventory, plan, vram, lengths=lengths)
    except (UserError, ValueError):
        return None
    return memory.one_gpu.to_dict() | ({"per_gpu": memory.per_gpu} if memory.per_gpu else {})


# ---- writing and starting -----------------------------------------------------------------------------------


def prepare_run_dir(resolved: ResolvedRun) -> Path:
    """Take the run directory and write run.toml, launch.json and status.json per `resolved.mode`.

    The directory's lock is taken before anything is written and kept (for `start_worker` to hand over): a
    second launcher on the same directory is refused. Raises UserError and leaves the directory as it found it
    when it cannot be written (a full disk included)."""
    output = resolved.plan.output
    run_dir = run_setup.run_dir_path(output)
    created = run_setup.make_run_dir(run_dir, output)
    lock = run_setup.lock_run_dir(run_dir, output, created)
    moved: Path | None = None
    try:
        mode = runs.check_output_dir(run_dir, resume=resolved.mode == "resume",
                                     overwrite=resolved.mode == "overwrite", held_by_caller=True,
                                     protect=protected_paths(resolved.plan))  # again: another launch may have won
        if mode == "overwrite":
            moved = output_dir.move_to_trash(run_dir)
        run_setup.write_run_files(run_dir, resolved, mode)
    except OSError as exc:
        run_setup.undo(run_dir, moved, created, resolved.mode)
        lock.release()
        raise UserError(_("--output {path}: cannot write the run directory ({error}); nothing was changed: free "
                          "space or choose a directory you can write").format(path=output,
                                                                              error=exc.strerror or exc)) from None
    except BaseException:
        if moved is not None:
            run_setup.undo(run_dir, moved, created, resolved.mode)
        lock.release()
        raise
    return run_dir


def worker_command(run_dir: Path, *, resume: bool = False, num_processes: int = 1,
                   plan: TrainingPlan | None = None) -> list[str]:
    """The command line of this machine's training process (torchrun with its rendezvous for several)."""
    if plan is None:
        plan = TrainingPlan(num_processes=num_processes)
    return distributed.worker_command(run_dir, plan, resume=resume)


def start_worker(run_dir: Path, *, resume: bool = False, num_processes: int = 1,
                 env: Mapping[str, str] | None = None, plan: TrainingPlan | None = None) -> subprocess.Popen[bytes]:
    """Start the training process in its own session, output appended to RUN/run.log; records its pid.

    The process inherits the directory's lock (taken by `prepare_run_dir`, else here) and holds it until it
    exits; this process lets go of its own copy once the child runs."""
    lock = run_lock.held(run_dir) or run_lock.acquire(run_dir)
    if lock is None:
        raise UserError(_("{path}: another lora-tui process is starting or running a run there").format(path=run_dir))
    child_env = {**os.environ, **(env or {}), **run_setup.WORKER_ENV, run_lock.LOCK_FD_ENV: str(lock.fd)}
    # A single worker starts with SIGINT/SIGTERM blocked (the mask survives exec) and unblocks them once its
    # stop handler is in place, so a stop asked during its start-up is a graceful stop, not a kill. torchrun
    # is left alone: it forwards SIGTERM to its workers, and multi-process runs stop through the STOP file.
    block = num_processes <= 1 and (plan is None or plan.world_size <= 1) and hasattr(signal, "pthread_sigmask")
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if block else None
    try:
        with open(run_dir / runs.LOG_FILE, "ab") as log:
            proc = subprocess.Popen(worker_command(run_dir, resume=resume, num_processes=num_processes, plan=plan),
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=child_env, cwd=os.getcwd(),
                                    pass_fds=(lock.fd,) if lock.fd >= 0 else ())
    except OSError as exc:
        lock.release()
        runs.update_status(run_dir, state="failed", ended_at=time.time(),  # a run file: English
                           error=f"cannot start the training process: {exc.strerror or exc}")
        raise UserError(_("{path}: cannot start the training process ({error})").format(
            path=run_dir, error=exc.strerror or exc)) from None
    finally:
        if saved_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
    try:
        status = runs.read_status(run_dir)
        if status is None or status.pid is None:  # the worker may already have written its own
            runs.update_status(run_dir, pid=proc.pid, pgid=proc.pid,
                               pid_started=run_lock.process_start_time(proc.pid))
    except OSError:
        pass  # a full disk: the worker records its pid itself
    lock.release()  # the child holds the lock now: the same open file description
    return proc


def launch(resolved: ResolvedRun) -> tuple[Path, subprocess.Popen[bytes]]:
    """prepare_run_dir + start_worker: what the TUI's Start button does (on a node other than 0: start_node)."""
    plan = resolved.plan
    if plan.node_rank > 0:
        run_dir = run_setup.run_dir_path(plan.output)
        run_setup.make_run_dir(run_dir, plan.output)
        command = worker_command(run_dir, resume=resolved.mode == "resume", plan=plan)
        return run_dir, run_setup.start_node(run_dir, plan, command)
    run_dir = prepare_run_dir(resolved)
    try:
        proc = start_worker(run_dir, resume=resolved.mode == "resume", num_processes=plan.num_processes,
                            plan=plan)
    finally:
        lock = run_lock.held(run_dir)
        if lock is not None:
            lock.release()
    return run_dir, proc


def mark_exited(run_dir: Path, returncode: int) -> runs.RunStatus | None:
    """After the process exited: a status still saying starting/running becomes `failed` (see run.log; the error in
    English, as every run file)."""
    status = runs.read_status(run_dir)
    if status is not None and status.state in ("starting", "running"):
        return runs.update_status(run_dir, state="failed", ended_at=time.time(),
                                  error=f"training process exited with status {returncode}; see run.log")
    return status


def describe_sources(resolved: ResolvedRun) -> list[dict[str, Any]]:
    """Rows for a plan table: field, value, source, reason."""
    return [{"field": k, "value": v, "source": resolved.sources.get(k, "default"),
             "reason": resolved.reasons.get(k, "")} for k, v in resolved.plan.to_dict().items()]


def to_json(resolved: ResolvedRun) -> str:
    """The resolved run as JSON (plan, sources, reasons, notes, target pattern, memory, warnings)."""
    return json.dumps({"plan": resolved.plan.to_dict(), "sources": resolved.sources, "reasons": resolved.reasons,
                       "notes": resolved.notes, "target_pattern": resolved.target_pattern,
                       "mode": resolved.mode, "data": resolved.data_report, "memory": resolved.memory,
                       "warnings": resolved.warnings,
                       "model_available": resolved.model_available}, indent=2, default=str)


@dataclass(frozen=True)
class LaunchedRun:
    """A training process started in the background."""

    run_dir: Path
    """The run directory it writes."""
    pid: int
    """Its process id (also its process group)."""


def launch_run(resolved: ResolvedPlan, *, overwrite: bool = False, resume: bool = False) -> LaunchedRun:
    """The TUI's path: validate the wizard's resolved plan for launch, write its run directory, start it detached.

    The same launch checks as `lora-tui train` run (data, model offline, targets, output directory policy); the
    plan, its sources and its reasons are kept exactly as the wizard resolved them. The checks are made in English,
    since what they say (the estimate, the warnings, the data report) goes into launch.json and run files are
    English whatever the language shown; a refusal is in the language shown (the checks made again in it refuse
    the same way), and so is one that only writing or starting the run meets (its lock, a full disk).
    """
    try:
        with english():
            run = check_for_launch(resolved, resume=resume, overwrite=overwrite)
    except UserError as refused:
        if language() == "en":
            raise
        check_for_launch(resolved, resume=resume, overwrite=overwrite)
        raise refused from None  # passed the second time (the directory changed in between): the refusal stands
    run_dir, proc = launch(run)
    return LaunchedRun(run_dir=run_dir, pid=proc.pid)
