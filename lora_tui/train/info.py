"""training_info.json: settings with sources, data, hardware, versions, timings, losses, memory check."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from typing import Any

from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import LaunchInfo, MemoryCheck, Timings, TrainingInfo

_LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "tokenizers", "lora-tui")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the training stack."""
    out: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_facts() -> dict[str, Any]:
    """The device the run used: backend, GPU name and memory, CPU threads."""
    import torch

    facts: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                             "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(backend="cuda", gpu=props.name, gpu_total_bytes=int(props.total_memory),
                     gpu_count=torch.cuda.device_count())
    elif torch.backends.mps.is_available():
        facts["backend"] = "mps"
    else:
        facts["backend"] = "cpu"
    return facts


def measured_memory() -> dict[str, int] | None:
    """Peak CUDA memory of the run (None off CUDA, where PyTorch does not measure it)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return {"peak_allocated_bytes": int(torch.cuda.max_memory_allocated()),
            "peak_reserved_bytes": int(torch.cuda.max_memory_reserved())}


def build_info(plan: TrainingPlan, sources: dict[str, str], launch: LaunchInfo, facts: dict[str, Any],
               callback: Any, trainer: Any, *, started: float, state: str, error: str | None) -> TrainingInfo:
    """Everything about the run, for training_info.json."""
    trainer_state = getattr(trainer, "state", None)
    tokens = int(getattr(trainer_state, "num_input_tokens_seen", 0) or 0)
    losses, evals = callback.losses, callback.eval_losses
    ended = time.time()
    return TrainingInfo(
        state=state,
        error=error,
        settings={k: {"value": v, "source": sources.get(k, "default")} for k, v in plan.to_dict().items()},
        effective_batch_size=plan.per_device_train_batch_size * plan.gradient_accumulation_steps
        * int(facts.get("world_size", 1)),
        data=facts.get("data") or launch.data_report,
        data_report=launch.data_report,
        base_model_path=facts.get("base_model_path"),
        precision=facts.get("precision"),
        assistant_only_loss=facts.get("assistant_only_loss"),
        world_size=facts.get("world_size", 1),
        resumed_from=facts.get("resumed_from"),
        hardware=device_facts(),
        versions=library_versions(),
        timings=Timings(started_at=started, ended_at=ended, wall_seconds=round(ended - started, 3),
                        train_loop_seconds=facts.get("train_seconds")),
        steps=int(getattr(trainer_state, "global_step", 0) or 0),
        max_steps=int(getattr(trainer_state, "max_steps", 0) or 0),
        tokens_seen=tokens or int(getattr(callback, "tokens_seen", 0) or 0),
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        best_loss=min(losses) if losses else None,
        final_eval_loss=evals[-1] if evals else None,
        best_eval_loss=min(evals) if evals else None,
        memory=memory_check(launch.memory_estimate, measured_memory()),
    )


def memory_check(estimate: dict[str, Any] | None, measured: dict[str, int] | None) -> MemoryCheck:
    """The estimate against the measured peak; the ratio when both are known."""
    check = MemoryCheck(estimate=estimate, measured=measured)
    total = (estimate or {}).get("total_bytes")
    if measured and isinstance(total, (int, float)) and total > 0:
        check.measured_over_estimate = round(measured["peak_allocated_bytes"] / total, 3)
    return check
