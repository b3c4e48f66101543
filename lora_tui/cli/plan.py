"""`lora-tui plan`: exact per-layer LoRA parameters, adapter size, alpha/r scaling and the memory estimate; on
several processes the strategy (ddp or fsdp, `core.memory_sharded.as_planned`) with its reason, and the memory one
GPU holds under it beside both strategies' per-GPU figures."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from lora_tui.cells import pad, rule, table
from lora_tui.cells import width as cells_width
from lora_tui.core.units import fmt_gib_or_mb
from lora_tui.errors import UserError
from lora_tui.i18n import _

PLAN_FIELDS = ("lora_r", "lora_alpha", "target_modules", "use_dora", "use_rslora", "per_device_train_batch_size",
               "max_seq_length", "gradient_checkpointing", "load_in_4bit")
"""The TrainingPlan fields `plan` takes as flags (the rest do not change the math or the memory)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `plan` subcommand."""
    from lora_tui.cli.flags import add_plan_flags, add_process_flags, gb_size
    from lora_tui.core.plan import TrainingPlan

    p = sub.add_parser(
        "plan",
        help=_("per-layer LoRA parameter math, adapter size and memory estimate for a model"),
        description=_("Show, for each targeted module kind, its shape, layer count, original and LoRA parameters, "
                      "the totals PEFT will report, the adapter size, alpha/r scaling and a peak-memory estimate."),
        epilog=_("--target-modules also takes a pattern of the guide: minimal, standard or maximum. "
                 "--lora-alpha defaults to 2 x r (the guide's standard)."),
    )
    p.add_argument("--model", metavar="M", help=_("preset name or hub id (see --list-models), `demo`, a local "
                                                  "directory with config.json, or a hub id when the hub is "
                                                  "reachable"))
    p.add_argument("--list-models", action="store_true", help=_("list the preset models and exit"))
    add_plan_flags(p, PLAN_FIELDS, defaults=TrainingPlan())
    add_process_flags(p)
    p.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], default="auto",
                   help=_("compute precision (default auto: what `lora-tui train` picks for this model on the "
                          "planned GPU, or fp32 on the CPU)"))
    add_loss_flag(p)
    from lora_tui.core.sources import ADVICE

    p.add_argument("--advice", choices=ADVICE, default="guide",
                   help=_("the targets when --target-modules is not given: guide (default): the guide's standard "
                          "pattern, q/k/v/o; practice: all linear projections, as current LoRA practice"))
    p.add_argument("--vram-gb", type=gb_size, metavar="G", help=_("GPU memory in GB (default: the detected GPU)"))
    p.add_argument("--json", action="store_true", help=_("print JSON (trainable_params, total_params, modules, "
                                                         "memory)"))
    p.set_defaults(func=run)


def _plan(args: argparse.Namespace, inv: Any) -> tuple[Any, bool]:
    """The TrainingPlan the flags describe (validated by TrainingPlan), and whether alpha was defaulted."""
    from lora_tui.cli.flags import given_values, process_values
    from lora_tui.core.plan import TrainingPlan
    from lora_tui.core.resolve import PATTERN
    from lora_tui.core.targets import pattern_modules

    given = {**given_values(args, PLAN_FIELDS), **process_values(args)}
    if PATTERN not in given and "target_modules" not in given and getattr(args, "advice", "guide") == "practice":
        from lora_tui.core.tables import practice

        given[PATTERN] = practice().style.pattern
    if PATTERN in given:
        given["target_modules"] = pattern_modules(given.pop(PATTERN), inv)[0]
    alpha_default = "lora_alpha" not in given
    if alpha_default and isinstance(given.get("lora_r", 0), int) and not isinstance(given.get("lora_r"), bool):
        given["lora_alpha"] = 2 * given.get("lora_r", TrainingPlan.lora_r)
    return TrainingPlan.from_dict({"model": inv.model_id, "precision": args.dtype, **given}, where="plan"), \
        alpha_default


def add_loss_flag(p: argparse.ArgumentParser) -> None:
    """`--loss-impl`: the loss path the memory estimate describes."""
    from lora_tui.core.memory import CLI_LOSS_IMPLS, runner_loss_impl

    p.add_argument("--loss-impl", choices=CLI_LOSS_IMPLS, default=None,
                   help=_("the loss path the memory estimate assumes: fused (TRL's chunked LM head, no full "
                          "logits) or full (a plain Transformers loop's logits, 12 B each); default: what `lora-tui "
                          "train` uses with the installed TRL ({loss})").format(loss=runner_loss_impl()))


def _vram(args: argparse.Namespace) -> tuple[int | None, str]:
    """VRAM in bytes and where it came from (--vram-gb, else the detected GPU, else unknown)."""
    if args.vram_gb is not None:
        return int(args.vram_gb * 1e9), "--vram-gb"
    from lora_tui.core.hardware.detect import detect_hardware

    vram = detect_hardware().usable_vram_bytes
    return (vram, _("detected GPU")) if vram else (None, _("no CUDA GPU detected"))


def _memory(inv: Any, plan: Any, vram: int | None, source: str, loss: str | None = None) -> dict[str, Any]:
    """The memory estimate one GPU holds under the plan's strategy (and the fit steps when it does not fit) as a
    dict; with several processes both strategies' per-GPU figures too."""
    from lora_tui.core.fit import fit_to_vram
    from lora_tui.core.memory_sharded import fsdp_shards, plan_memory

    memory = plan_memory(inv, plan, vram, loss=loss)
    est = memory.one_gpu
    out = est.to_dict()
    out["vram_source"] = source
    if memory.per_gpu:
        out["per_gpu"] = memory.per_gpu
    if est.verdict == "will_not_fit" and vram is not None:
        out["fit_steps"] = [s.to_dict() for s in fit_to_vram(inv, plan, vram, loss=loss, shards=fsdp_shards(plan))]
    return out


def _list_models(as_json: bool) -> int:
    """Print the preset models."""
    from lora_tui.core.models.modules import list_presets

    presets = list_presets()
    if as_json:
        print(json.dumps([p.__dict__ for p in presets], indent=2))
        return 0
    rows = [[_("name"), _("hub id"), _("params"), _("family")]]
    rows += [[p.name, p.hub_id, f"{p.params:,d}", p.family] for p in presets]
    widths = (26, 36, 15)
    for row in rows:
        print(f"{pad(row[0], widths[0])} {pad(row[1], widths[1])} {pad(row[2], widths[2], 'right')}  {row[3]}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Print the plan; exit 2 on a user error."""
    if args.list_models:
        return _list_models(args.json)
    if not args.model:
        raise UserError(_("plan: --model is required (a preset from `lora-tui plan --list-models`, `demo`, or a "
                          "local directory with config.json)"))
    from lora_tui.core.lora_math import compute_lora_math
    from lora_tui.core.models.modules import load_inventory, unknown_targets_error

    inv = load_inventory(args.model)
    plan, alpha_default = _plan(args, inv)
    vram, source = _vram(args)
    from lora_tui.core.memory_sharded import as_planned

    strategy = as_planned(inv, plan, vram, given=args.distributed is not None)
    plan = dataclasses.replace(plan, distributed=strategy.distributed)
    math = compute_lora_math(inv, r=plan.lora_r, lora_alpha=plan.lora_alpha, target_modules=plan.target_modules,
                             use_dora=plan.use_dora, use_rslora=plan.use_rslora)
    if math.unmatched:
        raise unknown_targets_error(inv, list(math.unmatched))
    memory = _memory(inv, plan, vram, source, loss=args.loss_impl)
    memory["strategy"] = {"distributed": plan.distributed, "processes": plan.world_size, "reason": strategy.reason}
    if args.json:
        data = {"model": inv.model_id, **math.to_dict(), "lora_alpha_default": alpha_default, "memory": memory}
        print(json.dumps(data, indent=2))
        return 0
    print(render_plan(inv, math, memory, alpha_default=alpha_default, plan=plan))
    return 0


def _header(inv: Any) -> str:
    """One line naming the model and its shape."""
    name = inv.extra.get("display_name") or inv.model_id
    hub = inv.extra.get("hub_id")
    where = f" ({hub})" if hub and hub != name else ""
    return _("Model: {name}{where}: {type}, {layers} layers, hidden {hidden}, {heads} query / {kv_heads} key-value "
             "heads x {head_dim}, {params} params").format(
                 name=name, where=where, type=inv.model_type, layers=inv.num_layers, hidden=inv.hidden_size,
                 heads=inv.num_attention_heads, kv_heads=inv.num_key_value_heads, head_dim=inv.head_dim,
                 params=f"{inv.total_params:,}")


def _table(math: Any) -> list[str]:
    """The per-module table with a totals line."""
    rows = [(_("module"), _("in -> out"), _("layers"), _("original"), "LoRA", _("share"))]
    for r in math.rows:
        shape = f"{r.in_features} -> {r.out_features}" + (f" x{r.experts}" if r.experts > 1 else "")
        rows.append((r.name, shape, str(r.count), f"{r.original_params:,}", f"{r.lora_params:,}",
                     f"{100 * r.share:.2f}%"))
    original = sum(r.original_params for r in math.rows)
    rows.append((_("total"), "", "", f"{original:,}", f"{math.trainable_params:,}",
                 f"{100 * math.trainable_params / original:.2f}%" if original else "-"))
    lines = table(rows, "llrrrr")
    line = rule(rows)
    return [lines[0], line, *lines[1:-1], line, lines[-1]]


def _memory_lines(memory: dict[str, Any], plan: Any) -> list[str]:
    """The memory estimate's parts, total, verdict and fit steps."""
    from lora_tui.core.recommend import verdict_words

    gc = _("on") if plan.gradient_checkpointing else _("off")
    settings = memory.get("settings", {})
    dtype = settings.get("dtype", plan.precision) + (_(", 4-bit base") if settings.get("load_in_4bit") else "")
    loss = {"fused": _("TRL's fused LM head"), "full": _("full logits")}.get(settings.get("loss", ""),
                                                                           settings.get("loss"))
    seq = settings.get("seq_len", plan.max_seq_length)
    lines = [_("Peak training memory (batch {batch}, sequence {seq}, {dtype}, gradient checkpointing {gc}, loss: "
               "{loss}):").format(batch=plan.per_device_train_batch_size, seq=seq, dtype=dtype, gc=gc, loss=loss)]
    if settings.get("precision_reason"):
        lines.append(_("  precision: {why}").format(why=settings["precision_reason"]))
    if settings.get("seq_basis"):
        lines.append(_("  lengths: {why}").format(why=settings["seq_basis"]))
    strategy = memory.get("strategy") or {}
    if strategy.get("processes", 1) > 1:
        lines.append(_("  strategy over {count} processes: {why}").format(count=strategy["processes"],
                                                                         why=strategy["reason"]))
    total = _("total")
    width = max(cells_width(part["label"]) for part in memory["parts"])
    for part in memory["parts"]:
        lines.append(f"  {pad(part['label'], width)} {fmt_gib_or_mb(part['bytes']):>10s}  {part['detail']}")
    vram = memory.get("vram_bytes")
    against = _(" of {gb} GB ({source})").format(gb=f"{vram / 1e9:.1f}", source=memory.get("vram_source")) if vram \
        else _(" (no VRAM known)")
    lines.append(f"  {pad(total, width)} {fmt_gib_or_mb(memory['total_bytes']):>10s}{against}: "
                 f"{verdict_words(memory['verdict'])}")
    if memory.get("per_gpu"):
        from lora_tui.core.memory_sharded import per_gpu_text

        lines.append(f"  {per_gpu_text(memory['per_gpu'])}")
    for i, step in enumerate(memory.get("fit_steps", []), 1):
        lines.append(_("  fix {n}: {step}").format(n=i, step=fit_line(step)))
    return lines


def fit_line(step: dict[str, Any]) -> str:
    """One fit step for a person: what changed, then the estimate after it and its verdict (a step that states
    its own figure, such as 4-bit loading, or a note, is shown as it is)."""
    if step.get("kind") in ("four_bit", "tried", "note"):
        return str(step["description"])
    from lora_tui.core.recommend import verdict_words

    return f"{step['description']} -> {fmt_gib_or_mb(step['total_bytes'])}, {verdict_words(step['verdict'])}"


def render_plan(inv: Any, math: Any, memory: dict[str, Any] | None, *, alpha_default: bool, plan: Any) -> str:
    """The human-readable plan."""
    alpha_note = _(" (default: 2 x r, the guide's standard)") if alpha_default else ""
    formula = "alpha / sqrt(r)" if math.use_rslora else "alpha / r"
    lines = [_header(inv),
             _("LoRA r={r}, alpha={alpha}{note}; scaling {formula} = {scaling} ({label})").format(
                 r=math.r, alpha=f"{math.lora_alpha:g}", note=alpha_note, formula=formula,
                 scaling=f"{math.scaling:.3g}", label=math.scaling_label) + (", DoRA" if math.use_dora else ""), ""]
    lines += _table(math)
    lines += ["", _("Trainable: {trainable} of {total} parameters ({pct}%; base model {base})").format(
                  trainable=f"{math.trainable_params:,}", total=f"{math.total_params:,}",
                  pct=f"{math.trainable_pct:.3f}", base=f"{math.base_params:,}"),
              _("Adapter file: {fp32} fp32, {bf16} bf16 ({tensors} tensors, header estimated)").format(
                  fp32=fmt_gib_or_mb(math.adapter_bytes_fp32), bf16=fmt_gib_or_mb(math.adapter_bytes_bf16),
                  tensors=math.tensors)]
    lines += [_("Note: {note}").format(note=note) for note in math.notes]
    if memory is not None:
        lines += ["", *_memory_lines(memory, plan)]
    return "\n".join(lines)
