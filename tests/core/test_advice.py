"""The guide's troubleshooting made concrete: OOM remedies and symptoms on recorded metric streams."""

from __future__ import annotations

import math

import pytest

from lora_tui.core.advice import THRESHOLDS, diagnose, next_settings_after_oom, oom_remedies, remedies_for
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import MetricsRecord
from lora_tui.core.runs import RunStatus


def _apply(plan: TrainingPlan, changes: dict) -> TrainingPlan:
    return TrainingPlan(**{**plan.to_dict(), **changes})


def test_oom_remedies_in_the_guides_order() -> None:
    plan = TrainingPlan(per_device_train_batch_size=2, gradient_accumulation_steps=8, lora_r=16, lora_alpha=32,
                        gradient_checkpointing=False)
    steps = [r.changes for r in oom_remedies(plan)]
    assert steps == [
        {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 16},
        {"lora_r": 8, "lora_alpha": 16},
        {"target_modules": ["q_proj", "v_proj"]},
        {"gradient_checkpointing": True},
    ]


def test_oom_loop_keeps_effective_batch_and_ends() -> None:
    plan = TrainingPlan(per_device_train_batch_size=4, gradient_accumulation_steps=4, lora_r=32, lora_alpha=64,
                        target_modules=["all-linear"], gradient_checkpointing=False)
    seen = []
    while (nxt := next_settings_after_oom(plan)) is not None:
        seen.append(nxt)
        plan = _apply(plan, nxt)
        assert plan.effective_batch_size == 16
    assert seen[0] == {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 8}
    assert seen[1] == {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 16}
    assert plan.lora_r == 8 and plan.lora_alpha == 16 and plan.target_modules == ["q_proj", "v_proj"]
    assert plan.gradient_checkpointing is True
    assert oom_remedies(plan) == []


def test_oom_remedies_describe_values_and_cite_guide() -> None:
    first = oom_remedies(TrainingPlan())[0]
    assert first.description.startswith("--batch-size 2 -> 1, --gradient-accumulation-steps 8 -> 16")
    assert "Out of memory" in first.source


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("loss_not_falling", [{"learning_rate": 1e-4}, {"lora_alpha": 64}, {"lora_r": 32, "lora_alpha": 64}]),
        ("overfitting", [{"lora_dropout": 0.1}, {"learning_rate": 3e-5}, {"lora_r": 8, "lora_alpha": 16}]),
        ("slow_convergence", [{"weight_decay": 0.01}, {"lora_r": 32, "lora_alpha": 64}]),
    ],
)
def test_symptom_remedies_match_the_guides_examples(key: str, expected: list[dict]) -> None:
    # From the guide's defaults (lr 5e-5, alpha 32, r 16, dropout 0.05), each remedy reproduces its example.
    # Warmup is already 0.1 in lora-tui, so the slow-convergence warmup remedy has nothing left to change.
    assert [r.changes for r in remedies_for(key, TrainingPlan())] == expected


def test_warmup_remedy_applies_to_the_guides_script_default() -> None:
    changes = [r.changes for r in remedies_for("slow_convergence", TrainingPlan(warmup_ratio=0.3))]
    assert changes[0] == {"warmup_ratio": 0.1}


def _stream(losses: list[float], evals: dict[int, float] | None = None) -> list[MetricsRecord]:
    """Training-loss lines for steps 1..n and evaluation-only lines at the given steps, as the trainer logs them."""
    out = [MetricsRecord(step=i + 1, loss=v) for i, v in enumerate(losses)]
    out += [MetricsRecord(step=step, eval_loss=value) for step, value in (evals or {}).items()]
    return sorted(out, key=lambda m: m.step)


def test_flat_loss_is_not_falling() -> None:
    losses = [2.30 + 0.01 * math.sin(i) for i in range(30)]
    found = diagnose(_stream(losses))
    assert [s.key for s in found] == ["loss_not_falling"]
    assert "under the 2% that counts as falling" in found[0].evidence
    assert found[0].changes == {"learning_rate": 1e-4}


def test_falling_loss_is_healthy() -> None:
    losses = [3.0 * (0.95**i) for i in range(40)]
    assert diagnose(_stream(losses), status=RunStatus(state="running", max_steps=100)) == []


def test_too_few_points_are_not_judged() -> None:
    assert diagnose(_stream([2.3] * (THRESHOLDS.min_points - 1))) == []


def test_slow_convergence_after_a_third_of_the_run() -> None:
    losses = [2.0 - 0.004 * i for i in range(40)]  # about 8% lower after 40 of 100 steps
    status = RunStatus(state="running", max_steps=100)
    found = diagnose(_stream(losses), status=status, plan=TrainingPlan(warmup_ratio=0.3))
    assert [s.key for s in found] == ["slow_convergence"]
    assert "after 40% of the planned 100 steps" in found[0].evidence
    assert found[0].changes == {"warmup_ratio": 0.1}
    # the same curve early in the run is not judged yet
    assert diagnose(_stream(losses[:20]), status=RunStatus(state="running", max_steps=100)) == []


def test_overfitting_from_eval_loss() -> None:
    losses = [2.5 - 0.05 * i for i in range(40)]
    evals = {10: 2.1, 20: 1.9, 30: 2.0, 40: 2.2}
    found = diagnose(_stream(losses, evals))
    assert [s.key for s in found] == ["overfitting"]
    assert "eval loss rose from its best 1.9000 (step 20) to 2.2000 (step 40)" in found[0].evidence
    assert found[0].changes == {"lora_dropout": 0.1}


def test_non_finite_losses_are_left_out_of_the_judgement() -> None:
    losses = [2.30 + 0.01 * math.sin(i) for i in range(30)]
    noisy = _stream(losses) + [MetricsRecord(step=31, loss=math.nan), MetricsRecord(step=32, loss=math.inf)]
    found = diagnose(noisy)
    assert [s.key for s in found] == ["loss_not_falling"] and "over steps 26-30" in found[0].evidence


def test_one_eval_bump_is_not_overfitting() -> None:
    losses = [2.5 - 0.05 * i for i in range(40)]
    assert diagnose(_stream(losses, {10: 2.1, 20: 1.9, 30: 2.0, 40: 1.8})) == []


def test_oom_from_status() -> None:
    status = RunStatus(state="oom", error="CUDA out of memory. Tried to allocate 2.00 GiB")
    found = diagnose([], status=status, plan=TrainingPlan(per_device_train_batch_size=4,
                                                          gradient_accumulation_steps=4))
    assert found[0].key == "oom" and "Tried to allocate" in found[0].evidence
    assert found[0].changes == {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 8}
