"""Gather a plan's inputs, validate a resolved plan for launch, and start it, without the training stack.

`lora-tui train` and the TUI both go through here; the plan itself is assembled only by `core.resolve`:

1. `resolve_run(given, config=...)` (the CLI): reads the run file, inspects the data with the model's local
   tokenizer, detects the VRAM, loads the model's inventory, calls `resolve`, then `check_for_launch`.
   The TUI has all of that already and calls `launch_run(resolved)`, which runs `check_for_launch` only.
2. `check_for_launch(resolved)`: data has no problems, the model is available offline, its targets exist, the
   output directory policy (new, resume, overwrite), the memory estimate. No second recommendation.
3. `prepare_run_dir(run)`: writes RUN/run.toml, RUN/launch.json and status.json (`starting`); with
   `--overwrite` the old directory is moved aside and deleted only once the new one is set up.
4. `start_worker(run_dir)`: starts `python -m lora_tui.train RUN` (or torchrun for several processes) as its
   own session, output to RUN/run.log, so the run outlives the terminal or TUI that started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core import runs
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan, load_run_file
from lora_tui.core.resolve import PlanInputs, ResolvedPlan, resolve
from lora_tui.errors import UserError

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

    def __post_init__(self) -> None:
        if self.mode not in ("new", "resume", "overwrite"):
            raise ValueError("`mode` must be new, resume or overwrite")
        if not 0 <= self.auto_oom_retry <= MAX_OOM_RETRIES:
            raise UserError(f"--auto-oom-retry must be between 0 and {MAX_OOM_RETRIES}")


def _vram_bytes() -> int | None:
    from lora_tui.core.hardware.detect import detect_hardware

    return detect_hardware().usable_vram_bytes


def _read_config(path: str | Path) -> dict[str, Any]:
    """A run file's [plan] settings; a key that is no setting (a typo) is refused, not silently dropped."""
    values, _ = load_run_file(path)
    unknown = sorted(set(values) - set(TrainingPlan.field_names()))
    if unknown:
        raise UserError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(TrainingPlan.field_names())}")
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
                vram_bytes: int | None = None, runs_root: Path | None = None) -> ResolvedRun:
    """The CLI's path: gather the inputs, `resolve` once, validate for launch. Raises UserError."""
    resolved = resolve_plan(given, config=config, resume=resume, vram_bytes=vram_bytes, runs_root=runs_root)
    return check_for_launch(resolved, resume=resume, overwrite=overwrite, dry_run=dry_run,
                            auto_oom_retry=auto_oom_retry)


def resolve_plan(given: Mapping[str, Any], *, config: str | None = None, resume: bool = False,
                 vram_bytes: int | None = None, runs_root: Path | None = None) -> ResolvedPlan:
    """Read the run file (`--config`, or the run's own run.toml on resume), inspect the data with the model's
    local tokenizer, detect the VRAM, load the model's inventory, and `resolve`."""
    config_values: dict[str, Any] = {}
    if config is not None:
        config_values = _read_config(config)
    elif resume and given.get("output"):
        run_file = Path(str(given["output"])) / runs.RUN_FILE
        if run_file.is_file():
            config_values = _read_config(run_file)
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
    _check_data(report, plan.data)
    report = report.at(plan.max_seq_length)  # token statistics against the length the run trains with
    inventory, available, warnings = _check_model(plan, inputs.inventory, dry_run)
    from lora_tui.core.dataset.report import truncation_warning

    warnings += [w for w in (truncation_warning(report),) if w]
    mode = "new" if dry_run and not resume else _output_mode(plan, resume=resume, overwrite=overwrite)
    return ResolvedRun(plan=plan, sources=dict(resolved.sources), reasons=dict(resolved.reasons), mode=mode,
                       data_report=report.to_dict() | {"examples": report.examples},
                       memory=_memory(inventory, plan, inputs.vram_bytes), inventory=inventory,
                       model_available=available, warnings=warnings, auto_oom_retry=auto_oom_retry,
                       notes=list(resolved.notes), target_pattern=resolved.target_pattern)


def _check_data(report: Any, data: str | None) -> None:
    if report.ok:
        return
    path = data or str(SAMPLE_DATA_PATH)
    lines = [str(issue) for issue in report.issues[:10]]
    more = report.issue_count - len(lines)
    tail = f"\n... and {more} more (run `lora-tui inspect {path}`)" if more > 0 else ""
    raise UserError(f"--data {path}: {report.issue_count} problem(s):\n" + "\n".join(lines) + tail)


def _check_model(plan: TrainingPlan, inventory: Any, dry_run: bool) -> tuple[Any, bool, list[str]]:
    from lora_tui.core.models.modules import check_targets, is_available_offline, load_inventory

    if inventory is None:
        inventory = load_inventory(plan.model)
    check_targets(inventory, list(plan.target_modules))
    if plan.model.strip().lower() == "demo":
        return inventory, True, []
    available, reason = is_available_offline(plan.model)
    if available:
        return inventory, True, []
    message = (f"--model {plan.model}: weights not in the local cache ({reason}); a real run needs them. "
               "`--model demo` or a local directory with the weights works offline.")
    if dry_run:
        return inventory, False, [message]
    raise UserError(message)


def _output_mode(plan: TrainingPlan, *, resume: bool, overwrite: bool) -> str:
    if resume and overwrite:
        raise UserError("--resume and --overwrite cannot be combined")
    mode = runs.check_output_dir(plan.output, resume=resume, overwrite=overwrite)
    if mode == "resume" and plan.max_steps > 0:
        checkpoint = runs.latest_complete_checkpoint(plan.output)
        step = runs.checkpoint_step(checkpoint) if checkpoint is not None else None
        if step is not None and step >= plan.max_steps:  # the Trainer would still take one more step
            raise UserError(f"--resume: {plan.output} already reached step {step} of --max-steps "
                            f"{plan.max_steps}; pass a larger --max-steps to train further")
    return mode


def _memory(inventory: Any, plan: TrainingPlan, vram: int | None) -> dict[str, Any] | None:
    from lora_tui.core.memory import plan_estimate

    try:
        return plan_estimate(inventory, plan, vram).to_dict()
    except (UserError, ValueError):
        return None


# ---- writing and starting -----------------------------------------------------------------------------------


def prepare_run_dir(resolved: ResolvedRun) -> Path:
    """Create or reuse the run directory per `resolved.mode`; write run.toml, launch.json and status.json."""
    run_dir = Path(resolved.plan.output).expanduser().resolve()
    aside: Path | None = None
    try:
        if resolved.mode == "overwrite" and run_dir.exists():
            aside = run_dir.with_name(f".{run_dir.name}.replaced-{time.time_ns()}")
            run_dir.rename(aside)
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if aside is not None and not run_dir.exists():
            aside.rename(run_dir)  # put the old run back: nothing was replaced
        raise UserError(f"--output {resolved.plan.output}: cannot create the run directory "
                        f"({exc.strerror or exc}); choose a directory you can write") from None
    (run_dir / runs.STOP_FILE).unlink(missing_ok=True)
    (run_dir / runs.RUN_FILE).write_text(resolved.plan.to_toml(resolved.sources), encoding="utf-8")
    from lora_tui.core.run_files import LaunchInfo, write_launch_info

    write_launch_info(run_dir, LaunchInfo(data_report=resolved.data_report, memory_estimate=resolved.memory,
                                          mode=resolved.mode, auto_oom_retry=resolved.auto_oom_retry,
                                          reasons=dict(resolved.reasons), command_line=resolved.plan.command_line()))
    status = runs.RunStatus(state="starting", started_at=time.time(),
                            max_steps=resolved.plan.max_steps if resolved.plan.max_steps > 0 else None)
    previous = runs.read_status(run_dir) if resolved.mode == "resume" else None
    if previous is not None:  # a resumed run keeps its progress until the worker reports again
        status.step, status.last_checkpoint = previous.step, previous.last_checkpoint
        status.max_steps = previous.max_steps or status.max_steps
        status.extra = {**previous.extra, "resumed_from_step": previous.step}
    runs.write_status(run_dir, status)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return run_dir


def worker_command(run_dir: Path, *, resume: bool = False, num_processes: int = 1) -> list[str]:
    """The command line of the training process."""
    tail = ["-m", "lora_tui.train", str(run_dir), *(["--resume"] if resume else [])]
    if num_processes <= 1:
        return [sys.executable, *tail]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}",
            *tail]


def start_worker(run_dir: Path, *, resume: bool = False, num_processes: int = 1,
                 env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start the training process in its own session, output appended to RUN/run.log; records its pid."""
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    # A single worker starts with SIGINT/SIGTERM blocked (the mask survives exec) and unblocks them once its
    # stop handler is in place, so a stop asked during its start-up is a graceful stop, not a kill. torchrun
    # is left alone: it forwards SIGTERM to its workers, and multi-process runs stop through the STOP file.
    block = num_processes <= 1 and hasattr(signal, "pthread_sigmask")
    saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if block else None
    try:
        with open(run_dir / runs.LOG_FILE, "ab") as log:
            proc = subprocess.Popen(worker_command(run_dir, resume=resume, num_processes=num_processes),
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=child_env, cwd=os.getcwd())
    finally:
        if saved_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
    runs.update_status(run_dir, pid=proc.pid, pgid=proc.pid)
    return proc


def launch(resolved: ResolvedRun) -> tuple[Path, subprocess.Popen[bytes]]:
    """prepare_run_dir + start_worker: what the TUI's Start button does."""
    run_dir = prepare_run_dir(resolved)
    proc = start_worker(run_dir, resume=resolved.mode == "resume", num_processes=resolved.plan.num_processes)
    return run_dir, proc


def mark_exited(run_dir: Path, returncode: int) -> runs.RunStatus | None:
    """After the process exited: a status still saying starting/running becomes `failed` (see run.log)."""
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
    plan, its sources and its reasons are kept exactly as the wizard resolved them.
    """
    run = check_for_launch(resolved, resume=resume, overwrite=overwrite)
    run_dir, proc = launch(run)
    return LaunchedRun(run_dir=run_dir, pid=proc.pid)
