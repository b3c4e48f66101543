"""Symptoms in a run's metrics -> the remedies for them, judged so that healthy runs stay silent.

`diagnose(metrics, status=..., plan=...)` is what the monitor shows and `lora-tui runs diagnose` prints. The
symptoms, checked in this order:

- non_finite: a NaN or inf loss or gradient norm (beyond the guide);
- diverging: after warmup, the smoothed loss climbs well above its best, or the gradient norm spikes (beyond
  the guide); when it is raised, "not falling" is not judged, so a rising loss never gets a higher learning rate;
- oom: the run stopped out of memory;
- overfitting: the evaluation loss rises over consecutive evaluations while the training loss falls, or the
  training loss collapses towards 0 (memorising);
- loss_not_falling / slow_convergence: after warmup, the fall since the start of the run is compared with the
  noise of the loss itself, so noisy healthy runs do not trip it.

A trend symptom is raised only when its condition holds at `confirm` consecutive logged steps, and cleared the
same way, so it does not flap. Every threshold lives in `Thresholds`. Remedies come from the guide's
troubleshooting (presets/guide.toml) and, labelled as beyond the guide (`Remedy.kind`), from presets/practice.toml.
Symptoms are only shown, never written to a run file, so their words are in the current language; JSON output
(`symptom_dict`) wants them made under `i18n.english()`.

Overfitting leads with early stopping (practice.toml's `[[first_remedies]]`): with the best checkpoint kept it
cannot make the adapter worse, it saves the epochs that only memorise, and it is the one remedy whose effect on
this run is known (stop near the best eval step), while the guide's dropout, learning-rate and rank changes alter
the fit and must be compared on a new run. It is offered only to a run without it, with an evaluation split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_tui.core.advice import Remedy, Symptom, _apply_rule, described, remedies_for
from lora_tui.core.models.inventory import ModelInventory
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import MetricsRecord
from lora_tui.core.runs import RunStatus
from lora_tui.core.sources import SourceKind
from lora_tui.core.tables import RemedyRule, guide, practice
from lora_tui.i18n import N_, _

KEYS = ("non_finite", "diverging", "oom", "overfitting", "loss_not_falling", "slow_convergence")
"""Every symptom key, in the order they are checked and shown."""


@dataclass(frozen=True)
class Thresholds:
    """When a symptom is called. Losses are compared as means over windows of logged steps."""

    min_points: int = 12
    """Logged training-loss points after warmup needed before judging a trend."""
    window_share: float = 0.2
    """A window covers this share of the points judged ..."""
    min_window: int = 5
    """... but at least this many points ..."""
    max_window: int = 50
    """... and at most this many."""
    noise_z: float = 2.0
    """Confidence margin in standard errors of the difference of two window means (of the loss's own noise)."""
    start_points: int = 10
    """Logged losses at the start of the run that give the untrained level."""
    flat_drop: float = 0.05
    """A fall since the start that is below this (5%) even with the noise margin added counts as 'not falling'."""
    slow_drop: float = 0.10
    """A relative fall below this (10%) once `slow_after` of the run is done counts as 'slow convergence'."""
    slow_after: float = 0.3
    """Fraction of the planned steps after which slow convergence is judged."""
    diverge_rise: float = 0.25
    """The smoothed loss this far (25%) above its best after warmup counts as diverging."""
    spike_factor: float = 10.0
    """Gradient norms this many times their median so far count as a spike ..."""
    spike_points: int = 3
    """... when the last this-many logged norms all are."""
    confirm: int = 3
    """Consecutive logged steps a trend condition must hold to be raised (and fail to be cleared)."""
    eval_rises: int = 2
    """Consecutive evaluation losses above the best one that count as overfitting ..."""
    eval_margin: float = 0.01
    """... when each is more than this (1%) above the best, while the training loss did not rise."""
    collapse_loss: float = 0.05
    """A smoothed training loss below this counts as memorising (overfitting)."""


THRESHOLDS = Thresholds()
"""The thresholds in force."""


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


class _LossTrend:
    """The training loss after warmup, with O(1) window means and noise for every prefix."""

    def __init__(self, metrics: Sequence[MetricsRecord], warmup_steps: float, t: Thresholds) -> None:
        all_losses = [(m.step, m.loss) for m in metrics if m.loss is not None and _finite(m.loss)]
        self.start = [v for _, v in all_losses[: t.start_points]]
        """The first logged losses: the untrained model's level."""
        points = [(s, float(v)) for s, v in all_losses if s > warmup_steps]
        self.steps = [s for s, _ in points]
        self.values = [v for _, v in points]
        self.t = t
        self._sum = [0.0]
        self._sq_diff = [0.0]
        for i, v in enumerate(self.values):
            self._sum.append(self._sum[-1] + v)
            d = v - self.values[i - 1] if i else 0.0
            self._sq_diff.append(self._sq_diff[-1] + d * d)

    def window(self, n: int) -> int:
        """Points per window for a prefix of n points."""
        t = self.t
        return max(t.min_window, min(t.max_window, int(n * t.window_share)))

    def mean(self, lo: int, hi: int) -> float:
        """Mean of values[lo:hi]."""
        return (self._sum[hi] - self._sum[lo]) / (hi - lo)

    def noise(self, n: int) -> float:
        """Per-point noise of the first n points, from successive differences (insensitive to the trend)."""
        return math.sqrt(self._sq_diff[n] / (2 * (n - 1))) if n > 1 else 0.0

    def fall(self, n: int) -> tuple[float, float, float, float] | None:
        """(start level, recent mean, relative fall, relative fall plus the noise margin) for the first n points,
        None when too few to judge."""
        if n < self.t.min_points or not self.start:
            return None
        w = self.window(n)
        first, last = _mean(self.start), self.mean(n - w, n)
        if first <= 0:
            return None
        margin = self.t.noise_z * self.noise(n) * math.sqrt(1 / w + 1 / len(self.start))
        return first, last, (first - last) / first, (first - last + margin) / first

    def rise(self, n: int) -> tuple[float, int, float] | None:
        """(best window mean, its last step, recent mean) when the recent mean is well above the best."""
        if n < self.t.min_points:
            return None
        w = self.window(n)
        best_end = min(range(w, n + 1), key=lambda end: self.mean(end - w, end))
        best, last = self.mean(best_end - w, best_end), self.mean(n - w, n)
        margin = max(best * self.t.diverge_rise, self.t.noise_z * self.noise(n) * math.sqrt(2 / w))
        return (best, self.steps[best_end - 1], last) if last - best > margin else None


def _confirmed(check: Callable[[int], bool], points: int, t: Thresholds) -> int | None:
    """The prefix length at which `check(n)` was last raised by the hysteresis (True `confirm` times in a row
    raises, False `confirm` times in a row clears), or None when it is not raised now. The last few dozen
    prefixes are replayed, which is enough for the streaks and keeps a long run's check cheap."""
    start = max(t.min_points, points - 8 * t.confirm)
    raised, streak, since = False, 0, None
    for n in range(start, points + 1):
        holds = check(n)
        streak = streak + 1 if holds != raised else 0
        if streak >= t.confirm:
            raised, streak, since = holds, 0, (n if holds else None)
    return since if raised else None


_NON_FINITE = {"loss": N_("loss {value} at step {step}: the update is no longer a number"),
               "grad norm": N_("grad norm {value} at step {step}: the update is no longer a number"),
               "eval loss": N_("eval loss {value} at step {step}: the update is no longer a number")}


def _non_finite(metrics: Sequence[MetricsRecord]) -> str | None:
    for m in metrics:
        for name, value in (("loss", m.loss), ("grad norm", m.grad_norm), ("eval loss", m.eval_loss)):
            if value is not None and not math.isfinite(value):
                return _(_NON_FINITE[name]).format(value=value, step=m.step)
    return None


def _grad_spike(metrics: Sequence[MetricsRecord], t: Thresholds) -> str | None:
    norms = [(m.step, m.grad_norm) for m in metrics if m.grad_norm is not None and _finite(m.grad_norm)]
    if len(norms) < t.min_points + t.spike_points:
        return None
    before = sorted(v for _, v in norms[: -t.spike_points])
    median = before[len(before) // 2]
    recent = norms[-t.spike_points:]
    if median > 0 and all(v > t.spike_factor * median for _, v in recent):
        return _("gradient norm {norm} at step {step}, over {factor}x its median {median} for the last {points} "
                 "logged steps").format(norm=f"{recent[-1][1]:.3g}", step=recent[-1][0], factor=f"{t.spike_factor:g}",
                                        median=f"{median:.3g}", points=t.spike_points)
    return None


def _overfitting(metrics: Sequence[MetricsRecord], trend: _LossTrend, t: Thresholds) -> str | None:
    evals = [(m.step, float(m.eval_loss)) for m in metrics if m.eval_loss is not None and _finite(m.eval_loss)]
    if len(evals) >= t.eval_rises + 1:
        best_i = min(range(len(evals)), key=lambda i: evals[i][1])
        best_step, best = evals[best_i]
        after = evals[best_i + 1:]
        recent = after[-t.eval_rises:]
        if len(after) >= t.eval_rises and all(v > best * (1 + t.eval_margin) for _, v in recent):
            train = [(s, v) for s, v in zip(trend.steps, trend.values, strict=True)]
            before = [v for s, v in train if s <= best_step][-t.min_window:]
            since = [v for s, v in train if s > best_step][-t.min_window:]
            if before and since and _mean(since) <= _mean(before):
                return _("eval loss rose from its best {best} (step {best_step}) to {last} (step {step}) while the "
                         "training loss fell from {before} to {since}").format(
                             best=f"{best:.4f}", best_step=best_step, last=f"{recent[-1][1]:.4f}",
                             step=recent[-1][0], before=f"{_mean(before):.4f}", since=f"{_mean(since):.4f}")
    n = len(trend.values)
    if n >= t.min_points and trend.mean(n - trend.window(n), n) < t.collapse_loss:
        return _("training loss {loss} near 0 at step {step}: the adapter is memorising the examples").format(
            loss=f"{trend.mean(n - trend.window(n), n):.4f}", step=trend.steps[-1])
    return None


def diagnose(metrics: Sequence[MetricsRecord], *, status: RunStatus | None = None, plan: TrainingPlan | None = None,
             inventory: ModelInventory | None = None, thresholds: Thresholds = THRESHOLDS) -> list[Symptom]:
    """The symptoms visible in a run so far (each at most once, in `KEYS` order), with evidence and remedies."""
    plan = plan or TrainingPlan()
    t = thresholds
    planned = status.max_steps if status is not None and status.max_steps else None
    trend = _LossTrend(metrics, plan.warmup_ratio * planned if planned else 0, t)
    found: dict[str, str] = {}
    bad = _non_finite(metrics)
    if bad:
        found["non_finite"] = bad
    n = len(trend.values)
    if _confirmed(lambda k: trend.rise(k) is not None, n, t) is not None and (rise := trend.rise(n)):
        best, best_step, last = rise
        found["diverging"] = _("smoothed loss {loss} at step {step}, up from its best {best} (step {best_step})"
                               ).format(loss=f"{last:.4f}", step=trend.steps[-1], best=f"{best:.4f}",
                                        best_step=best_step)
    elif spike := _grad_spike(metrics, t):
        found["diverging"] = spike
    if status is not None and (status.state == "oom" or "out of memory" in (status.error or "").lower()):
        found["oom"] = status.error or _("the run stopped with an out-of-memory error")
    if overfit := _overfitting(metrics, trend, t):
        found["overfitting"] = overfit
    if "diverging" not in found and "overfitting" not in found and "non_finite" not in found:
        found.update(_trend_symptoms(trend, planned, t))
    return [_symptom(key, found[key], plan, inventory) for key in KEYS if key in found]


def _trend_symptoms(trend: _LossTrend, planned: int | None, t: Thresholds) -> dict[str, str]:
    """loss_not_falling or slow_convergence, confirmed over consecutive steps."""
    n = len(trend.values)

    def flat(k: int) -> bool:  # confidently less than flat_drop
        fall = trend.fall(k)
        return fall is not None and fall[3] < t.flat_drop

    def slow(k: int) -> bool:  # confidently less than slow_drop, once slow_after of the run is done
        fall = trend.fall(k)
        done = trend.steps[k - 1] / planned if planned else 0
        return fall is not None and not flat(k) and fall[3] < t.slow_drop and done >= t.slow_after

    now = trend.fall(n)
    if now is None:
        return {}
    first, last, rel, _upper = now
    span = {"last": f"{last:.4f}", "window": trend.window(n), "step": trend.steps[-1], "first": f"{first:.4f}",
            "noise": f"{trend.noise(n):.3g}"}
    if _confirmed(flat, n, t) is not None:
        return {"loss_not_falling": _(
            "mean loss {last} over the last {window} logged steps (to step {step}) vs {first} at the start; noise "
            "{noise} per step: {change}, under the {drop} that counts as falling even with the noise margin").format(
                **span, change=f"{rel:+.1%}", drop=f"{t.flat_drop:.0%}")}
    if planned and _confirmed(slow, n, t) is not None:
        done = trend.steps[-1] / planned
        return {"slow_convergence": _(
            "mean loss {last} over the last {window} logged steps (to step {step}) vs {first} at the start; noise "
            "{noise} per step: only {change} lower after {done} of the planned {planned} steps (under {drop})").format(
                **span, change=f"{rel:.1%}", done=f"{done:.0%}", planned=planned, drop=f"{t.slow_drop:.0%}")}
    return {}


def _early_stopping(changes: dict[str, Any], plan: TrainingPlan) -> dict[str, Any]:
    """Early stopping is offered only to a run without it (one that has it keeps its own patience), with the
    evaluation split it watches: the advisor's share of the data when the run held none out."""
    from lora_tui.core.data_rules import EVAL_SHARE

    if not changes or plan.early_stopping > 0:
        return {}
    return changes if plan.eval_split > 0 else {**changes, "eval_split": EVAL_SHARE}


def _beyond(key: str, rules: Sequence[RemedyRule], plan: TrainingPlan, inventory: ModelInventory | None
            ) -> list[Remedy]:
    out = []
    for i, rule in enumerate(rules, start=1):
        changes = _apply_rule(rule, plan, inventory)
        if rule.setting == "early_stopping":
            changes = _early_stopping(changes, plan)
        if changes:
            out.append(Remedy(key=f"{key}.practice{i}", description=described(plan, changes, rule), changes=changes,
                              source=_("beyond the guide: current LoRA practice ({example})").format(
                                  example=_(rule.example)), why=_(rule.why), kind=SourceKind.PRACTICE))
    return out


def remedies(key: str, plan: TrainingPlan, inventory: ModelInventory | None = None) -> list[Remedy]:
    """Every remedy for a symptom, first to try first: beyond-the-guide ones that lead, then the guide's own
    (or, for a symptom the guide does not list, practice's), each saying where it comes from."""
    extra = practice()
    if key in extra.troubles:
        return _beyond(key, extra.troubles[key].remedies, plan, inventory)
    return _beyond(key, extra.first.get(key, ()), plan, inventory) + remedies_for(key, plan, inventory)


def is_beyond_the_guide(remedy: Remedy) -> bool:
    """True for a remedy from current practice rather than the guide's troubleshooting (its typed kind, so in
    every language)."""
    return remedy.kind is SourceKind.PRACTICE


def remedy_reason(remedy: Remedy, plan: TrainingPlan) -> str:
    """Why a remedy helps, without the changes (the description names them as `lora-tui train` flags), for a
    screen that names the changes in its own words; in the language the remedy was made in."""
    return remedy.why


def _title(key: str) -> str:
    troubles = {**guide().troubles, **practice().troubles}
    return _(troubles[key].title)


def _symptom(key: str, evidence: str, plan: TrainingPlan, inventory: ModelInventory | None) -> Symptom:
    return Symptom(key, _title(key), evidence, tuple(remedies(key, plan, inventory)))


def diagnose_run(run_dir: Path) -> list[Symptom]:
    """`diagnose` over a run directory as it is now (live or finished): its one metrics history, its status and
    the plan in its run.toml (the defaults when that is unreadable)."""
    from lora_tui.core import run_files, runs
    from lora_tui.core.plan import read_run_plan

    records, _errors = run_files.read_metrics(run_dir)
    plan = read_run_plan(run_dir / runs.RUN_FILE) or TrainingPlan()
    return diagnose(records, status=runs.read_status(run_dir), plan=plan)


def symptom_dict(symptom: Symptom) -> dict[str, Any]:
    """The JSON form `lora-tui runs diagnose --json` prints."""
    return {"key": symptom.key, "title": symptom.title, "evidence": symptom.evidence,
            "remedies": [{"description": r.description, "changes": r.changes, "source": r.source}
                         for r in symptom.remedies]}
