"""The recommendation's memory-aware steps (core/memory_advice.py) through `recommend` and `resolve`."""

from __future__ import annotations

import pytest

from lora_tui.core.models.modules import check_targets, load_inventory
from lora_tui.core.recommend import recommend
from lora_tui.core.resolve import PlanInputs, resolve
from lora_tui.errors import UserError

GB = 10**9


def test_mistral_7b_domain_on_16gb_picks_4bit_and_keeps_the_guides_values() -> None:
    rec = recommend(task="domain", examples=5000, vram_bytes=16 * GB, inventory=load_inventory("mistral-7b-v0.3"),
                    loss="fused")
    assert rec.values["load_in_4bit"] is True
    assert rec.reasons["load_in_4bit"].startswith("on: does not fit in 16-bit; fits with --load-in-4bit at ")
    # no leftover cuts: r, the maximum pattern and batch 2 x 8 are the tables' values
    assert rec.values["lora_r"] == 16 and len(rec.values["target_modules"]) == 7
    assert (rec.values["per_device_train_batch_size"], rec.values["gradient_accumulation_steps"]) == (2, 8)
    assert [s["kind"] for s in rec.fit_steps] == ["tried", "four_bit"]
    assert rec.fit_steps[-1]["description"].startswith("does not fit in 16-bit; fits with --load-in-4bit at ")


def test_gradient_checkpointing_off_when_the_run_fits_with_headroom() -> None:
    inv = load_inventory("llama-3.2-1b")
    roomy = recommend(task="chat", examples=5000, vram_bytes=80 * GB, inventory=inv)
    assert roomy.values["gradient_checkpointing"] is False
    assert roomy.reasons["gradient_checkpointing"].startswith("off: without it the estimate is ")
    tight = recommend(task="chat", examples=5000, vram_bytes=6 * GB, inventory=inv)
    assert tight.values["gradient_checkpointing"] is True
    assert tight.reasons["gradient_checkpointing"].startswith("on: without it the estimate is ")
    assert recommend(task="chat", examples=5000).values["gradient_checkpointing"] is False  # no GPU known


@pytest.mark.parametrize("task", ["chat", "domain", "code", "style"])
@pytest.mark.parametrize("model", ["qwen3-30b-a3b", "mixtral-8x7b", "gpt-oss-20b"])
def test_moe_models_work_for_every_task(model: str, task: str) -> None:
    inv = load_inventory(model)
    rec = recommend(task=task, examples=5000, vram_bytes=80 * GB, inventory=inv)
    targets = rec.values["target_modules"]
    check_targets(inv, targets)  # what the launch check runs: names PEFT accepts
    from lora_tui.core.memory_advice import expert_parameters

    if expert_parameters(inv, targets):
        assert rec.values["lora_dropout"] == 0 and "target_parameters" in rec.reasons["lora_dropout"]
    else:
        assert rec.values["lora_dropout"] > 0
    assert "gate_up_proj" not in targets  # a fused 3-D weight is no module


def test_resolve_refuses_dropout_on_fused_experts_and_4bit_on_moe() -> None:
    inputs = PlanInputs(inventory=load_inventory("qwen3-30b-a3b"))
    with pytest.raises(UserError, match="cannot apply dropout"):
        resolve({"model": "qwen3-30b-a3b", "task": "domain", "lora_dropout": 0.1}, inputs)
    with pytest.raises(UserError, match="fused 3-D weights"):
        resolve({"model": "qwen3-30b-a3b", "load_in_4bit": True}, inputs)
    plan = resolve({"model": "qwen3-30b-a3b", "task": "domain"}, inputs).plan
    assert plan.lora_dropout == 0 and "gate_proj" in plan.target_modules
