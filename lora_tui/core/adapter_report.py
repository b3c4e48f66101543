"""`adapters show` as text: one adapter's configuration, files and training info, line by line.

Pure formatting over `lora_tui.core.adapters.AdapterDetails`; the CLI prints these lines and the TUI's adapter
manager shows them in its details pane, so both read the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lora_tui.core.memory_check import memory_line
from lora_tui.core.units import fmt_decimal_bytes

if TYPE_CHECKING:
    from lora_tui.core.adapters import AdapterDetails


def fmt_number(value: float | None, fmt: str = "{:g}") -> str:
    """`value` through `fmt`; `-` when unknown."""
    return "-" if value is None else fmt.format(value)


def format_details(details: AdapterDetails) -> list[str]:
    """The `show` text, line by line."""
    info = details.info
    lines = [f"Adapter {info.path}", f"  state: {info.state}"
             + (f", {info.checkpoints} complete checkpoint(s)" if info.checkpoints else "")]
    lines.append(f"  base model: {info.base_model or '-'}")
    if info.r:
        formula = "alpha / sqrt(r)" if info.use_rslora else "alpha / r"
        lines.append(f"  rank r = {info.r}, lora_alpha = {fmt_number(info.lora_alpha)}: scaling {formula} = "
                     f"{fmt_number(info.scaling, '{:.3g}')} (the update B @ A is multiplied by this)")
    lines.append(f"  targets: {', '.join(info.target_modules) or '-'}"
                 + (" (DoRA)" if info.use_dora else ""))
    for problem in info.problems:
        lines.append(f"  ! {problem}")
    if details.math:
        lines += _math_lines(details.math)
    elif details.math_note:
        lines.append(f"  per-layer math: {details.math_note}")
    lines.append("  files:")
    for name, size in details.files:
        lines.append(f"    {name:<32} {fmt_decimal_bytes(size):>10}")
    if details.training:
        lines.append("  training info:")
        lines += [f"    {line}" for line in training_summary(details.training)]
    return lines


def _math_lines(m: dict[str, Any]) -> list[str]:
    """The scaling style, the trainable share and one row per targeted layer kind."""
    lines = []
    label = m.get("scaling_label")
    if label:
        lines.append(f"  scaling: {label}")
    lines.append(f"  trainable parameters: {m.get('trainable_params', 0):,} of {m.get('total_params', 0):,} "
                 f"({m.get('trainable_pct', 0):.3g}%)")
    lines.append("  per layer kind:")
    for row in m.get("modules", m.get("rows", [])):
        lines.append(f"    {row['name']:<12} {row['in_features']:>6} -> {row['out_features']:<6} x{row['count']:<4}"
                     f" LoRA {row['lora_params']:>12,}")
    return lines


def training_summary(info: dict[str, Any]) -> list[str]:
    """training_info.json as a few readable lines (`--json` has all of it)."""
    out: list[str] = []
    data = info.get("data") or {}
    if data:
        out.append(f"data: {data.get('path')} ({data.get('examples')} examples, {data.get('shape')})")
    steps, tokens = info.get("steps"), info.get("tokens_seen")
    wall = (info.get("timings") or {}).get("wall_seconds")
    if steps is not None:
        out.append(f"steps: {steps}" + (f", tokens seen: {tokens:,}" if tokens else "")
                   + (f", {wall:.0f} s" if wall else "") + f", precision {info.get('precision', '?')}")
    losses = [(k, info.get(k)) for k in ("first_loss", "final_loss", "best_loss", "final_eval_loss", "best_eval_loss")]
    shown = [f"{k.replace('_', ' ')} {v:.4f}" for k, v in losses if isinstance(v, (int, float))]
    if shown:
        out.append("loss: " + ", ".join(shown))
    chosen = adapter_choice_line(info.get("adapter_step"), info.get("adapter_kept"), info.get("adapter_eval_loss"))
    if chosen:
        out.append(f"adapter: {chosen}")
    memory = info.get("memory") or {}
    line = memory_line(memory.get("estimate"), memory.get("measured"))
    if line:
        out.append(f"memory: {line}")
    versions = info.get("versions") or {}
    if versions:
        out.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return out


def adapter_choice_line(step: int | None, kept: str | None, eval_loss: float | None) -> str | None:
    """Which checkpoint a run's final adapter is, in one line ("step 40, the lowest eval loss 1.2345 (keep:
    best)"), or None. The setting is named by its field, not its flag: the TUI shows the line too."""
    if step is None:
        return None
    if kept == "best" and eval_loss is not None:
        return f"step {step}, the lowest eval loss {eval_loss:.4f} (keep: best)"
    return f"step {step}, the last one" + (" (keep: last)" if kept == "last" else "")
