"""The guide's troubleshooting, applied: symptoms seen in a run's metrics -> concrete setting changes.

Two entry points:
- `oom_remedies(plan)`: the out-of-memory remedies still applicable to a plan, in the guide's order, each as the
  exact settings to change (used by the memory fit loop, the runner's `oom` status and `--auto-oom-retry`).
- `diagnose(metrics, status=..., plan=...)`: the four symptoms (loss not falling, overfitting, out of memory,
  slow convergence) with the numbers that triggered them and the guide's remedies for this plan.

All thresholds live in `Thresholds` (one documented place); tests run recorded metric streams against them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lora_tui.core.models.modules import ModelInventory
from lora_tui.core.plan import TrainingPlan, flag_for, fmt_value
from lora_tui.core.run_files import MetricsRecord
from lora_tui.core.runs import RunStatus
from lora_tui.core.tables import RemedyRule, guide

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
    """Where the advice comes from (the guide's troubleshooting section)."""


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


@dataclass(frozen=True)
class Thresholds:
    """When the monitor calls a symptom. Losses are compared as means over windows of logged steps."""

    min_points: int = 12
    """Logged training-loss points needed before judging the loss trend."""
    window: int = 5
    """Points averaged at each end of the loss series (smooths step-to-step noise)."""
    flat_drop: float = 0.02
    """A relative fall below this (2%) since the start counts as 'not falling'."""
    slow_drop: float = 0.10
    """A relative fall below this (10%) once `slow_after` of the run is done counts as 'slow convergence'."""
    slow_after: float = 0.3
    """Fraction of the planned steps after which slow convergence is judged."""
    eval_rises: int = 2
    """Consecutive evaluation losses above the best one that count as overfitting ..."""
    eval_margin: float = 0.01
    """... when each is more than this (1%) above the best ..."""
    train_fall_during_rise: float = 0.0
    """... while the training loss over the same span did not rise (fell by at least this fraction)."""


THRESHOLDS = Thresholds()
"""The thresholds in force."""


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
    """The guide's remedies for a symptom, made concrete for `plan`; those that change nothing are left out."""
    trouble = guide().troubles[key]
    out = []
    for i, rule in enumerate(trouble.remedies, start=1):
        changes = _apply_rule(rule, plan, inventory)
        if changes:
            out.append(Remedy(
                key=f"{key}.{i}",
                description=f"{_describe(plan, changes)} ({rule.why})",
                changes=changes,
                source=f"guide, troubleshooting: {trouble.title} (remedy {i}: {rule.example})",
            ))
    return out


def oom_remedies(plan: TrainingPlan, inventory: ModelInventory | None = None) -> list[Remedy]:
    """Out-of-memory remedies still applicable, in the guide's order (batch, r 8, q/v only, checkpointing)."""
    return remedies_for("oom", plan, inventory)


def next_settings_after_oom(plan: TrainingPlan, inventory: ModelInventory | None = None) -> dict[str, Any] | None:
    """The settings for the next try after an out-of-memory error; None when every remedy is used up."""
    remedies = oom_remedies(plan, inventory)
    return dict(remedies[0].changes) if remedies else None


# ---- symptoms -------------------------------------------------------------------------------------------


def _series(points: Iterable[tuple[int, float | None]]) -> list[tuple[int, float]]:
    """(step, value) pairs with a finite value, in order."""
    return [(step, value) for step, value in points if value is not None and math.isfinite(value)]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _loss_trend(losses: list[tuple[int, float]], t: Thresholds) -> tuple[float, float, float] | None:
    """(start mean, recent mean, relative fall) over the loss series, or None if too short to judge."""
    if len(losses) < t.min_points:
        return None
    first = _mean([v for _, v in losses[: t.window]])
    last = _mean([v for _, v in losses[-t.window:]])
    if first <= 0:
        return None
    return first, last, (first - last) / first


def _overfitting(metrics: Sequence[MetricsRecord], t: Thresholds) -> str | None:
    evals = _series((m.step, m.eval_loss) for m in metrics)
    if len(evals) < t.eval_rises + 1:
        return None
    best_i = min(range(len(evals)), key=lambda i: evals[i][1])
    after = evals[best_i + 1:]
    best_step, best = evals[best_i]
    rising = [(s, v) for s, v in after if v > best * (1 + t.eval_margin)]
    if len(after) < t.eval_rises or len(rising) < t.eval_rises or after[-t.eval_rises:] != rising[-t.eval_rises:]:
        return None
    train = _series((m.step, m.loss) for m in metrics)
    before = [v for s, v in train if s <= best_step][-t.window:]
    since = [v for s, v in train if s > best_step][-t.window:]
    if not before or not since or _mean(since) > _mean(before) * (1 - t.train_fall_during_rise):
        return None
    last_step, last = after[-1]
    return (f"eval loss rose from its best {best:.4f} (step {best_step}) to {last:.4f} (step {last_step}) "
            f"while the training loss fell from {_mean(before):.4f} to {_mean(since):.4f}")


def diagnose(
    metrics: Sequence[MetricsRecord],
    *,
    status: RunStatus | None = None,
    plan: TrainingPlan | None = None,
    inventory: ModelInventory | None = None,
    thresholds: Thresholds = THRESHOLDS,
) -> list[Symptom]:
    """The symptoms visible in a run so far (each at most once), with evidence and remedies for `plan`."""
    plan = plan or TrainingPlan()
    t = thresholds
    found: list[Symptom] = []

    def add(key: str, evidence: str) -> None:
        found.append(Symptom(key, guide().troubles[key].title, evidence, tuple(remedies_for(key, plan, inventory))))

    if status is not None and (status.state == "oom" or "out of memory" in (status.error or "").lower()):
        add("oom", status.error or "the run stopped with an out-of-memory error")
    overfit = _overfitting(metrics, t)
    if overfit:
        add("overfitting", overfit)
    losses = _series((m.step, m.loss) for m in metrics)
    trend = _loss_trend(losses, t)
    if trend is not None and not overfit:
        first, last, fall = trend
        span = f"mean loss {first:.4f} over steps {losses[0][0]}-{losses[t.window - 1][0]} vs {last:.4f} " \
               f"over steps {losses[-t.window][0]}-{losses[-1][0]}"
        planned = status.max_steps if status is not None and status.max_steps else None
        done = losses[-1][0] / planned if planned else None
        if fall < t.flat_drop:
            add("loss_not_falling", f"{span}: {fall:+.1%}, under the {t.flat_drop:.0%} that counts as falling")
        elif fall < t.slow_drop and done is not None and done >= t.slow_after:
            add("slow_convergence", f"{span}: only {fall:.1%} lower after {done:.0%} of the planned "
                                    f"{planned} steps (under {t.slow_drop:.0%})")
    return found
