"""`adapters show` as text: one adapter's configuration, files and training info, line by line.

Pure formatting over `lora_tui.core.adapters.AdapterDetails`; the CLI prints these lines and the TUI's adapter
manager shows them in its details pane, so both read the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lora_tui.core.memory_check import memory_line
from lora_tui.core.units import fmt_decimal_bytes
from lora_tui.i18n import N_, _, pgettext

if TYPE_CHECKING:
    from lora_tui.core.adapters import AdapterDetails


LOSS_LABELS = {"first_loss": N_("first loss"), "final_loss": N_("final loss"), "best_loss": N_("best loss"),
               "final_eval_loss": N_("final eval loss"), "best_eval_loss": N_("best eval loss")}
"""The losses `training_summary` shows, each with its words."""


def fmt_number(value: float | None, fmt: str = "{:g}") -> str:
    """`value` through `fmt`; `-` when unknown."""
    return "-" if value is None else fmt.format(value)


def format_details(details: AdapterDetails) -> list[str]:
    """The `show` text, line by line."""
    info = details.info
    state = pgettext("run state", info.state)
    lines = [_("Adapter {path}").format(path=info.path),
             _("  state: {state}, {count} complete checkpoint(s)").format(state=state, count=info.checkpoints)
             if info.checkpoints
             else _("  state: {state}").format(state=state)]
    lines.append(_("  base model: {base}").format(base=info.base_model or "-"))
    if info.r:
        formula = "alpha / sqrt(r)" if info.use_rslora else "alpha / r"
        lines.append(_("  rank r = {r}, lora_alpha = {alpha}: scaling {formula} = {scaling} (the update B @ A is "
                       "multiplied by this)").format(r=info.r, alpha=fmt_number(info.lora_alpha), formula=formula,
                                                     scaling=fmt_number(info.scaling, "{:.3g}")))
    lines.append(_("  targets: {targets}").format(targets=", ".join(info.target_modules) or "-")
                 + (" (DoRA)" if info.use_dora else ""))
    for problem in info.problems:
        lines.append(f"  ! {problem}")
    if details.math:
        lines += _math_lines(details.math)
    elif details.math_note:
        lines.append(_("  per-layer math: {note}").format(note=details.math_note))
    lines.append(_("  files:"))
    for name, size in details.files:
        lines.append(f"    {name:<32} {fmt_decimal_bytes(size):>10}")
    if details.training:
        lines.append(_("  training info:"))
        lines += [f"    {line}" for line in training_summary(details.training)]
    return lines


def _math_lines(m: dict[str, Any]) -> list[str]:
    """The scaling style, the trainable share and one row per targeted layer kind."""
    lines = []
    label = m.get("scaling_label")
    if label:
        lines.append(_("  scaling: {label}").format(label=label))
    lines.append(_("  trainable parameters: {trainable} of {total} ({pct}%)").format(
        trainable=f"{m.get('trainable_params', 0):,}", total=f"{m.get('total_params', 0):,}",
        pct=f"{m.get('trainable_pct', 0):.3g}"))
    lines.append(_("  per layer kind:"))
    for row in m.get("modules", m.get("rows", [])):
        lines.append(f"    {row['name']:<12} {row['in_features']:>6} -> {row['out_features']:<6} x{row['count']:<4}"
                     f" LoRA {row['lora_params']:>12,}")
    return lines


def training_summary(info: dict[str, Any]) -> list[str]:
    """training_info.json as a few readable lines (`--json` has all of it)."""
    out: list[str] = []
    data = info.get("data") or {}
    if data:
        out.append(_("data: {path} ({count} examples, {shape})").format(path=data.get("path"),
                                                                      count=data.get("examples"),
                                                                      shape=data.get("shape")))
    steps, tokens = info.get("steps"), info.get("tokens_seen")
    wall = (info.get("timings") or {}).get("wall_seconds")
    if steps is not None:
        parts = [_("steps: {steps}").format(steps=steps)]
        if tokens:
            parts.append(_("tokens seen: {tokens}").format(tokens=f"{tokens:,}"))
        if wall:
            parts.append(f"{wall:.0f} s")
        parts.append(_("precision {precision}").format(precision=info.get("precision", "?")))
        out.append(", ".join(parts))
    losses = [(k, info.get(k)) for k in LOSS_LABELS]
    shown = [f"{_(LOSS_LABELS[k])} {v:.4f}" for k, v in losses if isinstance(v, (int, float))]
    if shown:
        out.append(_("loss: {losses}").format(losses=", ".join(shown)))
    chosen = adapter_choice_line(info.get("adapter_step"), info.get("adapter_kept"), info.get("adapter_eval_loss"))
    if chosen:
        out.append(_("adapter: {line}").format(line=chosen))
    memory = info.get("memory") or {}
    line = memory_line(memory.get("estimate"), memory.get("measured"))
    if line:
        out.append(_("memory: {line}").format(line=line))
    versions = info.get("versions") or {}
    if versions:
        out.append(_("versions: {versions}").format(versions=", ".join(f"{k} {v}" for k, v in versions.items())))
    return out


def adapter_choice_line(step: int | None, kept: str | None, eval_loss: float | None) -> str | None:
    """Which checkpoint a run's final adapter is, in one line ("step 40, the lowest eval loss 1.2345 (keep:
    best)"), or None. The setting is named by its field, not its flag: the TUI shows the line too."""
    if step is None:
        return None
    if kept == "best" and eval_loss is not None:
        return _("step {step}, the lowest eval loss {loss} (keep: best)").format(step=step, loss=f"{eval_loss:.4f}")
    if kept == "last":
        return _("step {step}, the last one (keep: last)").format(step=step)
    return _("step {step}, the last one").format(step=step)
