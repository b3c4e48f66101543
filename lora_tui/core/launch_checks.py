"""The checks `core.launcher.check_for_launch` makes before anything is written: the data, the model on this
machine, the GPUs a sharded run needs here, the output directory's policy (and the checkpoint a resume uses), the
disk.

Each refuses with a UserError in the language shown, or returns warnings (also in the language shown: none of
them is written into a run file). What this machine has is detected (`core.hardware.detect`), never taken from a
VRAM figure given for planning (`--vram-gb`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_tui.core import checkpoints, distributed, runs
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan
from lora_tui.errors import UserError
from lora_tui.i18n import N_, _, ngettext

SHOWN_PROBLEMS = 10
"""Data problems a refused launch lists (`lora-tui inspect` lists them all)."""


def check_data(report: Any, data: str | None) -> None:
    """UserError listing the data's first problems when it has any."""
    if report.ok:
        return
    path = data or str(SAMPLE_DATA_PATH)
    lines = [str(issue) for issue in report.issues[:SHOWN_PROBLEMS]]
    head = ngettext("--data {path}: {count} problem:", "--data {path}: {count} problems:", report.issue_count)
    more = report.issue_count - len(lines)
    tail = [_("... and {count} more (run `lora-tui inspect {path}`)").format(count=more, path=path)] if more > 0 \
        else []
    raise UserError("\n".join([head.format(path=path, count=report.issue_count), *lines, *tail]))


def check_model(plan: TrainingPlan, inventory: Any, dry_run: bool) -> tuple[Any, bool, list[str]]:
    """(inventory, whether the weights are on this machine, warnings); UserError when the targets do not exist,
    or (unless a dry run) when the weights are not here."""
    from lora_tui.core.models.modules import check_targets, is_available_offline, load_inventory

    if inventory is None:
        inventory = load_inventory(plan.model)
    check_targets(inventory, list(plan.target_modules))
    if plan.model.strip().lower() == "demo":
        return inventory, True, []
    available, reason = is_available_offline(plan.model)
    if available:
        return inventory, True, []
    message = _("--model {model}: weights not in the local cache ({reason}); a real run needs them. `--model demo` "
                "or a local directory with the weights works offline.").format(model=plan.model, reason=reason)
    if dry_run:
        return inventory, False, [message]
    raise UserError(message)


def check_gpus(plan: TrainingPlan, dry_run: bool) -> list[str]:
    """A sharded run (`distributed = fsdp`) needs CUDA GPUs on this machine as detected: UserError at launch, a
    warning in a dry run (which may plan for another machine with `--vram-gb`)."""
    if plan.distributed != "fsdp":
        return []
    from lora_tui.core.hardware.detect import detect_hardware

    no_gpu = distributed.fsdp_without_gpu(plan, detect_hardware().usable_vram_bytes)
    if no_gpu and not dry_run:
        raise UserError(no_gpu)
    return [no_gpu] if no_gpu else []


def protected_paths(plan: TrainingPlan) -> list[tuple[str, str]]:
    """What `--overwrite` must never delete: the training data (for a glob, the directory it starts in) and a base
    model given as a local directory (named in English, as `core.output_dir.PROTECTED`)."""
    keep = []
    if plan.data:
        parts = Path(plan.data).parts
        fixed = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), len(parts))
        keep.append((N_("the training data"), str(Path(*parts[:fixed])) if fixed else "."))
    if plan.model.strip().lower() != "demo" and Path(plan.model).expanduser().exists():
        keep.append((N_("the base model"), plan.model))
    return keep


def output_mode(plan: TrainingPlan, *, resume: bool, overwrite: bool) -> tuple[str, str | None, list[str]]:
    """(mode, checkpoint to resume from, notes): the output policy, and for a resume the checkpoint it uses."""
    if resume and overwrite:
        raise UserError(_("--resume and --overwrite cannot be combined"))
    mode = runs.check_output_dir(plan.output, resume=resume, overwrite=overwrite, protect=protected_paths(plan))
    if mode != "resume":
        return mode, None, []
    run_dir = Path(plan.output).expanduser()
    choice = checkpoints.choose_checkpoint(run_dir)
    if choice.checkpoint is None:
        damaged = "; ".join(f"{name}: {problem}" for name, problem in choice.damaged)
        raise UserError(_("--resume: {path} has no usable checkpoint ({damaged}); start a new run").format(
            path=plan.output, damaged=damaged))
    notes = [_("{note}: it will be set aside, the run resumes from {checkpoint}").format(
        note=note, checkpoint=choice.checkpoint.name) for note in choice.notes]
    step = runs.checkpoint_step(choice.checkpoint) or 0
    planned = checkpoints.planned_steps(choice.checkpoint, plan.max_steps, plan.num_train_epochs)
    status = runs.read_status(run_dir)
    finished = status is not None and status.state == "finished" and runs.is_adapter_dir(run_dir)
    if planned is not None and (step > planned or (step == planned and finished)):
        # the Trainer would still take one more step; a run that ended there without its adapter is finished
        # from the checkpoint instead (the training process writes the adapter)
        if plan.max_steps > 0:
            raise UserError(_("--resume: {path} already reached step {step} of --max-steps {planned}; pass a larger "
                              "--max-steps to train further").format(path=plan.output, step=step, planned=planned))
        raise UserError(_("--resume: {path} already reached step {step} of its {planned} planned steps; pass a "
                          "larger --max-steps to train further").format(path=plan.output, step=step, planned=planned))
    return mode, str(choice.checkpoint.relative_to(run_dir)), notes


def check_space(plan: TrainingPlan, inventory: Any) -> list[str]:
    """Refuse a run whose disk cannot hold one checkpoint; warn when it may not hold all it keeps."""
    from lora_tui.core.disk import check_run_space, fsdp_gathered_bytes
    from lora_tui.core.lora_math import compute_lora_math

    try:
        math = compute_lora_math(inventory, r=plan.lora_r, lora_alpha=plan.lora_alpha,
                                 target_modules=list(plan.target_modules), use_dora=plan.use_dora,
                                 use_rslora=plan.use_rslora)
    except (UserError, ValueError, AttributeError, KeyError):
        return []  # the adapter's size is unknown: nothing to check against
    gathered = 0
    if plan.distributed == "fsdp":  # on CUDA GPUs: a 16-bit embedding, fp32 beside 4-bit weights (kbit upcast)
        width = 4 if plan.load_in_4bit else 2
        tied = inventory.vocab_size * inventory.hidden_size * width \
            if getattr(inventory, "tie_word_embeddings", False) else 0
        gathered = fsdp_gathered_bytes(math.adapter_bytes_fp32, tied)
    warning = check_run_space(plan.output, math.adapter_bytes_fp32, save_total_limit=plan.save_total_limit,
                              max_steps=plan.max_steps, save_steps=plan.save_steps, gathered_bytes=gathered)
    return [warning] if warning else []
