"""The training process: reads RUN/run.toml, trains with transformers + PEFT + TRL's SFTTrainer, writes RUN.

Started by lora_tui.core.launcher as `python -m lora_tui.train RUN` (or under torchrun for several processes).
Everything a person or the monitor needs ends up in the run directory (see lora_tui.core.runs).
"""

from __future__ import annotations

import gc
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lora_tui.core import run_files, runs
from lora_tui.core.plan import TrainingPlan, load_run_file
from lora_tui.core.run_files import LaunchInfo
from lora_tui.train.callbacks import RunCallback, StopFlag
from lora_tui.train.quiet import quiet_libraries


def world() -> tuple[int, int]:
    """(rank, world size) from the torchrun environment; (0, 1) for a single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def choose_precision(requested: str, model: str | None = None) -> str:
    """The precision to train in: `lora_tui.core.precision.choose_precision` (the estimate's decision too) with
    what torch reports: bf16 where the GPU has it, fp16 on older GPUs except for model families that overflow in
    fp16 (Gemma 2 and 3: fp32), fp32 on MPS and the CPU."""
    return precision_choice(requested, model).dtype


def precision_choice(requested: str, model: str | None = None) -> Any:
    """The core decision (`core.precision.Precision`: dtype, device, reason) for this device and model."""
    import torch

    from lora_tui.core.precision import Precision
    from lora_tui.core.precision import choose_precision as decide
    from lora_tui.errors import UserError
    from lora_tui.train.quant import device_kind

    device = device_kind()
    bf16 = bool(torch.cuda.is_bf16_supported()) if device == "cuda" else None
    model_type = None
    try:
        from lora_tui.core.models.modules import load_inventory

        model_type = load_inventory(model).model_type if model else None
    except Exception:  # noqa: BLE001 - without the model's family, only the device decides
        model_type = None
    try:
        return decide(requested, device=device, bf16_supported=bf16, model_type=model_type)
    except UserError as exc:  # bf16 asked for on a GPU without it: the trainer reports it
        return Precision(requested, device, str(exc))


def is_oom(exc: BaseException) -> bool:
    """CUDA/MPS out-of-memory errors and the CPU allocator's failures."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text.lower() or "can't allocate" in text)


def resolve_model_path(model: str) -> str:
    """`demo` -> the built demo model; a preset name -> its hub id; anything else as given."""
    if model.strip().lower() == "demo":
        from lora_tui.train.demo import demo_model_dir, ensure_demo_model, is_built

        if not is_built(demo_model_dir()):
            print(f"building the demo model in {demo_model_dir()} (first run on this machine only; "
                  "about a minute)", flush=True)
        return str(ensure_demo_model())
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser().resolve())
    from lora_tui.core.models.modules import preset

    meta = preset(model)
    return str(meta["hub_id"]) if meta else model


def build_trainer(plan: TrainingPlan, run_dir: Path, callback: RunCallback, precision: str,
                  extra_callbacks: Sequence[Any] = ()) -> tuple[Any, dict[str, Any]]:
    """Load model, tokenizer and data; return the SFTTrainer and facts for training_info.json."""
    import torch
    from peft import LoraConfig
    from transformers import AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    quiet_libraries()

    from lora_tui.core.paths import SAMPLE_DATA_PATH
    from lora_tui.train.data import load_dataset_for_training

    model_path = resolve_model_path(plan.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data_path = plan.data or str(SAMPLE_DATA_PATH)
    train_ds, eval_ds, data_stats = load_dataset_for_training(data_path, tokenizer, eval_split=plan.eval_split,
                                                              seed=plan.seed, columns=plan.columns)
    from lora_tui.train.quant import load_base_model

    model = load_base_model(model_path, precision, load_in_4bit=plan.load_in_4bit,
                            gradient_checkpointing=plan.gradient_checkpointing)
    assistant_only = data_stats["loss_on"] == "assistant turns"  # the labels train/data.py built say so
    _, world_size = world()
    config = SFTConfig(
        output_dir=str(run_dir / runs.CHECKPOINTS_DIR),
        learning_rate=plan.learning_rate, num_train_epochs=plan.num_train_epochs, max_steps=plan.max_steps,
        per_device_train_batch_size=plan.per_device_train_batch_size,
        per_device_eval_batch_size=plan.per_device_train_batch_size,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        warmup_steps=plan.warmup_ratio, weight_decay=plan.weight_decay, seed=plan.seed, data_seed=plan.seed,
        max_length=plan.max_seq_length, assistant_only_loss=False,  # labels come tokenized
        gradient_checkpointing=plan.gradient_checkpointing, bf16=precision == "bf16", fp16=precision == "fp16",
        logging_steps=plan.logging_steps, save_strategy="steps", save_steps=plan.save_steps,
        save_total_limit=plan.save_total_limit, eval_strategy="steps" if eval_ds is not None else "no",
        eval_steps=plan.save_steps if eval_ds is not None else None, report_to="none", disable_tqdm=True,
        ddp_backend=None if torch.cuda.is_available() or world_size == 1 else "gloo",
        ddp_find_unused_parameters=False if world_size > 1 else None, dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available() and not torch.backends.mps.is_available(),
    )
    lora = LoraConfig(r=plan.lora_r, lora_alpha=plan.lora_alpha, lora_dropout=plan.lora_dropout,
                      target_modules=plan.target_modules[0] if plan.target_modules == ["all-linear"]
                      else list(plan.target_modules), use_rslora=plan.use_rslora, use_dora=plan.use_dora,
                      bias="none", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=lora,
                         callbacks=[callback, *extra_callbacks])
    trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per logging step
    facts = {"base_model_path": model_path, "data": data_stats, "assistant_only_loss": assistant_only,
             "precision": precision, "world_size": world_size, "load_in_4bit": plan.load_in_4bit}
    return trainer, facts


def _apply_next(plan: TrainingPlan, changes: dict[str, Any]) -> TrainingPlan:
    return TrainingPlan.from_dict({**plan.to_dict(), **changes}, where="oom retry")


def _next_settings(plan: TrainingPlan) -> dict[str, Any] | None:
    from lora_tui.core.advice import next_settings_after_oom

    try:
        from lora_tui.core.models.modules import load_inventory

        inventory = load_inventory(plan.model)
    except Exception:  # the remedies work without an inventory (q/v names fall back to the guide's)
        inventory = None
    return next_settings_after_oom(plan, inventory)


def run_worker(run_dir: str | Path, *, resume: bool = False, extra_callbacks: Sequence[Any] = ()) -> int:
    """Train the run in `run_dir`; returns the exit status (0 finished or stopped, 1 otherwise).

    `extra_callbacks` is for tests (e.g. one that raises an out-of-memory error at step N); the command line
    cannot reach it.
    """
    run_dir = Path(run_dir).resolve()
    rank, world_size = world()
    is_main = rank == 0
    settings, sources = load_run_file(run_dir / runs.RUN_FILE)
    plan = TrainingPlan.from_dict(settings, where=str(run_dir / runs.RUN_FILE))
    launch = run_files.read_launch_info(run_dir) or LaunchInfo()  # a run started by hand has none
    retries_left = launch.auto_oom_retry
    stop = StopFlag()
    stop.install()
    if is_main:
        runs.update_status(run_dir, state="running", pid=os.getpid(), pgid=os.getpgrp(),
                           started_at=time.time(), error=None,
                           extra={"world_size": world_size, "attempt": 1})
    attempts: list[dict[str, Any]] = []
    while True:
        outcome = _attempt(run_dir, plan, sources, launch, stop, is_main=is_main, world_size=world_size,
                           resume=resume, extra_callbacks=extra_callbacks)
        attempts.append({"settings": plan.to_dict(), "outcome": outcome["state"]})
        if outcome["state"] != "oom" or retries_left <= 0 or not outcome.get("next_settings"):
            break
        retries_left -= 1
        plan = _apply_next(plan, outcome["next_settings"])
        sources = {**sources, **{k: "oom-retry" for k in outcome["next_settings"]}}
        if is_main:
            (run_dir / runs.RUN_FILE).write_text(plan.to_toml(sources), encoding="utf-8")
            runs.update_status(run_dir, state="running", error=None, next_settings=None,
                               extra={"world_size": world_size, "attempt": len(attempts) + 1})
        print(f"lora-tui: out of memory; retrying with {outcome['next_settings']}", flush=True)
        resume = False
    if is_main:
        outcome["info"].attempts = attempts
        run_files.write_training_info(run_dir, outcome["info"])
        runs.update_status(run_dir, state=outcome["state"], ended_at=time.time(), error=outcome.get("error"),
                           next_settings=outcome.get("next_settings"),
                           adapter_dir="." if runs.is_adapter_dir(run_dir) else None)
    return 0 if outcome["state"] in ("finished", "stopped") else 1


def _attempt(run_dir: Path, plan: TrainingPlan, sources: dict[str, str], launch: LaunchInfo,
             stop: StopFlag, *, is_main: bool, world_size: int, resume: bool,
             extra_callbacks: Sequence[Any]) -> dict[str, Any]:
    """One training attempt; returns {"state", "error", "next_settings", "info"}."""
    from lora_tui.train.info import build_info

    started = time.time()
    from lora_tui.train.info import MemoryProbe

    choice = precision_choice(plan.precision, plan.model)
    precision = choice.dtype
    print(f"lora-tui: precision {choice.reason}" + (", base in 4-bit NF4" if plan.load_in_4bit else ""), flush=True)
    probe = MemoryProbe(run_dir, is_main=is_main)
    probe.start()
    callback = RunCallback(run_dir, stop, is_main=is_main, world_size=world_size,
                           effective_batch=plan.per_device_train_batch_size * plan.gradient_accumulation_steps
                           * world_size)
    trainer = None
    facts: dict[str, Any] = {"precision": precision, "world_size": world_size}
    result: dict[str, Any] = {"state": "failed", "error": None, "next_settings": None}
    try:
        trainer, facts = build_trainer(plan, run_dir, callback, precision, [*extra_callbacks, probe.callback()])
        checkpoint = runs.latest_complete_checkpoint(run_dir) if resume else None
        facts["resumed_from"] = str(checkpoint.relative_to(run_dir)) if checkpoint else None
        loop_started = time.time()
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        facts["train_seconds"] = round(time.time() - loop_started, 3)
        if is_main:
            trainer.model.save_pretrained(str(run_dir))
            trainer.processing_class.save_pretrained(str(run_dir))
        result["state"] = "stopped" if callback.stopped else "finished"
    except Exception as exc:  # noqa: BLE001 - every failure becomes a status, the traceback goes to run.log
        traceback.print_exc()
        summary = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        result["error"] = summary[:300]
        if is_oom(exc):
            result["state"] = "oom"
            result["next_settings"] = _next_settings(plan)
    finally:
        callback.close()
    facts.update(measured_memory=probe.measured(), precision_reason=choice.reason)
    result["info"] = build_info(plan, sources, launch, facts, callback, trainer, started=started,
                                state=result["state"], error=result["error"])
    del trainer
    _free_memory()
    return result


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
