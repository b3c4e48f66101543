"""Resuming in the training process: the checkpoint verified with torch, the metrics history, finishing a run
whose last checkpoint is its last step, and saving the final adapter so that a failed save leaves the old one.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lora_tui.core import checkpoints, run_files, runs
from lora_tui.core.checkpoints import Choice
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import LaunchInfo, TrainingInfo

TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt")
"""Checkpoint files loaded with torch.load when the run resumes (each only when present, the first two always
written by the Trainer); under FSDP, `checkpoints.FSDP_STATE_FILES` stand for optimizer.pt."""
SAVING_PREFIX = ".adapter-saving-"
"""Temporary directory (in the run directory) the final adapter is saved into before it is moved into place."""


def torch_problem(checkpoint: Path) -> str | None:
    """What the Trainer would fail to load from a checkpoint: its optimizer and scheduler state (and scaler),
    loaded as tensors only (`weights_only=True`: a file that needs more is damaged, never executed)."""
    import torch

    fsdp = any((checkpoint / name).exists() for name in checkpoints.FSDP_STATE_FILES)  # one missing: damaged
    names = (*checkpoints.FSDP_STATE_FILES, *TORCH_FILES[1:]) if fsdp else TORCH_FILES
    for name in names:
        path = checkpoint / name
        if not path.exists():
            if name == "scaler.pt":
                continue
            return f"{name}: missing"
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure to load is damage; torch's hint is not repeated
            return f"{name}: cannot be loaded ({type(exc).__name__})"
    return None


def choose(run_dir: Path, *, is_main: bool) -> Choice:
    """The checkpoint to resume from, every check applied; rank 0 sets the damaged ones aside."""
    return checkpoints.choose_checkpoint(run_dir, set_aside=is_main, deep_check=torch_problem)


def start_history(run_dir: Path, checkpoint: Path) -> None:
    """Mark the metrics of the discarded attempt (steps past the checkpoint) as superseded and say so."""
    step = runs.checkpoint_step(checkpoint) or 0
    rel = str(checkpoint.relative_to(run_dir))
    run_files.mark_superseded(run_dir, step, resumed_from=rel)
    print(f"lora-tui: resumed from {checkpoint.name}", flush=True)


def save_final_adapter(model: Any, tokenizer: Any, run_dir: Path, *, state_dict: Any = None) -> None:
    """Save the adapter (and tokenizer) into a temporary directory, then move each file into place, the config
    last: a save that fails (a full disk) leaves the previous adapter as it was. `state_dict`: the full state
    gathered from FSDP's shards. An adapter saved without its weights is an error, and nothing is moved."""
    from lora_tui.train.distributed import plain_module_names

    tmp = run_dir / f"{SAVING_PREFIX}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with plain_module_names(model):
            model.save_pretrained(str(tmp), **({"state_dict": state_dict} if state_dict is not None else {}))
        problem = checkpoints.safetensors_problem(tmp / "adapter_model.safetensors")
        if problem is not None:  # a run file: English
            raise RuntimeError(f"the final adapter was not saved whole: {problem}")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        _install(sorted(tmp.iterdir()), run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(files: list[Path], run_dir: Path) -> None:
    """fsync each file, then rename it into the run directory (adapter_config.json last)."""
    files = [f for f in files if f.is_file()]
    for f in files:
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    for f in sorted(files, key=lambda f: f.name == "adapter_config.json"):
        os.replace(f, run_dir / f.name)


def copy_adapter(checkpoint: Path, run_dir: Path) -> None:
    """The checkpoint's adapter and tokenizer files as the run's final adapter (copied, then moved into place)."""
    tmp = run_dir / f"{SAVING_PREFIX}{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for f in checkpoints.adapter_files(checkpoint):
            shutil.copy2(f, tmp / f.name)
        _install(sorted(tmp.iterdir()), run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_saves(run_dir: Path) -> None:
    """Temporary adapter saves left by a process that was killed while saving."""
    for stale in run_dir.glob(f"{SAVING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def finish_from_checkpoint(run_dir: Path, checkpoint: Path, plan: TrainingPlan, sources: dict[str, str],
                           launch: LaunchInfo, facts: dict[str, Any]) -> dict[str, Any]:
    """A run whose last complete checkpoint is its final step but has no final adapter (killed between the
    two): write the adapter from the checkpoint and the training info; the outcome as `_attempt` gives it."""
    from lora_tui.train.info import build_info

    started = time.time()
    step = runs.checkpoint_step(checkpoint) or 0
    copy_adapter(checkpoint, run_dir)
    print(f"lora-tui: {checkpoint.name} is the run's last step: wrote the final adapter from it", flush=True)
    records, _ = run_files.read_metrics(run_dir)
    losses = run_files.finite(r.loss for r in records)
    evals = run_files.finite(r.eval_loss for r in records)
    tokens = next((r.tokens_seen for r in reversed(records) if r.tokens_seen), 0)
    callback = SimpleNamespace(losses=losses, eval_losses=evals, tokens_seen=tokens)
    state = SimpleNamespace(global_step=step, max_steps=step, num_input_tokens_seen=tokens)
    facts = {**facts, "resumed_from": str(checkpoint.relative_to(run_dir))}
    info: TrainingInfo = build_info(plan, sources, launch, facts, callback, SimpleNamespace(state=state),
                                    started=started, state="finished", error=None)
    info.extra["finished_from_checkpoint"] = True
    return {"state": "finished", "error": None, "next_settings": None, "info": info, "adapter_step": step}
