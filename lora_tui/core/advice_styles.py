"""The values where the two advice styles differ: the learning rate, the target pattern and the epochs.

`guide` applies the guide's tables exactly (`core.recommend` has the precedence); `practice` keeps the guide's
r, alpha and dropout logic and takes current LoRA practice (presets/practice.toml, `[advice_practice]`) for the
three settings the guide is out of date on. Each function returns the value, its Citation (short: the other
style's reason quotes it; for practice, after the words "common LoRA practice") and the full reason.
"""

from __future__ import annotations

import math

from lora_tui.core.plan import fmt_value
from lora_tui.core.sources import Citation, SourceKind
from lora_tui.core.tables import Band, Guide, Task, cited, pattern_name, practice, row_label
from lora_tui.i18n import _


def practice_learning_rate(r: int, data: Band | None) -> tuple[float, Citation, str]:
    """About 2e-4, scaled for r (x sqrt(reference r / r)) and for data above 10K examples, rounded to one digit
    and kept within the style's bounds."""
    p = practice().style
    large = data is not None and data.key == "large"
    raw = p.learning_rate * math.sqrt(p.reference_r / r) * (p.large_data_factor if large else 1.0)
    lr = min(p.max_learning_rate, max(p.min_learning_rate, float(f"{raw:.0e}")))
    scaled = (f"{fmt_value(p.learning_rate)} x sqrt({p.reference_r}/{r})"
              + (f" x {p.large_data_factor:g} ({row_label(data) if data else ''})" if large else "")
              + f" = {fmt_value(float(f'{raw:.2g}'))} -> {fmt_value(lr)}")
    cite = Citation(SourceKind.PRACTICE, _("{sources}; scaled by lora-tui: {scaled}").format(
        sources=_(p.sources), scaled=scaled))
    return lr, cite, _("common LoRA practice ({source}); {why}").format(source=cite.where, why=_(p.lr_why))


def practice_epochs(data: Band | None) -> tuple[float, Citation, str]:
    """1-3 epochs by data size (3 when the size is unknown)."""
    p = practice().style
    key = data.key if data is not None else "unknown"
    size = row_label(data) if data is not None else _("data size unknown")
    cite = Citation(SourceKind.PRACTICE, _("{epochs} epoch(s) for {size}").format(
        epochs=fmt_value(p.epochs[key]), size=size))
    return p.epochs[key], cite, _("common LoRA practice: {source}; {why}").format(source=cite.where,
                                                                                   why=_(p.epochs_why))


def practice_pattern() -> tuple[str, Citation, str]:
    """All linear projections (the guide's maximum pattern)."""
    p = practice().style
    cite = Citation(SourceKind.PRACTICE, _("all linear projections: QLoRA, Unsloth, LLaMA-Factory"))
    return p.pattern, cite, _("common LoRA practice: {why}").format(why=_(p.pattern_why))


def guide_pattern(g: Guide, task: Task | None) -> tuple[str, Citation, str]:
    """The task's pattern (with where its choice comes from), else the guide's recommended standard pattern."""
    if task is not None and task.pattern_cite is not None:
        cite = Citation(task.pattern_cite.kind, _("{task}: the '{pattern}' pattern").format(
            task=task.cite(), pattern=pattern_name(task.pattern)))
        return task.pattern, cite, _("{task}: {why}").format(task=task.cite(), why=_(task.pattern_cite.where))
    cite = Citation(SourceKind.GUIDE_TABLE, _("the guide's target-module section: the 'standard' pattern"))
    return "standard", cite, _("{source}, the one it recommends").format(source=cite.where)


def guide_epochs(g: Guide, task: Task | None) -> tuple[float, Citation, str]:
    """The epochs of the task's worked example (the task presets pass none), else lora-tui's default."""
    example = g.example_for(task.key if task else None)
    if example is not None and "num_train_epochs" in example.settings:
        epochs = example.settings["num_train_epochs"]
        cite = Citation(SourceKind.GUIDE_EXAMPLE, f"{example.cite()}: --epochs {fmt_value(epochs)}")
        return epochs, cite, _("{source} (the task preset passes no epochs)").format(source=cite.where)
    cite, epochs = cited(g.default_cites["num_train_epochs"]), g.defaults.settings["num_train_epochs"]
    return epochs, cite, f"{cite.where}: num_train_epochs = {fmt_value(epochs)}"
