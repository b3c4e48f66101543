"""`lora-tui plan`: exact per-layer LoRA parameters, adapter size, alpha/r scaling and the memory estimate."""

from __future__ import annotations

import argparse
import json
from math import isfinite
from typing import Any

from lora_tui.errors import UserError

DEFAULT_TARGETS = "q_proj,k_proj,v_proj,o_proj"
"""The guide's standard target-module pattern."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `plan` subcommand."""
    p = sub.add_parser(
        "plan",
        help="per-layer LoRA parameter math, adapter size and memory estimate for a model",
        description="Show, for each targeted module kind, its shape, layer count, original and LoRA parameters, "
        "the totals PEFT will report, the adapter size, alpha/r scaling and a peak-memory estimate.",
    )
    p.add_argument("--model", metavar="M", help="preset name or hub id (see --list-models), `demo`, a local "
                   "directory with config.json, or a hub id when the hub is reachable")
    p.add_argument("--list-models", action="store_true", help="list the preset models and exit")
    p.add_argument("--lora-r", type=int, default=16, metavar="R", help="LoRA rank r (default 16)")
    p.add_argument("--lora-alpha", type=float, metavar="A", help="LoRA alpha (default 2 x r: the guide's standard)")
    p.add_argument("--target-modules", default=DEFAULT_TARGETS, metavar="LIST",
                   help=f"comma-separated module names, or all-linear (default {DEFAULT_TARGETS})")
    p.add_argument("--use-dora", action="store_true", help="DoRA: adds out_features magnitude values per module")
    p.add_argument("--use-rslora", action="store_true", help="rank-stabilised scaling alpha / sqrt(r)")
    p.add_argument("--batch-size", type=int, default=2, metavar="B", help="per-device batch size (default 2)")
    p.add_argument("--max-seq-length", type=int, default=1024, metavar="S", help="tokens per example (default 1024)")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16", help="base weights dtype (bf16)")
    p.add_argument("--no-gradient-checkpointing", action="store_true", help="store activations instead")
    p.add_argument("--vram-gb", type=float, metavar="G", help="GPU memory in GB (default: the detected GPU)")
    p.add_argument("--json", action="store_true", help="print JSON (trainable_params, total_params, modules, "
                   "memory)")
    p.set_defaults(func=run)


def _targets(text: str) -> list[str]:
    """The --target-modules list."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("--target-modules: give at least one module name, or all-linear.")
    return names


def _check_args(args: argparse.Namespace) -> None:
    """Range checks the parser cannot express."""
    if args.lora_r < 1:
        raise UserError(f"--lora-r must be a positive integer, got {args.lora_r}")
    if args.lora_alpha is not None and not (isfinite(args.lora_alpha) and args.lora_alpha > 0):
        raise UserError(f"--lora-alpha must be > 0, got {args.lora_alpha:g}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.max_seq_length < 1:
        raise UserError(f"--max-seq-length must be a positive integer, got {args.max_seq_length}")
    if args.vram_gb is not None and not (isfinite(args.vram_gb) and args.vram_gb > 0):
        raise UserError(f"--vram-gb must be > 0, got {args.vram_gb:g}")


def _vram(args: argparse.Namespace) -> tuple[int | None, str]:
    """VRAM in bytes and where it came from (--vram-gb, else the detected GPU, else unknown)."""
    if args.vram_gb is not None:
        return int(args.vram_gb * 1e9), "--vram-gb"
    try:
        from lora_tui.core.hardware.detect import detect_hardware
    except ImportError:
        return None, "not detected"
    vram = detect_hardware().usable_vram_bytes
    return (vram, "detected GPU") if vram else (None, "no CUDA GPU detected")


def _memory(inv: Any, args: argparse.Namespace, alpha: float, targets: list[str]) -> dict[str, Any] | None:
    """The memory estimate (and the fit steps when it does not fit) as a dict; None without core.memory."""
    try:
        from lora_tui.core.memory import estimate_memory, fit_to_vram
    except ImportError:
        return None
    from lora_tui.core.plan import TrainingPlan

    vram, source = _vram(args)
    est = estimate_memory(inv, lora_r=args.lora_r, target_modules=targets, batch_size=args.batch_size,
                          seq_len=args.max_seq_length, dtype=args.dtype,
                          gradient_checkpointing=not args.no_gradient_checkpointing, use_dora=args.use_dora,
                          vram_bytes=vram)
    out = est.to_dict()
    out["vram_source"] = source
    if est.verdict == "will_not_fit" and vram is not None:
        plan = TrainingPlan(model=inv.model_id, lora_r=args.lora_r, lora_alpha=alpha, target_modules=targets,
                            per_device_train_batch_size=args.batch_size, max_seq_length=args.max_seq_length,
                            precision=args.dtype, gradient_checkpointing=not args.no_gradient_checkpointing,
                            use_dora=args.use_dora, use_rslora=args.use_rslora)
        out["fit_steps"] = [{"description": s.description, "changes": s.changes,
                             "total_bytes": s.estimate.total_bytes, "verdict": s.estimate.verdict}
                            for s in fit_to_vram(inv, plan, vram)]
    return out


def _list_models(as_json: bool) -> int:
    """Print the preset models."""
    from lora_tui.core.models.modules import list_presets

    presets = list_presets()
    if as_json:
        print(json.dumps([p.__dict__ for p in presets], indent=2))
        return 0
    print(f"{'name':26s} {'hub id':36s} {'params':>15s}  family")
    for p in presets:
        print(f"{p.name:26s} {p.hub_id:36s} {p.params:>15,d}  {p.family}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Print the plan; exit 2 on a user error."""
    if args.list_models:
        return _list_models(args.json)
    if not args.model:
        raise UserError("plan: --model is required (a preset from `lora-tui plan --list-models`, `demo`, or a "
                        "local directory with config.json)")
    _check_args(args)
    from lora_tui.core.lora_math import compute_lora_math
    from lora_tui.core.models.modules import load_inventory, unknown_targets_error

    inv = load_inventory(args.model)
    targets = _targets(args.target_modules)
    alpha_default = args.lora_alpha is None
    alpha = 2.0 * args.lora_r if alpha_default else args.lora_alpha
    alpha = int(alpha) if float(alpha).is_integer() else alpha
    math = compute_lora_math(inv, r=args.lora_r, lora_alpha=alpha, target_modules=targets,
                             use_dora=args.use_dora, use_rslora=args.use_rslora)
    if math.unmatched:
        raise unknown_targets_error(inv, list(math.unmatched))
    memory = _memory(inv, args, alpha, targets)
    if args.json:
        data = {"model": inv.model_id, **math.to_dict(), "lora_alpha_default": alpha_default, "memory": memory}
        print(json.dumps(data, indent=2))
        return 0
    print(render_plan(inv, math, memory, alpha_default=alpha_default, args=args))
    return 0


def _size(n: int) -> str:
    """Bytes as MB (decimal) or GiB, whichever reads better."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 1e6:.1f} MB"


def _header(inv: Any) -> str:
    """One line naming the model and its shape."""
    name = inv.extra.get("display_name") or inv.model_id
    hub = inv.extra.get("hub_id")
    where = f" ({hub})" if hub and hub != name else ""
    return (f"Model: {name}{where}: {inv.model_type}, {inv.num_layers} layers, hidden {inv.hidden_size}, "
            f"{inv.num_attention_heads} query / {inv.num_key_value_heads} key-value heads x {inv.head_dim}, "
            f"{inv.total_params:,} params")


def _table(math: Any) -> list[str]:
    """The per-module table with a totals line."""
    rows = [("module", "in -> out", "layers", "original", "LoRA", "share")]
    for r in math.rows:
        shape = f"{r.in_features} -> {r.out_features}" + (f" x{r.experts}" if r.experts > 1 else "")
        rows.append((r.name, shape, str(r.count), f"{r.original_params:,}", f"{r.lora_params:,}",
                     f"{100 * r.share:.2f}%"))
    original = sum(r.original_params for r in math.rows)
    rows.append(("total", "", "", f"{original:,}", f"{math.trainable_params:,}",
                 f"{100 * math.trainable_params / original:.2f}%" if original else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    out = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[j].rjust(widths[j]) for j in range(2, 6)]
        out.append("  ".join(cells).rstrip())
        if i == 0 or i == len(rows) - 2:
            out.append("  ".join("-" * w for w in widths))
    return out


def _memory_lines(memory: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The memory estimate's parts, total, verdict and fit steps."""
    gc = "off" if args.no_gradient_checkpointing else "on"
    lines = [f"Peak training memory (batch {args.batch_size}, sequence {args.max_seq_length}, {args.dtype}, "
             f"gradient checkpointing {gc}):"]
    width = max(len(part["label"]) for part in memory["parts"])
    for part in memory["parts"]:
        lines.append(f"  {part['label']:{width}s} {_size(part['bytes']):>10s}  {part['detail']}")
    vram = memory.get("vram_bytes")
    against = f" of {vram / 1e9:.1f} GB ({memory.get('vram_source')})" if vram else " (no VRAM known)"
    lines.append(f"  {'total':{width}s} {_size(memory['total_bytes']):>10s}{against}: "
                 f"{memory['verdict'].replace('_', ' ')}")
    for i, step in enumerate(memory.get("fit_steps", []), 1):
        lines.append(f"  fix {i}: {step['description']} -> {_size(step['total_bytes'])}, "
                     f"{step['verdict'].replace('_', ' ')}")
    return lines


def render_plan(inv: Any, math: Any, memory: dict[str, Any] | None, *, alpha_default: bool,
                args: argparse.Namespace) -> str:
    """The human-readable plan."""
    alpha_note = " (default: 2 x r, the guide's standard)" if alpha_default else ""
    formula = "alpha / sqrt(r)" if math.use_rslora else "alpha / r"
    lines = [_header(inv),
             f"LoRA r={math.r}, alpha={math.lora_alpha:g}{alpha_note}; scaling {formula} = {math.scaling:.3g} "
             f"({math.scaling_label})" + (", DoRA" if math.use_dora else ""), ""]
    lines += _table(math)
    lines += ["", f"Trainable: {math.trainable_params:,} of {math.total_params:,} parameters "
                  f"({math.trainable_pct:.3f}%; base model {math.base_params:,})",
              f"Adapter file: {_size(math.adapter_bytes_fp32)} fp32, {_size(math.adapter_bytes_bf16)} bf16 "
              f"({math.tensors} tensors, header estimated)"]
    lines += [f"Note: {note}" for note in math.notes]
    if memory is not None:
        lines += ["", *_memory_lines(memory, args)]
    return "\n".join(lines)
