"""A fake training process: writes the same run files as `python -m lora_tui.train`, without torch.

Monitor, runs-listing and launcher tests use it to get a live run directory in milliseconds. It follows the
real layout of lora_tui.core.runs: status.json (starting -> running -> finished/stopped/failed/oom),
metrics.jsonl (one flushed line per step), run.log, checkpoints/checkpoint-N with the completion marker (a
valid safetensors adapter and trainer_state.json), training_info.json and the adapter files at the end. It owns
the run directory as the real one does: it adopts the lock its launcher handed over (or takes it), records its
pid with its start time, and empties the trash of a replaced run once it has started. It honours the STOP file,
SIGINT and SIGTERM. With --resume it continues from the newest usable checkpoint (damaged ones set aside, the
discarded steps' metrics superseded).

Usage:
    python tests/helpers/fake_trainer.py RUN_DIR [--steps 20] [--interval 0.05] [--save-every 5]
        [--fail-at N] [--oom-at N] [--loss-start 3.0] [--loss-end 1.0] [--eval-every 0] [--no-adapter]
        [--start-step 0] [--resume]

Exit status: 0 finished, 1 failed/oom, 0 stopped (the state file says which), 3 when another process owns
the run directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lora_tui.core import checkpoints, output_dir, run_files, run_lock, runs  # noqa: E402
from lora_tui.core.run_files import MetricsRecord, TrainingInfo  # noqa: E402

ADAPTER_TENSORS = {"base_model.model.layers.0.q_proj.lora_A.weight": [8, 16],
                   "base_model.model.layers.0.q_proj.lora_B.weight": [16, 8]}
"""The fake adapter's tensors (F32 zeros)."""

_STOP_SIGNAL: list[int] = []


def _on_signal(signum: int, _frame: object) -> None:
    _STOP_SIGNAL.append(signum)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The fake trainer's command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="fake_trainer", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="run directory to write (created when missing)")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps to simulate")
    p.add_argument("--interval", type=float, default=0.05, help="seconds per step")
    p.add_argument("--save-every", type=int, default=5, help="write a complete checkpoint every N steps")
    p.add_argument("--fail-at", type=int, default=0, help="fail with a RuntimeError at this step (0: never)")
    p.add_argument("--oom-at", type=int, default=0, help="report out-of-memory at this step (0: never)")
    p.add_argument("--loss-start", type=float, default=3.0, help="loss at step 1")
    p.add_argument("--loss-end", type=float, default=1.0, help="loss at the last step")
    p.add_argument("--eval-every", type=int, default=0, help="add eval_loss every N steps (0: never)")
    p.add_argument("--no-adapter", action="store_true", help="do not write the final adapter files")
    p.add_argument("--start-step", type=int, default=0, help="pretend to resume after this step")
    p.add_argument("--resume", action="store_true", help="continue from the newest usable checkpoint")
    return p.parse_args(argv)


def write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A valid F32 safetensors file of zero tensors."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4 * math.prod(shape)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * offset)


def _loss(step: int, args: argparse.Namespace) -> float:
    frac = step / max(args.steps, 1)
    return args.loss_end + (args.loss_start - args.loss_end) * math.exp(-4 * frac)


def _metrics_line(step: int, args: argparse.Namespace, t0: float) -> MetricsRecord:
    return MetricsRecord(
        step=step,
        epoch=round(step / max(args.steps, 1), 4),
        loss=round(_loss(step, args), 4),
        learning_rate=5e-5 * min(1.0, step / max(1, args.steps // 10)),
        grad_norm=round(1.0 + 0.1 * math.sin(step), 4),
        tokens_per_second=1000.0,
        samples_per_second=4.0,
        elapsed=round(time.time() - t0, 3),
        eval_loss=round(_loss(step, args) * 1.05, 4) if args.eval_every and step % args.eval_every == 0 else None,
    )


def _save_checkpoint(run_dir: Path, step: int, max_steps: int) -> str:
    ckpt = run_dir / runs.CHECKPOINTS_DIR / f"checkpoint-{step}"
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": max_steps}),
                                             encoding="utf-8")
    write_safetensors(ckpt / "adapter_model.safetensors", ADAPTER_TENSORS)
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}), encoding="utf-8")
    runs.mark_checkpoint_complete(ckpt, step)
    return str(ckpt.relative_to(run_dir))


def _write_adapter(run_dir: Path) -> None:
    (run_dir / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "base_model_name_or_path": "fake"}),
        encoding="utf-8",
    )
    write_safetensors(run_dir / "adapter_model.safetensors", ADAPTER_TENSORS)


def _finish(run_dir: Path, state: str, step: int, args: argparse.Namespace, **extra: object) -> int:
    if state in ("finished", "stopped") and not args.no_adapter:
        _write_adapter(run_dir)
    run_files.write_training_info(run_dir, TrainingInfo(state=state, steps=step, max_steps=args.steps,
                                                        final_loss=round(_loss(step, args), 4),
                                                        extra={"fake": True}))
    saved = state in ("finished", "stopped") and not args.no_adapter
    runs.update_status(run_dir, state=state, step=step, ended_at=time.time(), adapter_dir="." if saved else None,
                       **({"adapter_step": step} if saved else {}), **extra)
    print(f"fake trainer: {state} at step {step}", flush=True)
    return 0 if state in ("finished", "stopped") else 1


def main(argv: list[str] | None = None) -> int:
    """Simulate a run; returns the exit status."""
    args = parse_args(argv)
    run_dir: Path = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if run_lock.adopt(run_dir) is None:
        print(f"fake trainer: {run_dir} is owned by another process", flush=True)
        return 3
    t0 = time.time()
    if args.resume:
        choice = checkpoints.choose_checkpoint(run_dir, set_aside=True)
        for note in choice.notes:
            print(f"lora-tui: {note}", flush=True)
        if choice.checkpoint is None:
            return _finish(run_dir, "failed", 0, args, error="no usable checkpoint to resume from")
        args.start_step = runs.checkpoint_step(choice.checkpoint) or 0
        run_files.mark_superseded(run_dir, args.start_step, str(choice.checkpoint.relative_to(run_dir)))
        print(f"lora-tui: resumed from {choice.checkpoint.name}", flush=True)
    runs.write_status(run_dir, runs.RunStatus(state="running", pid=os.getpid(), pgid=os.getpgrp(),
                                              pid_started=run_lock.process_start_time(os.getpid()),
                                              started_at=t0, step=args.start_step, max_steps=args.steps,
                                              extra={"fake": True, "world_size": 1, "device": "cpu"}))
    output_dir.empty_trash(run_dir)  # started: what --overwrite replaced can go
    last_ckpt: str | None = None
    with run_files.open_metrics(run_dir) as metrics:
        for step in range(args.start_step + 1, args.steps + 1):
            time.sleep(args.interval)
            if args.oom_at and step == args.oom_at:
                return _finish(run_dir, "oom", step - 1, args, error="CUDA out of memory (fake)",
                               next_settings={"per_device_train_batch_size": 1,
                                              "gradient_accumulation_steps": 16})
            if args.fail_at and step == args.fail_at:
                print("Traceback (most recent call last):\nRuntimeError: fake failure", flush=True)
                return _finish(run_dir, "failed", step - 1, args, error="RuntimeError: fake failure")
            run_files.append_metrics(metrics, _metrics_line(step, args, t0))
            print(f"step {step}/{args.steps} loss {_loss(step, args):.4f}", flush=True)
            stopping = bool(_STOP_SIGNAL) or (run_dir / runs.STOP_FILE).exists()
            if (args.save_every and step % args.save_every == 0) or stopping:
                last_ckpt = _save_checkpoint(run_dir, step, args.steps)
            runs.update_status(run_dir, step=step, last_checkpoint=last_ckpt)
            if stopping:
                return _finish(run_dir, "stopped", step, args)
    return _finish(run_dir, "finished", args.steps, args)


if __name__ == "__main__":
    sys.exit(main())
