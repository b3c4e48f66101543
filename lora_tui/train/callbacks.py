"""Trainer callbacks of the training process: metrics lines, status updates, graceful stop, checkpoint markers."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lora_tui.core import runs

_METRIC_KEYS = {"loss": "loss", "eval_loss": "eval_loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm"}


class StopFlag:
    """Set by SIGINT/SIGTERM handlers; checked (with the STOP file) at every step end."""

    def __init__(self) -> None:
        self.signal: int | None = None
        """The signal that asked for a stop, if any."""

    def install(self) -> None:
        """Route SIGINT and SIGTERM to this flag instead of killing the process mid-step."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.signal = signum


STATUS_INTERVAL_S = 1.0
"""Least time between two status.json updates while a run trains."""


class RunCallback(TrainerCallback):
    """Writes metrics.jsonl and status.json (rank 0) and turns a stop request into save-and-stop."""

    def __init__(self, run_dir: Path, stop: StopFlag, *, is_main: bool, world_size: int,
                 effective_batch: int) -> None:
        self.run_dir = run_dir
        self.stop = stop
        self.is_main = is_main
        self.world_size = world_size
        self.stopped = False
        """True once a stop request has been honoured."""
        self.losses: list[float] = []
        """Every logged training loss, in order."""
        self.eval_losses: list[float] = []
        """Every evaluation loss, in order."""
        self.tokens_seen = 0
        """Tokens trained on so far (TRL's `num_tokens`, all processes)."""
        self._t0 = time.time()
        self._last_log = (self._t0, 0, 0.0)
        self._last_status = 0.0
        self._metrics = open(run_dir / runs.METRICS_FILE, "a", encoding="utf-8") if is_main else None
        self._stop_file = run_dir / runs.STOP_FILE
        self._effective_batch = effective_batch

    # ---- stop ---------------------------------------------------------------------------------------------

    def _stop_requested(self) -> bool:
        local = self.stop.signal is not None or self._stop_file.exists()
        if self.world_size <= 1:
            return local
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if local else 0], dtype=torch.int64)
        if dist.get_backend() == "nccl":
            flag = flag.cuda()
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # every rank stops at the same step
        return bool(flag.item())

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> TrainerControl:
        if self._stop_requested():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        now = time.monotonic()
        if self.is_main and (now - self._last_status >= STATUS_INTERVAL_S or self.stopped):
            # status.json is rewritten atomically (temp file, fsync, rename): at most once a second, so that
            # short steps do not pay for it; metrics.jsonl carries every step
            runs.update_status(self.run_dir, state="running", step=state.global_step, max_steps=state.max_steps)
            self._last_status = now
        return control

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> TrainerControl:
        if self.is_main:  # the throttled updates may have skipped the last steps
            runs.update_status(self.run_dir, step=state.global_step, max_steps=state.max_steps)
        return control

    # ---- checkpoints -------------------------------------------------------------------------------------

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> TrainerControl:
        if not self.is_main:
            return control
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            runs.mark_checkpoint_complete(ckpt, state.global_step)
            runs.update_status(self.run_dir, last_checkpoint=str(ckpt.relative_to(self.run_dir)))
        return control

    # ---- metrics -----------------------------------------------------------------------------------------

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> TrainerControl:
        if not logs or not self.is_main or self._metrics is None:
            return control
        if "loss" not in logs and "eval_loss" not in logs:
            return control  # the end-of-training summary line
        record = self._record(state, logs)
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        print(log_line(record, state.max_steps), flush=True)
        return control

    def _record(self, state: TrainerState, logs: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        record: dict[str, Any] = {"step": state.global_step, "epoch": round(float(state.epoch or 0), 4)}
        for key, out in _METRIC_KEYS.items():
            if key in logs:
                record[out] = float(logs[key])
        if "loss" in logs:
            self.losses.append(float(logs["loss"]))
            last_t, last_step, last_tokens = self._last_log
            dt = max(now - last_t, 1e-9)
            tokens = float(logs.get("num_tokens", 0.0))
            steps = state.global_step - last_step
            if tokens:
                record["tokens_seen"] = self.tokens_seen = int(tokens)
                record["tokens_per_second"] = round((tokens - last_tokens) / dt, 2)
            record["samples_per_second"] = round(steps * self._effective_batch / dt, 3)
            self._last_log = (now, state.global_step, tokens)
        if "eval_loss" in logs:
            self.eval_losses.append(float(logs["eval_loss"]))
        record["elapsed"] = round(now - self._t0, 3)
        record.update(gpu_memory())
        return record

    def close(self) -> None:
        """Close the metrics file."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


def log_line(record: dict[str, Any], max_steps: int | None) -> str:
    """One readable run.log line per metrics record: step, epoch, losses, learning rate, grad norm, speed."""
    from lora_tui.core.plan import fmt_value

    parts = [f"step {record['step']}/{max_steps or '?'}", f"epoch {record['epoch']:.2f}"]
    for key, label in (("loss", "loss"), ("eval_loss", "eval loss"), ("grad_norm", "grad norm")):
        if key in record:
            parts.append(f"{label} {record[key]:.4f}")
    if "learning_rate" in record:
        lr = float(f"{record['learning_rate']:.3g}")
        parts.append(f"lr {fmt_value(lr)}")
    if "tokens_per_second" in record:
        parts.append(f"{record['tokens_per_second']:,.0f} tok/s")
    return "  ".join(parts)


def gpu_memory() -> dict[str, int]:
    """Peak CUDA memory allocated/reserved so far (empty off CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"gpu_mem_allocated": int(torch.cuda.max_memory_allocated()),
            "gpu_mem_reserved": int(torch.cuda.max_memory_reserved())}
