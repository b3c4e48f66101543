"""The guide's troubleshooting made concrete: OOM remedies and each symptom's remedies for a plan."""

from __future__ import annotations

import pytest

from lora_tui.core.advice import next_settings_after_oom, oom_remedies, remedies_for
from lora_tui.core.plan import TrainingPlan


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
