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


def measured_memory() -> dict[str, Any] | None:
    """Peak CUDA memory of the process so far (None off CUDA, where PyTorch does not measure it)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return {"device": "cuda", "peak_allocated_bytes": int(torch.cuda.max_memory_allocated()),
            "peak_reserved_bytes": int(torch.cuda.max_memory_reserved())}


def build_info(plan: TrainingPlan, sources: dict[str, str], launch: LaunchInfo, facts: dict[str, Any],
               callback: Any, trainer: Any, *, started: float, state: str, error: str | None) -> TrainingInfo:
    """Everything about the run, for training_info.json."""
    trainer_state = getattr(trainer, "state", None)
    tokens = int(getattr(trainer_state, "num_input_tokens_seen", 0) or 0)
    losses, evals = callback.losses, callback.eval_losses
    ended = time.time()
    loop = facts.get("train_seconds")
    padded, real, trained = getattr(callback, "totals", (0, 0, 0))
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
                        train_loop_seconds=loop, first_step_at=getattr(callback, "first_step_at", None)),
        steps=int(getattr(trainer_state, "global_step", 0) or 0),
        max_steps=int(getattr(trainer_state, "max_steps", 0) or 0),
        tokens_seen=tokens or int(getattr(callback, "tokens_seen", 0) or 0),
        trained_tokens=trained or None,
        tokens_per_second=round(real / loop, 2) if real and loop else None,
        padding_share=round(1 - real / padded, 4) if padded else None,
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        best_loss=min(losses) if losses else None,
        final_eval_loss=evals[-1] if evals else None,
        best_eval_loss=min(evals) if evals else None,
        adapter_step=facts.get("adapter_step"),
        adapter_kept=facts.get("adapter_kept"),
        adapter_eval_loss=facts.get("adapter_eval_loss"),
        memory=memory_check(launch.memory_estimate, facts.get("measured_memory") or measured_memory()),
        extra={k: facts[k] for k in ("precision_reason", "load_in_4bit") if k in facts},
    )


def memory_check(estimate: dict[str, Any] | None, measured: dict[str, Any] | None) -> MemoryCheck:
    """The estimate against the measured peak (CUDA: peak allocated; CPU: peak resident-set growth); the ratio when
    both are known."""
    from lora_tui.core.memory_check import measured_peak

    check = MemoryCheck(estimate=estimate, measured=measured)
    total = (estimate or {}).get("total_bytes")
    peak = measured_peak(measured)
    if peak is not None and isinstance(total, (int, float)) and total > 0:
        check.measured_over_estimate = round(peak / total, 3)
    return check


FIRST_STEPS = 3
"""Optimizer steps after which the early peak is recorded (the first steps hold the largest batch shapes)."""


def _proc_status(field: str) -> int | None:
    """A `kB` line of /proc/self/status (VmRSS, VmHWM) in bytes; None off Linux."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryProbe:
    """Measures the run's peak memory: on CUDA the allocator's peak allocated and reserved bytes, on the CPU the
    peak resident-set growth since just before the model was loaded (`start`). `callback()` is the TrainerCallback
    that records the peak after the first steps and at the end, into status.json while the run goes on."""

    def __init__(self, run_dir: Any, *, is_main: bool) -> None:
        self.run_dir, self.is_main = run_dir, is_main
        self.cuda = False
        self.rss_before: int | None = None
        self.hwm_reset = False
        self.sampled_peak = 0
        self.first: dict[str, Any] | None = None

    def start(self) -> None:
        """Before the model loads: reset the peaks (CUDA: the allocator's; Linux: VmHWM through clear_refs)."""
        import torch

        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")  # resets VmHWM to the current RSS
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.rss_before = _proc_status("VmRSS")

    def sample(self) -> dict[str, Any] | None:
        """The peak so far, in the form training_info.json's `memory.measured` holds."""
        if self.cuda:
            return measured_memory()
        rss = _proc_status("VmRSS")
        self.sampled_peak = max(self.sampled_peak, rss or 0)
        peak = _proc_status("VmHWM") if self.hwm_reset else self.sampled_peak
        if peak is None or self.rss_before is None:
            return None
        return {"device": "cpu", "peak_rss_growth_bytes": max(0, peak - self.rss_before),
                "rss_before_bytes": self.rss_before,
                "method": "VmHWM since before loading" if self.hwm_reset else "RSS sampled at step ends"}

    def measured(self) -> dict[str, Any] | None:
        """The whole run's peak, with the first steps' peak under `first_steps`."""
        whole = self.sample()
        if whole is not None and self.first is not None:
            whole["first_steps"] = self.first
        return whole

    def _publish(self, measured: dict[str, Any] | None) -> None:
        if not self.is_main or measured is None:
            return
        from lora_tui.core import runs

        status = runs.read_status(self.run_dir)
        extra = dict(status.extra) if status is not None else {}
        runs.update_status(self.run_dir, extra={**extra, "memory": measured})

    def callback(self) -> Any:
        """The TrainerCallback for SFTTrainer (transformers is imported here, in the training process only)."""
        from transformers import TrainerCallback

        probe = self

        class _MemoryCallback(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                sample = probe.sample()
                if probe.first is None and state.global_step >= FIRST_STEPS and sample is not None:
                    probe.first = {**{k: v for k, v in sample.items() if k.endswith("_bytes")},
                                   "steps": int(state.global_step)}
                    probe._publish(probe.measured())

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                probe._publish(probe.measured())

        return _MemoryCallback()
