"""training_info.json: settings with sources, data, hardware, versions, timings, losses, memory check."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from typing import Any

from lora_tui.core.plan import TrainingPlan

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


def build_info(plan: TrainingPlan, sources: dict[str, str], launch: dict[str, Any], facts: dict[str, Any],
               callback: Any, trainer: Any, *, started: float, state: str, error: str | None) -> dict[str, Any]:
    """Everything about the run, for training_info.json."""
    settings = {k: {"value": v, "source": sources.get(k, "default")} for k, v in plan.to_dict().items()}
    trainer_state = getattr(trainer, "state", None)
    steps = int(getattr(trainer_state, "global_step", 0) or 0)
    tokens = int(getattr(trainer_state, "num_input_tokens_seen", 0) or 0)
    estimate = launch.get("memory_estimate")
    measured = measured_memory()
    memory: dict[str, Any] = {"estimate": estimate, "measured": measured}
    if estimate and measured and estimate.get("total_bytes"):
        memory["measured_over_estimate"] = round(measured["peak_allocated_bytes"] / estimate["total_bytes"], 3)
    losses = callback.losses
    return {
        "state": state,
        "error": error,
        "settings": settings,
        "effective_batch_size": plan.per_device_train_batch_size * plan.gradient_accumulation_steps
        * int(facts.get("world_size", 1)),
        "data": facts.get("data") or launch.get("data"),
        "data_report": launch.get("data"),
        "base_model_path": facts.get("base_model_path"),
        "precision": facts.get("precision"),
        "assistant_only_loss": facts.get("assistant_only_loss"),
        "world_size": facts.get("world_size", 1),
        "resumed_from": facts.get("resumed_from"),
        "hardware": device_facts(),
        "versions": library_versions(),
        "timings": {"started_at": started, "ended_at": time.time(), "wall_seconds": round(time.time() - started, 3),
                    "train_loop_seconds": facts.get("train_seconds")},
        "steps": steps,
        "max_steps": int(getattr(trainer_state, "max_steps", 0) or 0),
        "tokens_seen": tokens or _tokens_from_metrics(callback),
        "final_loss": losses[-1] if losses else None,
        "best_loss": min(losses) if losses else None,
        "first_loss": losses[0] if losses else None,
        "final_eval_loss": callback.eval_losses[-1] if callback.eval_losses else None,
        "best_eval_loss": min(callback.eval_losses) if callback.eval_losses else None,
        "memory": memory,
    }


def _tokens_from_metrics(callback: Any) -> int:
    return int(getattr(callback, "tokens_seen", 0) or 0)
