"""The guide's troubleshooting, applied: symptoms seen in a run's metrics -> concrete setting changes.

- `remedies_for(key, plan)`: the guide's remedies for one of its symptoms, made concrete for a plan.
- `oom_remedies(plan)`: the out-of-memory remedies still applicable to a plan, in the guide's order, each as the
  exact settings to change (used by the memory fit loop, the runner's `oom` status and `--auto-oom-retry`).

Judging a run's metrics (when a symptom is called) lives in `lora_tui.core.symptoms`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lora_tui.core.models.modules import ModelInventory
from lora_tui.core.plan import TrainingPlan, flag_for, fmt_value
from lora_tui.core.sources import SourceKind
from lora_tui.core.tables import RemedyRule, guide
from lora_tui.i18n import _

MIN_OOM_RANK = 8
"""The rank the guide's out-of-memory remedy drops to."""


@dataclass(frozen=True)
class Remedy:
    """One concrete change to try."""

    key: str
    """Symptom key and remedy number, e.g. `oom.1`."""
    description: str
    """What the change is, with the values, e.g. `batch 2 -> 1, accumulation 8 -> 16`."""
    changes: dict[str, Any] = field(hash=False)
    """TrainingPlan field -> new value."""
    source: str
    """Where the advice comes from (the guide's troubleshooting section), in the current language."""
    why: str = ""
    """Why it helps, in the current language (the description says it after the changes)."""
    kind: SourceKind = SourceKind.GUIDE_REMEDY
    """The guide's troubleshooting, or current practice beyond it (`SourceKind.PRACTICE`)."""


@dataclass(frozen=True)
class Symptom:
    """A problem seen in a run, with its evidence and remedies."""

    key: str
    """loss_not_falling, overfitting, oom or slow_convergence."""
    title: str
    """Display name."""
    evidence: str
    """The numbers that triggered it."""
    remedies: tuple[Remedy, ...]
    """The guide's remedies for this plan, first to try first."""

    @property
    def changes(self) -> dict[str, Any]:
        """The first remedy's changes: what one key in the TUI applies."""
        return dict(self.remedies[0].changes) if self.remedies else {}


# ---- applying remedy rules to a plan --------------------------------------------------------------------


def _rank_change(plan: TrainingPlan, new_r: int) -> dict[str, Any]:
    """r -> new_r, with alpha following so that alpha/r (the scaling) stays the same."""
    ratio = plan.lora_alpha / plan.lora_r
    alpha = new_r * ratio
    return {"lora_r": new_r, "lora_alpha": int(alpha) if float(alpha).is_integer() else alpha}


def _apply_rule(rule: RemedyRule, plan: TrainingPlan, inventory: ModelInventory | None) -> dict[str, Any]:
    """The settings a rule changes for this plan; empty when it would change nothing."""
    current = getattr(plan, rule.setting)
    if rule.setting == "per_device_train_batch_size":
        new_batch = max(1, int(current * (rule.factor or 1)))
        if new_batch == current:
            return {}
        accum = math.ceil(plan.per_device_train_batch_size * plan.gradient_accumulation_steps / new_batch)
        return {"per_device_train_batch_size": new_batch, "gradient_accumulation_steps": accum}
    if rule.setting == "target_modules":
        wanted = list(rule.value)
        if inventory is not None and all(inventory.kind(n) is None for n in wanted):
            fused = [k.name for k in inventory.linears if k.group == "attention" and "qkv" in k.name]
            wanted = fused[:1] or wanted
        if current == ["all-linear"] or not set(current) <= set(wanted):
            return {"target_modules": wanted}
        return {}
    if rule.factor is not None:
        value: Any = current * rule.factor
        if rule.setting == "lora_r":
            value = max(1, int(round(value)))
            return _rank_change(plan, value) if value != current else {}
        if isinstance(current, int) and not isinstance(current, bool):
            value = max(1, int(round(value)))
        else:
            value = float(f"{value:.3g}")
        if rule.setting == "lora_dropout":
            value = min(value, 0.3) if current > 0 else 0.05
        return {rule.setting: value} if value != current else {}
    if rule.setting == "lora_r":
        new_r = int(rule.value)
        return _rank_change(plan, new_r) if plan.lora_r > new_r else {}
    if rule.setting == "warmup_ratio":
        return {"warmup_ratio": rule.value} if current > rule.value else {}
    return {rule.setting: rule.value} if current != rule.value else {}


def _describe(plan: TrainingPlan, changes: Mapping[str, Any]) -> str:
    return ", ".join(f"{flag_for(k)} {fmt_value(getattr(plan, k))} -> {fmt_value(v)}" for k, v in changes.items())


def remedies_for(key: str, plan: TrainingPlan, inventory: ModelInventory | None = None) -> list[Remedy]:
    """The guide's remedies for a symptom, made concrete for `plan` (their words in the current language); those
    that change nothing are left out."""
    trouble = guide().troubles[key]
    out = []
    for i, rule in enumerate(trouble.remedies, start=1):
        changes = _apply_rule(rule, plan, inventory)
        if changes:
            out.append(Remedy(
                key=f"{key}.{i}",
                description=described(plan, changes, rule),
                changes=changes,
                source=_("guide, troubleshooting: {title} (remedy {number}: {example})").format(
                    title=_(trouble.title), number=i, example=_(rule.example)),
                why=_(rule.why),
            ))
    return out


def described(plan: TrainingPlan, changes: Mapping[str, Any], rule: RemedyRule) -> str:
    """`--flag old -> new (why)`: a remedy's changes for `plan` and why it helps, in the current language."""
    return _("{changes} ({why})").format(changes=_describe(plan, changes), why=_(rule.why))


def oom_remedies(plan: TrainingPlan, inventory: ModelInventory | None = None) -> list[Remedy]:
    """Out-of-memory remedies still applicable, in the guide's order (batch, r 8, q/v only, checkpointing)."""
    return remedies_for("oom", plan, inventory)


def next_settings_after_oom(plan: TrainingPlan, inventory: ModelInventory | None = None) -> dict[str, Any] | None:
    """The settings for the next try after an out-of-memory error; None when every remedy is used up."""
    remedies = oom_remedies(plan, inventory)
    return dict(remedies[0].changes) if remedies else None
