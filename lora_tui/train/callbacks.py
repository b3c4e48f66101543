"""Trainer callbacks of the training process: metrics lines, status updates, graceful stop, checkpoint markers."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lora_tui.core import run_files, runs
from lora_tui.core.run_files import MetricsRecord, RankMemory


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


IGNORE_INDEX = -100
"""Label of a position that carries no loss."""


def collective_device() -> str:
    """Where a tensor for a collective of the process group lives: the GPU under NCCL, else the CPU (gloo)."""
    import torch.distributed as dist

    return "cuda" if "nccl" in str(dist.get_backend()) else "cpu"


class TokenTally:
    """Running token counts of the training batches: padded (the batch's shape), real (non-padding) and trained
    (positions whose next-token label carries the loss)."""

    def __init__(self) -> None:
        self.padded = 0
        """Positions in the batches as shaped (batch x longest), a Python int: shapes need no device read."""
        self._real: Any = 0
        self._trained: Any = 0

    def add(self, batch: dict[str, Any]) -> None:
        """Count one micro-batch (a collated dict with input_ids and labels, attention_mask unless padding-free)."""
        ids = batch.get("input_ids")
        if ids is None:
            return
        self.padded += int(ids.numel())
        mask = batch.get("attention_mask")
        self._real = self._real + (mask.sum() if mask is not None else int(ids.numel()))
        shifted = batch.get("shift_labels")
        if shifted is None and batch.get("labels") is not None:
            shifted = batch["labels"][..., 1:]
        if shifted is not None:
            self._trained = self._trained + shifted.ne(IGNORE_INDEX).sum()

    def totals(self, world_size: int = 1) -> tuple[int, int, int]:
        """(padded, real, trained) so far, summed over every process when `world_size` > 1 (then every rank must
        call it at the same step, as the Trainer's logging steps are)."""
        values = [float(self.padded), float(self._real), float(self._trained)]
        if world_size > 1:
            import torch
            import torch.distributed as dist

            tensor = torch.tensor(values, dtype=torch.float64, device=collective_device())
            dist.all_reduce(tensor)
            values = tensor.tolist()
        padded, real, trained = (int(v) for v in values)
        return padded, real, trained


def gather_memory(measure: Callable[[], dict[str, Any] | None] | None) -> list[RankMemory]:
    """Every process's peak memory, gathered on every rank (all of them must call it at the same step, as the
    Trainer's logging steps are): seven numbers each, the peak measured as `measure` (`MemoryProbe.sample`)
    measures it, CUDA's allocator peak or the CPU's resident-set growth."""
    import torch
    import torch.distributed as dist

    from lora_tui.core.memory_check import measured_peak

    sample = (measure() if measure is not None else None) or {}
    cuda = sample.get("device") == "cuda"
    peak, reserved = measured_peak(sample), sample.get("peak_reserved_bytes")
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory if cuda else None
    numbers = [dist.get_rank(), int(os.environ.get("GROUP_RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")),
               int(cuda), *(v if isinstance(v, int) else -1 for v in (peak, reserved, total))]
    mine = torch.tensor(numbers, dtype=torch.int64, device=collective_device())
    every = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    out = []
    for row in (t.tolist() for t in every):
        rank, node, local, on_cuda, *sizes = (int(v) for v in row)
        peak_b, reserved_b, total_b = (v if v >= 0 else None for v in sizes)
        out.append(RankMemory(rank=rank, node=node, local_rank=local, device="cuda" if on_cuda else "cpu",
                              peak_bytes=peak_b, reserved_bytes=reserved_b, total_bytes=total_b))
    return out


STATUS_INTERVAL_S = 1.0
"""Least time between two status.json updates while a run trains."""


class RunCallback(TrainerCallback):
    """Writes metrics.jsonl and status.json (rank 0) and turns a stop request into save-and-stop."""

    def __init__(self, run_dir: Path, stop: StopFlag, *, is_main: bool, world_size: int,
                 effective_batch: int, memory: Callable[[], dict[str, Any] | None] | None = None) -> None:
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
        """Non-padding tokens trained on so far, all processes."""
        self.tally = TokenTally()
        """The training batches' token counts (lora_tui.train.trainer.LoraTuiTrainer adds to it)."""
        self.totals = (0, 0, 0)
        """(padded, real, trained) tokens of every process at the last training log (and the final summary)."""
        self.first_step_at: float | None = None
        """Unix time the first optimizer step ended."""
        self.memory = memory
        """This process's peak memory so far (`MemoryProbe.sample`), gathered from every rank when there are
        several."""
        self.ranks: list[RankMemory] | None = None
        """Every process's peak memory at the last training log (several processes only)."""
        self._ranks_written: list[RankMemory] | None = None
        self._t0 = time.time()
        self._last_log: tuple[float, int, tuple[int, int, int]] = (self._t0, 0, (0, 0, 0))
        self._last_status = 0.0
        self._metrics = run_files.open_metrics(run_dir) if is_main else None
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

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> TrainerControl:
        self._last_log = (time.time(), state.global_step, self._last_log[2])  # rates leave model loading out
        return control

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> TrainerControl:
        if self.first_step_at is None:
            self.first_step_at = time.time()
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
        if args.output_dir is None:
            return control
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if ckpt.is_dir():
            runs.mark_checkpoint_complete(ckpt, state.global_step)
            runs.update_status(self.run_dir, last_checkpoint=str(ckpt.relative_to(self.run_dir)))
        return control

    # ---- metrics -----------------------------------------------------------------------------------------

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> TrainerControl:
        if not logs:
            return control
        counts = None
        if "loss" in logs or "train_runtime" in logs:  # every rank logs these: each sums the ranks' counts
            counts = self.totals = self.tally.totals(self.world_size)
            if self.world_size > 1:  # and rank 0 learns every rank's peak memory
                self.ranks = gather_memory(self.memory)
        if "loss" not in logs and "eval_loss" not in logs:
            return control  # the end-of-training summary line
        if not self.is_main or self._metrics is None:
            return control
        record = self._record(state, logs, counts)
        if "loss" in logs and self.ranks is not None and self.ranks != self._ranks_written:
            record.ranks = self._ranks_written = self.ranks  # written where a peak changed: the lines stay short
        run_files.append_metrics(self._metrics, record)
        print(log_line(record, state.max_steps), flush=True)
        return control

    def _record(self, state: TrainerState, logs: dict[str, Any],
                counts: tuple[int, int, int] | None = None) -> MetricsRecord:
        """The metrics line for one of the Trainer's log calls (its keys are the Trainer's, not ours); `counts` is
        the tally's (padded, real, trained) token totals at this step."""
        now = time.time()
        record = MetricsRecord(step=state.global_step, epoch=round(float(state.epoch or 0), 4),
                               loss=_number(logs, "loss"), eval_loss=_number(logs, "eval_loss"),
                               learning_rate=_number(logs, "learning_rate"), grad_norm=_number(logs, "grad_norm"),
                               token_accuracy=_number(logs, "mean_token_accuracy"), entropy=_number(logs, "entropy"))
        if record.loss is not None:
            self.losses.append(record.loss)
            last_t, last_step, last = self._last_log
            dt = max(now - last_t, 1e-9)
            if not counts or not counts[0]:  # no batches counted (a trainer without the tally): TRL's count
                tokens = int(float(logs.get("num_tokens", 0.0)))
                counts = (0, tokens, 0) if tokens else None
            if counts:
                padded, real, trained = (now_n - then for now_n, then in zip(counts, last, strict=True))
                record.tokens_seen = self.tokens_seen = counts[1]
                record.tokens_per_second = round(real / dt, 2)
                if counts[0]:
                    record.trained_tokens_per_second = round(trained / dt, 2)
                    record.padding_share = round(1 - real / padded, 4) if padded > 0 else None
            record.samples_per_second = round((state.global_step - last_step) * self._effective_batch / dt, 3)
            self._last_log = (now, state.global_step, counts or last)
        if record.eval_loss is not None:
            self.eval_losses.append(record.eval_loss)
        record.elapsed = round(now - self._t0, 3)
        record.gpu_mem_allocated, record.gpu_mem_reserved = gpu_memory()
        return record

    def close(self) -> None:
        """Close the metrics file."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


def _number(logs: dict[str, Any], key: str) -> float | None:
    value = logs.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def log_line(record: MetricsRecord, max_steps: int | None) -> str:
    """One readable run.log line per metrics record: step, epoch, losses, learning rate, grad norm, speed."""
    from lora_tui.core.plan import fmt_value

    parts = [f"step {record.step}/{max_steps or '?'}", f"epoch {record.epoch or 0:.2f}"]
    for value, label in ((record.loss, "loss"), (record.eval_loss, "eval loss"), (record.grad_norm, "grad norm")):
        if value is not None:
            parts.append(f"{label} {value:.4f}")
    if record.learning_rate is not None:
        lr = float(f"{record.learning_rate:.3g}")
        parts.append(f"lr {fmt_value(lr)}")
    if record.tokens_per_second is not None:
        parts.append(f"{record.tokens_per_second:,.0f} tok/s")
    if record.padding_share is not None:
        parts.append(f"padding {record.padding_share:.0%}")
    return "  ".join(parts)


def gpu_memory() -> tuple[int | None, int | None]:
    """Peak CUDA memory (allocated, reserved) so far, bytes; (None, None) off CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None, None
    return int(torch.cuda.max_memory_allocated()), int(torch.cuda.max_memory_reserved())
