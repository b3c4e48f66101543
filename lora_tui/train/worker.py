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

from lora_tui.core import checkpoints, output_dir, run_files, run_lock, runs
from lora_tui.core.disk import is_disk_full as disk_full
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import LaunchInfo
from lora_tui.train import distributed as dist_mod
from lora_tui.train import resume as resume_mod
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
    from transformers import AutoTokenizer, EarlyStoppingCallback, PrinterCallback
    from trl import SFTConfig

    quiet_libraries()

    from lora_tui.core.paths import SAMPLE_DATA_PATH
    from lora_tui.train.data import load_dataset_for_training

    model_path = resolve_model_path(plan.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data_path = plan.data or str(SAMPLE_DATA_PATH)
    from lora_tui.train.quant import load_base_model
    from lora_tui.train.trainer import LoraTuiTrainer, batching_config, flash_attention

    attention = flash_attention(plan.batching)
    train_ds, eval_ds, data_stats = load_dataset_for_training(data_path, tokenizer, eval_split=plan.eval_split,
                                                              seed=plan.seed, columns=plan.columns,
                                                              max_length=plan.max_seq_length)
    sharded = plan.distributed == "fsdp"
    # under FSDP the same recomputation is FSDP's own activation checkpointing (fsdp_arguments), not the model's
    model_checkpointing = plan.gradient_checkpointing and not sharded
    model = load_base_model(model_path, precision, load_in_4bit=plan.load_in_4bit, sharded=sharded,
                            gradient_checkpointing=model_checkpointing, attn_implementation=attention)
    assistant_only = data_stats["loss_on"] == "assistant turns"  # the labels train/data.py built say so
    _, world_size = world()
    watch = eval_ds is not None and (plan.keep == "best" or plan.early_stopping > 0)
    from lora_tui.core.trackers import TENSORBOARD_DIR, check_tracker

    check_tracker(plan.report_to)  # a run file edited by hand: the same one line as the launcher's
    os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / TENSORBOARD_DIR))
    config = SFTConfig(
        output_dir=str(run_dir / runs.CHECKPOINTS_DIR),
        learning_rate=plan.learning_rate, num_train_epochs=plan.num_train_epochs, max_steps=plan.max_steps,
        per_device_train_batch_size=plan.per_device_train_batch_size,
        per_device_eval_batch_size=plan.per_device_train_batch_size,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        warmup_steps=plan.warmup_ratio, weight_decay=plan.weight_decay, seed=plan.seed, data_seed=plan.seed,
        **batching_config(plan.batching, plan.max_seq_length), assistant_only_loss=False,  # labels come tokenized
        gradient_checkpointing=model_checkpointing,
        bf16=precision == "bf16", fp16=precision == "fp16",
        logging_steps=plan.logging_steps, save_strategy="steps", save_steps=plan.save_steps,
        save_total_limit=plan.save_total_limit, eval_strategy="steps" if eval_ds is not None else "no",
        eval_steps=plan.save_steps if eval_ds is not None else None, report_to=plan.report_to, disable_tqdm=True,
        # the best checkpoint (lowest eval loss) is kept through checkpoint rotation and loaded at the end
        load_best_model_at_end=watch, metric_for_best_model="eval_loss" if watch else None, greater_is_better=False,
        ddp_backend=None if torch.cuda.is_available() or world_size == 1 else "gloo",
        ddp_find_unused_parameters=False if world_size > 1 and plan.distributed == "ddp" else None,
        dataloader_num_workers=0, **dist_mod.fsdp_arguments(plan, model_path),
        use_cpu=not torch.cuda.is_available() and not torch.backends.mps.is_available(),
    )
    # PEFT annotates lora_alpha as int but computes alpha / r in floats: a float alpha (2.5 x r) works as written
    lora = LoraConfig(r=plan.lora_r, lora_alpha=plan.lora_alpha,  # type: ignore[arg-type]
                      lora_dropout=plan.lora_dropout,
                      target_modules=plan.target_modules[0] if plan.target_modules == ["all-linear"]
                      else list(plan.target_modules), use_rslora=plan.use_rslora, use_dora=plan.use_dora,
                      bias="none", task_type="CAUSAL_LM")
    stopper = [EarlyStoppingCallback(early_stopping_patience=plan.early_stopping)] \
        if eval_ds is not None and plan.early_stopping > 0 else []
    trainer = LoraTuiTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=lora, tally=callback.tally,
                             grouped=plan.batching == "grouped", callbacks=[callback, *stopper, *extra_callbacks])
    trainer.remove_callback(PrinterCallback)  # RunCallback prints one readable line per logging step
    if plan.distributed == "fsdp" and not trainer.is_fsdp_enabled:  # accelerate shards only across GPUs
        raise RuntimeError("--distributed fsdp: FSDP is not active on this device (it needs CUDA GPUs)")
    facts = {"base_model_path": model_path, "data": data_stats, "assistant_only_loss": assistant_only,
             "precision": precision, "world_size": world_size, "load_in_4bit": plan.load_in_4bit,
             "nnodes": plan.nnodes, "distributed": plan.distributed}
    return trainer, facts


def _adapter_choice(trainer: Any, plan: TrainingPlan) -> dict[str, Any]:
    """Which step the final adapter is: the best checkpoint by eval loss when the Trainer loaded it, else the last."""
    best = trainer.state.best_model_checkpoint
    if best and trainer.args.load_best_model_at_end:
        step = runs.checkpoint_step(Path(best))
        print(f"lora-tui: the final adapter is {Path(best).name}, the lowest eval loss "
              f"({trainer.state.best_metric:.4f}); --keep last keeps the last step instead", flush=True)
        return {"adapter_step": step, "adapter_eval_loss": trainer.state.best_metric, "adapter_kept": "best"}
    return {"adapter_step": int(trainer.state.global_step), "adapter_eval_loss": None, "adapter_kept": "last"}


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

    The process owns the directory for its whole life through the run's lock (handed over by the launcher, or
    taken here); a directory another process owns is left alone. `extra_callbacks` is for tests (e.g. one that
    raises an out-of-memory error at step N); the command line cannot reach it.
    """
    run_dir = Path(run_dir).resolve()
    rank, world_size = world()
    if world_size > 1:  # torchrun holds the launcher's lock for every rank
        os.environ.pop(run_lock.LOCK_FD_ENV, None)
        lock = None
    else:
        lock = run_lock.adopt(run_dir)
        if lock is None:
            print(f"lora-tui: {run_dir}: another process owns this run directory (its lock is held); "
                  "nothing was changed", flush=True)
            return 1
    try:
        return _run(run_dir, rank == 0, world_size, resume, extra_callbacks)
    except OSError as exc:  # a full disk outside the training loop (starting, finishing): one line, no traceback
        if not disk_full(exc, run_dir):
            raise
        error = f"no space left on device ({exc.filename or run_dir}); free space, then start it again"
        print(f"lora-tui: {error}", flush=True)
        try:
            runs.update_status(run_dir, state="failed", ended_at=time.time(), error=error)
        except OSError:
            pass
        return 1
    finally:
        if lock is not None:
            lock.release()


def _run(run_dir: Path, is_main: bool, world_size: int, resume: bool, extra_callbacks: Sequence[Any]) -> int:
    """The run's attempts (several after out-of-memory retries) and what they leave in the directory."""
    settings, sources = dist_mod.read_plan(run_dir)
    plan = TrainingPlan.from_dict(settings, where=str(run_dir / runs.RUN_FILE))
    launch = run_files.read_launch_info(run_dir) if is_main else None
    launch = launch or LaunchInfo()  # a run started by hand has none; only node 0 has launch.json
    retries_left = launch.auto_oom_retry if plan.nnodes == 1 else 0  # every machine must retry alike
    if world_size > 1:
        refused = dist_mod.check_world(plan)  # every rank: same lora-tui, torch, transformers, peft, trl, plan
        if refused:
            dist_mod.refuse(run_dir, refused, is_main=is_main)
            return 1
    stop = StopFlag()
    stop.install()
    if is_main:
        resume_mod.remove_stale_saves(run_dir)
        runs.update_status(run_dir, state="running", pid=os.getpid(), pgid=os.getpgrp(),
                           pid_started=run_lock.process_start_time(os.getpid()), started_at=time.time(),
                           error=None, extra={"world_size": world_size, "attempt": 1})
    checkpoint = None
    if resume:
        checkpoint, outcome = _resume_point(run_dir, plan, sources, launch, is_main=is_main,
                                            world_size=world_size)
        if outcome is not None:
            if is_main:
                _record_end(run_dir, outcome, [{"settings": plan.to_dict(), "outcome": outcome["state"]}])
            return 0 if outcome["state"] == "finished" else 1
    attempts: list[dict[str, Any]] = []
    while True:
        outcome = _attempt(run_dir, plan, sources, launch, stop, is_main=is_main, world_size=world_size,
                           checkpoint=checkpoint, extra_callbacks=extra_callbacks)
        attempts.append({"settings": plan.to_dict(), "outcome": outcome["state"]})
        if outcome["state"] != "oom" or retries_left <= 0 or not outcome.get("next_settings"):
            break
        retries_left -= 1
        plan = _apply_next(plan, outcome["next_settings"])
        sources = {**sources, **{k: "oom-retry" for k in outcome["next_settings"]}}
        if is_main:
            runs.write_text_atomic(run_dir / runs.RUN_FILE, plan.to_toml(sources))
            runs.update_status(run_dir, state="running", error=None, next_settings=None,
                               extra={"world_size": world_size, "attempt": len(attempts) + 1})
            run_files.mark_superseded(run_dir, 0)  # the retry starts over: the failed attempt's steps go
        print(f"lora-tui: out of memory; retrying with {outcome['next_settings']}", flush=True)
        checkpoint = None
    if is_main:
        _record_end(run_dir, outcome, attempts)
    return 0 if outcome["state"] in ("finished", "stopped") else 1


def _resume_point(run_dir: Path, plan: TrainingPlan, sources: dict[str, str], launch: LaunchInfo, *,
                  is_main: bool, world_size: int) -> tuple[Path | None, dict[str, Any] | None]:
    """(checkpoint to resume from, None) or (None, the outcome): no usable checkpoint is left (failed), or the
    checkpoint is the run's last step (finished from it, no training)."""
    from lora_tui.train.info import build_info

    choice = resume_mod.choose(run_dir, is_main=is_main)
    for note in choice.notes:
        print(f"lora-tui: {note}", flush=True)
    facts: dict[str, Any] = {"world_size": world_size}
    if choice.checkpoint is None:
        error = "no usable checkpoint to resume from: " + "; ".join(f"{n}: {p}" for n, p in choice.damaged)
        print(f"lora-tui: {error}", flush=True)
        info = build_info(plan, sources, launch, facts, _NoCallback(), None, started=time.time(), state="failed",
                          error=error)
        return None, {"state": "failed", "error": error[:300], "next_settings": None, "info": info}
    step = runs.checkpoint_step(choice.checkpoint) or 0
    planned = checkpoints.planned_steps(choice.checkpoint, plan.max_steps, plan.num_train_epochs)
    if planned is not None and step >= planned:
        if not is_main:
            return None, {"state": "finished"}
        config = runs.read_json_object(choice.checkpoint / "adapter_config.json") or {}
        facts["base_model_path"] = config.get("base_model_name_or_path")
        return None, resume_mod.finish_from_checkpoint(run_dir, choice.checkpoint, plan, sources, launch, facts)
    if is_main:
        resume_mod.start_history(run_dir, choice.checkpoint)
    return choice.checkpoint, None


class _NoCallback:
    """What `build_info` reads from a RunCallback, for an attempt that never trained."""

    losses: list[float] = []
    eval_losses: list[float] = []
    tokens_seen = 0


def _record_end(run_dir: Path, outcome: dict[str, Any], attempts: list[dict[str, Any]]) -> None:
    """training_info.json and the final status; on a full disk each is skipped with one line, not a traceback."""
    outcome["info"].attempts = attempts
    try:
        run_files.write_training_info(run_dir, outcome["info"])
    except OSError as exc:
        print(f"lora-tui: could not write {runs.INFO_FILE} ({exc.strerror or exc})", flush=True)
    changes: dict[str, Any] = {"state": outcome["state"], "ended_at": time.time(), "error": outcome.get("error"),
                               "next_settings": outcome.get("next_settings"),
                               "adapter_dir": "." if runs.is_adapter_dir(run_dir) else None}
    if outcome.get("adapter_step") is not None:
        changes["adapter_step"] = outcome["adapter_step"]
        changes["step"] = max(outcome["adapter_step"], (runs.read_status(run_dir) or runs.RunStatus()).step)
    try:
        runs.update_status(run_dir, **changes)
    except OSError as exc:
        print(f"lora-tui: could not record the end of the run in {runs.STATUS_FILE} ({exc.strerror or exc})",
              flush=True)


def _attempt(run_dir: Path, plan: TrainingPlan, sources: dict[str, str], launch: LaunchInfo,
             stop: StopFlag, *, is_main: bool, world_size: int, checkpoint: Path | None,
             extra_callbacks: Sequence[Any]) -> dict[str, Any]:
    """One training attempt; returns {"state", "error", "next_settings", "info", "adapter_step"}."""
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
                           * world_size, memory=probe.sample)
    trainer = None
    facts: dict[str, Any] = {"precision": precision, "world_size": world_size}
    result: dict[str, Any] = {"state": "failed", "error": None, "next_settings": None}
    try:
        trainer, facts = build_trainer(plan, run_dir, callback, precision, [*extra_callbacks, probe.callback()])
        if is_main:
            output_dir.empty_trash(run_dir)  # the new run has started: what --overwrite replaced can go
        facts["resumed_from"] = str(checkpoint.relative_to(run_dir)) if checkpoint else None
        loop_started = time.time()
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        facts["train_seconds"] = round(time.time() - loop_started, 3)
        # under FSDP every rank takes part in gathering the shards; rank 0 writes them
        state = trainer.accelerator.get_state_dict(trainer.model) if plan.distributed == "fsdp" else None
        if is_main:
            resume_mod.save_final_adapter(trainer.model, trainer.processing_class, run_dir, state_dict=state)
            facts.update(_adapter_choice(trainer, plan))
            result["adapter_step"] = facts["adapter_step"]
        result["state"] = "stopped" if callback.stopped else "finished"
    except Exception as exc:  # noqa: BLE001 - every failure becomes a status, the traceback goes to run.log
        if disk_full(exc, run_dir):
            result["error"] = _disk_full_error(run_dir, is_main)
            print(f"lora-tui: {result['error']}", flush=True)
        else:
            traceback.print_exc()
            summary = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            result["error"] = summary[:300]
            if is_main and plan.nnodes > 1 and dist_mod.is_peer_failure(exc):
                result["error"] = dist_mod.peer_failure(run_dir, plan, result["error"])[:900]
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


def _disk_full_error(run_dir: Path, is_main: bool) -> str:
    """After a write failed for want of space: remove the partial checkpoint (rank 0), say what is kept."""
    removed = checkpoints.remove_partial_checkpoints(run_dir) if is_main else []
    if is_main:
        resume_mod.remove_stale_saves(run_dir)
    kept = runs.latest_complete_checkpoint(run_dir)
    parts = ["no space left on device"]
    if removed:
        parts.append(f"removed the partial {', '.join(removed)}")
    parts.append(f"kept {kept.name}" if kept is not None else "no complete checkpoint was saved")
    hint = "free space, then resume with --resume" if kept is not None else "free space and start again"
    return f"{'; '.join(parts)}; {hint}"


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
