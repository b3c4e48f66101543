"""Symptoms on metric streams replayed step by step: healthy runs stay silent, each bad stream raises its symptom
(and only it) by a stated step and keeps it."""

from __future__ import annotations

import math
import random

import pytest

from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import MetricsRecord
from lora_tui.core.runs import RunStatus
from lora_tui.core.symptoms import THRESHOLDS, diagnose, remedies


def _stream(losses: list[float], evals: dict[int, float] | None = None,
            grad_norms: list[float] | None = None) -> list[MetricsRecord]:
    """Training-loss lines for steps 1..n and evaluation-only lines at the given steps, as the trainer logs them."""
    out = [MetricsRecord(step=i + 1, loss=v, grad_norm=grad_norms[i] if grad_norms else None)
           for i, v in enumerate(losses)]
    out += [MetricsRecord(step=step, eval_loss=value) for step, value in (evals or {}).items()]
    return sorted(out, key=lambda m: m.step)


def healthy(steps: int, *, start: float = 2.2, end: float = 1.5, noise: float = 0.06, seed: int = 0) -> list[float]:
    """A healthy run: flat through the first half of warmup, then an exponential fall, multiplicative noise."""
    rng = random.Random(seed)
    warm = 0.1 * steps
    return [(end + (start - end) * math.exp(-max(0.0, s - warm / 2) / (steps / 4))) * (1 + rng.gauss(0, noise))
            for s in range(1, steps + 1)]


def replay(losses: list[float], steps: int, *, evals: dict[int, float] | None = None,
           grad_norms: list[float] | None = None, plan: TrainingPlan | None = None) -> list[tuple[int, list[str]]]:
    """The symptom keys after each logged step, as the monitor sees them while the run goes on."""
    out = []
    for n in range(1, len(losses) + 1):
        seen = _stream(losses[:n], {s: v for s, v in (evals or {}).items() if s <= n},
                       grad_norms[:n] if grad_norms else None)
        out.append((n, [s.key for s in diagnose(seen, status=RunStatus(state="running", max_steps=steps),
                                                 plan=plan or TrainingPlan())]))
    return out


@pytest.mark.parametrize(("steps", "noise", "seed"), [(60, 0.03, 1), (200, 0.06, 2), (938, 0.06, 3)])
def test_healthy_runs_raise_nothing_at_any_step(steps: int, noise: float, seed: int) -> None:
    losses = healthy(steps, noise=noise, seed=seed)
    raised = [(n, keys) for n, keys in replay(losses, steps) if keys]
    assert raised == []


def test_flat_loss_is_not_falling_after_warmup_and_stays_raised() -> None:
    rng = random.Random(4)
    losses = [2.3 * (1 + rng.gauss(0, 0.02)) for _ in range(100)]
    history = replay(losses, 100)
    first = next(n for n, keys in history if keys)
    assert dict(history)[first] == ["loss_not_falling"]
    assert 10 < first <= 10 + THRESHOLDS.min_points + THRESHOLDS.confirm  # judged only after the 10% warmup
    assert all(keys == ["loss_not_falling"] for n, keys in history if n >= first)
    symptom = diagnose(_stream(losses), status=RunStatus(state="running", max_steps=100))[0]
    assert "under the 5% that counts as falling" in symptom.evidence
    assert symptom.changes == {"learning_rate": 1e-4}
    assert symptom.remedies[0].source.startswith("guide, troubleshooting")


def test_a_diverging_loss_is_diverging_and_never_gets_a_higher_learning_rate() -> None:
    rng = random.Random(5)
    losses = [2.2 - 0.6 * i / 40 for i in range(40)] + [1.6 + 6.4 * i / 40 for i in range(40)]
    losses = [v * (1 + rng.gauss(0, 0.02)) for v in losses]
    history = replay(losses, 200)
    first = next(n for n, keys in history if keys)
    assert dict(history)[first] == ["diverging"] and first <= 60
    assert all(keys == ["diverging"] for n, keys in history if n >= first)
    symptom = diagnose(_stream(losses), status=RunStatus(state="running", max_steps=200))[0]
    assert symptom.changes == {"learning_rate": 2.5e-5}  # halved, never raised
    assert symptom.remedies[0].source.startswith("beyond the guide")


def test_a_gradient_spike_is_diverging() -> None:
    losses = healthy(100, noise=0.01)
    norms = [0.8] * 90 + [40.0] * 10
    found = diagnose(_stream(losses, grad_norms=norms), status=RunStatus(state="running", max_steps=100))
    assert [s.key for s in found] == ["diverging"] and "over 10x its median 0.8" in found[0].evidence


def test_nan_is_non_finite_at_once_and_says_where() -> None:
    losses = healthy(50, noise=0.01) + [math.nan, math.nan]
    found = diagnose(_stream(losses), plan=TrainingPlan(precision="fp16"))
    assert [s.key for s in found] == ["non_finite"]
    assert found[0].evidence.startswith("loss nan at step 51")
    assert found[0].changes == {"precision": "fp32"}


def test_overfitting_from_eval_loss() -> None:
    losses = [2.5 - 0.02 * i for i in range(80)]
    evals = {10: 2.1, 20: 1.9, 30: 2.0, 40: 2.2}
    found = diagnose(_stream(losses, evals))
    assert [s.key for s in found] == ["overfitting"]
    assert "eval loss rose from its best 1.9000 (step 20) to 2.2000 (step 40)" in found[0].evidence
    # early stopping leads (beyond the guide), with the evaluation split it needs; then the guide's own
    assert found[0].changes == {"early_stopping": 3, "eval_split": 0.05}
    assert found[0].remedies[0].source.startswith("beyond the guide")
    assert [r.changes for r in found[0].remedies[1:]] == [{"lora_dropout": 0.1}, {"learning_rate": 3e-5},
                                                          {"lora_r": 8, "lora_alpha": 16}]


@pytest.mark.parametrize(("plan", "first"), [
    (TrainingPlan(eval_split=0.1), {"early_stopping": 3}),  # the run's own split is kept
    (TrainingPlan(eval_split=0.1, early_stopping=5), {"lora_dropout": 0.1}),  # it has early stopping: not again
])
def test_the_early_stopping_remedy_fits_the_plan(plan: TrainingPlan, first: dict[str, object]) -> None:
    found = remedies("overfitting", plan)
    assert found[0].changes == first
    assert all("early_stopping" not in r.changes for r in found[1:])


def test_the_early_stopping_remedy_makes_a_valid_plan_and_says_why() -> None:
    from lora_tui.core.symptoms import remedy_reason

    plan = TrainingPlan()
    remedy = remedies("overfitting", plan)[0]
    changed = TrainingPlan.from_dict({**plan.to_dict(), **remedy.changes})  # validates: early stopping has a split
    assert (changed.early_stopping, changed.eval_split) == (3, 0.05) and isinstance(changed.early_stopping, int)
    assert remedy.description.startswith("--early-stopping 0 -> 3, --eval-split 0 -> 0.05 (")  # the CLI's flags
    assert remedy_reason(remedy, plan).startswith("Stop once the eval loss has not improved for 3 evaluations")


def test_one_eval_bump_is_not_overfitting() -> None:
    losses = [2.5 - 0.02 * i for i in range(80)]
    assert diagnose(_stream(losses, {10: 2.1, 20: 1.9, 30: 2.0, 40: 1.8})) == []


def test_a_training_loss_collapsing_to_zero_is_overfitting() -> None:
    losses = [2.0 * 0.85**i for i in range(60)]
    found = diagnose(_stream(losses), status=RunStatus(state="running", max_steps=60))
    assert [s.key for s in found] == ["overfitting"] and "memorising" in found[0].evidence


def test_slow_convergence_leads_with_a_higher_learning_rate_beyond_the_guide() -> None:
    rng = random.Random(6)
    losses = [(2.0 - 0.0035 * i) * (1 + rng.gauss(0, 0.005)) for i in range(50)]  # about 8% after half the run
    status = RunStatus(state="running", max_steps=100)
    found = diagnose(_stream(losses), status=status, plan=TrainingPlan(warmup_ratio=0.3))
    assert [s.key for s in found] == ["slow_convergence"]
    assert "after 50% of the planned 100 steps" in found[0].evidence
    first, second = found[0].remedies[:2]
    assert first.changes == {"learning_rate": 1e-4} and first.source.startswith("beyond the guide")
    assert second.changes == {"warmup_ratio": 0.1} and second.source.startswith("guide, troubleshooting")
    # the same curve early in the run is not judged yet
    assert diagnose(_stream(losses[:25]), status=status, plan=TrainingPlan(warmup_ratio=0.3)) == []


def test_too_few_points_are_not_judged() -> None:
    assert diagnose(_stream([2.3] * (THRESHOLDS.min_points - 1))) == []


def test_oom_from_status() -> None:
    status = RunStatus(state="oom", error="CUDA out of memory. Tried to allocate 2.00 GiB")
    found = diagnose([], status=status, plan=TrainingPlan(per_device_train_batch_size=4,
                                                          gradient_accumulation_steps=4))
    assert found[0].key == "oom" and "Tried to allocate" in found[0].evidence
    assert found[0].changes == {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 8}


def test_every_remedy_says_whether_it_is_the_guides() -> None:
    for key in ("loss_not_falling", "overfitting", "oom", "slow_convergence", "diverging", "non_finite"):
        for remedy in remedies(key, TrainingPlan(precision="fp16", warmup_ratio=0.3)):
            assert remedy.source.startswith(("guide, troubleshooting", "beyond the guide")), remedy
