"""Resolve, validate and start a training run, without importing the training stack.

`lora-tui train` and the TUI both go through here:

1. `resolve_run(given, config=...)`: flags > `--config` run file > the recommendation for this hardware,
   data, task and model > TrainingPlan defaults, with each field's source recorded; then everything is
   validated (plan, data file, model availability offline, target modules, output directory policy).
2. `prepare_run_dir(resolved)`: writes RUN/run.toml, RUN/launch.json and status.json (`starting`); with
   `--overwrite` the old directory is moved aside and deleted only once the new one is set up.
3. `start_worker(run_dir)`: starts `python -m lora_tui.train RUN` (or torchrun for several processes) as its
   own session, output to RUN/run.log, so the run outlives the terminal or TUI that started it.
"""

from __future__ import annotations

import json
import os
import re
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
from lora_tui.core.paths import SAMPLE_DATA_PATH, output_root
from lora_tui.core.plan import TrainingPlan, load_run_file
from lora_tui.errors import UserError

MAX_OOM_RETRIES = 4
"""Upper bound of `--auto-oom-retry` (the guide has four OOM remedies)."""
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
"""The signals that ask a run to save and stop."""


@dataclass
class ResolvedRun:
    """A validated run, ready to be written and started."""

    plan: TrainingPlan
    """Every setting of the run."""
    sources: dict[str, str]
    """Field -> given / config / recommended / default."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Field -> why the advisor recommended its value (recommended fields only)."""
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

    def __post_init__(self) -> None:
        if self.mode not in ("new", "resume", "overwrite"):
            raise ValueError("`mode` must be new, resume or overwrite")
        if not 0 <= self.auto_oom_retry <= MAX_OOM_RETRIES:
            raise UserError(f"--auto-oom-retry must be between 0 and {MAX_OOM_RETRIES}")


def _default_output(model: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name or model).strip("-") or "run"
    return str(output_root() / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}")


def _vram_bytes() -> int | None:
    from lora_tui.core.hardware.detect import detect_hardware

    return detect_hardware().usable_vram_bytes


def _merge(given: Mapping[str, Any], config: Mapping[str, Any], recommended: Mapping[str, Any]
           ) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in TrainingPlan.field_names():
        for layer, label in ((given, "given"), (config, "config"), (recommended, "recommended")):
            if name in layer and layer[name] is not None:
                values[name], sources[name] = layer[name], label
                break
        else:
            sources[name] = "default"
    return values, sources


def _inspect(data: str | None) -> dict[str, Any]:
    from lora_tui.core.dataset.report import inspect_dataset

    path = data or str(SAMPLE_DATA_PATH)
    report = inspect_dataset(path, max_issues=20)
    if not report.ok:
        lines = [str(issue) for issue in report.issues[:10]]
        more = report.issue_count - len(lines)
        tail = f"\n... and {more} more (run `lora-tui inspect {path}`)" if more > 0 else ""
        raise UserError(f"--data {path}: {report.issue_count} problem(s):\n" + "\n".join(lines) + tail)
    return report.to_dict() | {"examples": report.examples}


def _check_model(plan: TrainingPlan, dry_run: bool) -> tuple[Any, bool, list[str]]:
    from lora_tui.core.models.modules import check_targets, is_available_offline, load_inventory

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


def _read_config(path: str | Path) -> dict[str, Any]:
    """A run file's [plan] settings; a key that is no setting (a typo) is refused, not silently dropped."""
    values, _ = load_run_file(path)
    unknown = sorted(set(values) - set(TrainingPlan.field_names()))
    if unknown:
        raise UserError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(TrainingPlan.field_names())}")
    return values


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def resolve_run(given: Mapping[str, Any], *, config: str | None = None, resume: bool = False,
                overwrite: bool = False, dry_run: bool = False, auto_oom_retry: int = 0,
                vram_bytes: int | None = None) -> ResolvedRun:
    """Merge flags, run file, recommendation and defaults; validate everything. Raises UserError."""
    config_values: dict[str, Any] = {}
    if config is not None:
        config_values = _read_config(config)
    elif resume and given.get("output"):
        run_file = Path(str(given["output"])) / runs.RUN_FILE
        if run_file.is_file():
            config_values = _read_config(run_file)
    model = str(given.get("model") or config_values.get("model") or "demo")
    data = given.get("data") or config_values.get("data")
    data_report = _inspect(data)
    from lora_tui.core.models.modules import load_inventory
    from lora_tui.core.recommend import recommend

    vram = vram_bytes if vram_bytes is not None else _vram_bytes()
    task = given.get("task") or config_values.get("task")
    rec = recommend(task=task, examples=int(data_report["examples"]), vram_bytes=vram,
                    inventory=load_inventory(model))
    values, sources = _merge(given, config_values, rec.values)
    _keep_effective_batch(values, sources, rec.values, rec.reasons)
    _alpha_follows_given_rank(values, sources, rec.values, rec.reasons)
    values.setdefault("model", model)
    sources["model"] = sources.get("model", "default")
    if "output" not in values:
        values["output"] = _default_output(model)
    values = _account_for_processes(values, sources)
    plan = TrainingPlan.from_dict(values, where="train settings")
    inventory, available, warnings = _check_model(plan, dry_run)
    mode = "new" if dry_run and not resume else _output_mode(plan, resume=resume, overwrite=overwrite)
    memory = _memory(inventory, plan, vram)
    reasons = {k: v for k, v in rec.reasons.items() if sources.get(k) == "recommended"}
    return ResolvedRun(plan=plan, sources=sources, reasons=reasons, mode=mode, data_report=data_report,
                       memory=memory, inventory=inventory, model_available=available, warnings=warnings,
                       auto_oom_retry=auto_oom_retry)


def _keep_effective_batch(values: dict[str, Any], sources: dict[str, str], recommended: Mapping[str, Any],
                          reasons: dict[str, str]) -> None:
    """A given batch size with a recommended accumulation: scale the accumulation so that the recommended
    effective batch (16 in every resource row of the guide) stays, as the guide's tables intend."""
    if sources.get("per_device_train_batch_size") not in ("given", "config"):
        return
    if sources.get("gradient_accumulation_steps") != "recommended":
        return
    if not _positive_int(values["per_device_train_batch_size"]):
        return  # TrainingPlan refuses it, naming the flag
    target = recommended["per_device_train_batch_size"] * recommended["gradient_accumulation_steps"]
    batch = int(values["per_device_train_batch_size"])
    accum = max(1, round(target / batch))
    if accum != values["gradient_accumulation_steps"]:
        reasons["gradient_accumulation_steps"] = (
            f"{target} (the recommended effective batch) / batch {batch} = {accum}; "
            f"before the batch was given: {reasons['gradient_accumulation_steps']}")
        values["gradient_accumulation_steps"] = accum


def _alpha_follows_given_rank(values: dict[str, Any], sources: dict[str, str], recommended: Mapping[str, Any],
                              reasons: dict[str, str]) -> None:
    """A given r with a recommended alpha: keep the recommended alpha/r ratio (2 in the guide) for the given r."""
    if sources.get("lora_r") not in ("given", "config") or sources.get("lora_alpha") != "recommended":
        return
    if not _positive_int(values["lora_r"]):
        return  # TrainingPlan refuses it, naming the flag
    ratio = recommended["lora_alpha"] / recommended["lora_r"]
    alpha = values["lora_r"] * ratio
    alpha = int(alpha) if float(alpha).is_integer() else alpha
    if alpha != values["lora_alpha"]:
        reasons["lora_alpha"] = f"alpha = {ratio:g} x the given r {values['lora_r']} = {alpha} (alpha/r style kept)"
        values["lora_alpha"] = alpha


def _account_for_processes(values: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """With N processes, divide a recommended/default accumulation by N so the effective batch stays."""
    n = values.get("num_processes", 1)
    accum = values.get("gradient_accumulation_steps", TrainingPlan.gradient_accumulation_steps)
    if not (_positive_int(n) and _positive_int(accum)):
        return values  # TrainingPlan refuses a bad value, naming the flag
    if n > 1 and sources.get("gradient_accumulation_steps") in ("recommended", "default") and accum % n == 0:
        values["gradient_accumulation_steps"] = accum // n
        sources["gradient_accumulation_steps"] = sources["gradient_accumulation_steps"] + f" (/{n} processes)"
    return values


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
    """The resolved run as JSON (plan, sources, reasons, memory, warnings)."""
    return json.dumps({"plan": resolved.plan.to_dict(), "sources": resolved.sources, "reasons": resolved.reasons,
                       "mode": resolved.mode, "memory": resolved.memory, "warnings": resolved.warnings,
                       "model_available": resolved.model_available}, indent=2, default=str)


@dataclass(frozen=True)
class LaunchedRun:
    """A training process started in the background."""

    run_dir: Path
    """The run directory it writes."""
    pid: int
    """Its process id (also its process group)."""


def launch_run(plan: TrainingPlan, sources: Mapping[str, str], *, overwrite: bool = False,
               resume: bool = False) -> LaunchedRun:
    """Validate a complete plan (as the TUI builds it), write its run directory and start it detached.

    The same checks as `lora-tui train` run first (data, model offline, targets, output directory policy);
    `sources` (given / recommended / default per field) are kept in run.toml as the TUI recorded them.
    """
    resolved = resolve_run(plan.to_dict(), resume=resume, overwrite=overwrite)
    resolved.sources = {name: str(sources.get(name, resolved.sources.get(name, "default")))
                        for name in TrainingPlan.field_names()}
    run_dir, proc = launch(resolved)
    return LaunchedRun(run_dir=run_dir, pid=proc.pid)
