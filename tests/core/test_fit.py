"""The fit loop (core/fit.py): the guide's remedies that are needed and no more, a shorter sequence where it saves
more than a capacity cut, the cuts undone when 16-bit cannot fit, and 4-bit loading offered as a real option."""

from __future__ import annotations

import pytest

from lora_tui.core.fit import fit_to_vram, shorter_sequence
from lora_tui.core.memory import GIB, plan_estimate
from lora_tui.core.models.modules import LinearKind, ModelInventory, load_inventory
from lora_tui.core.plan import TrainingPlan
from tests.helpers.memory_models import GEMMA_3_1B

ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _plan(**kw: object) -> TrainingPlan:
    base = {"model": "gemma-3-1b-it", "lora_r": 16, "lora_alpha": 32, "target_modules": ALL7,
            "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4, "max_seq_length": 2048,
            "gradient_checkpointing": False}
    return TrainingPlan(**{**base, **kw})  # type: ignore[arg-type]


class Stats:
    """Token statistics of a dataset, as the fit loop reads them."""

    def __init__(self, p95: int, median: int) -> None:
        self.p95, self.median = p95, median


def test_already_fitting_plan_has_no_steps() -> None:
    assert fit_to_vram(GEMMA_3_1B, _plan(per_device_train_batch_size=1, gradient_checkpointing=True,
                                         max_seq_length=512), 80 * GIB) == []


def test_batch_is_halved_only_as_far_as_needed() -> None:
    # fused loss: batch 4 x 2048 without checkpointing is 23.6 GiB; batch 1 fits 16 GiB (batch 2 would not)
    steps = fit_to_vram(GEMMA_3_1B, _plan(), 16 * GIB, loss="fused")
    assert [s.changes for s in steps] == [{"per_device_train_batch_size": 1, "gradient_accumulation_steps": 16}]
    assert steps[0].estimate.verdict == "fits" and steps[0].kind == "remedy"
    assert "--batch-size 4 -> 1, --gradient-accumulation-steps 4 -> 16" in steps[0].description
    # at 24 GiB batch 2 is enough: the halving stops there
    assert fit_to_vram(GEMMA_3_1B, _plan(), 24 * GIB, loss="fused")[0].changes == {
        "per_device_train_batch_size": 2, "gradient_accumulation_steps": 8}


def test_shorter_sequence_comes_before_a_capacity_cut_when_it_saves_more() -> None:
    steps = fit_to_vram(GEMMA_3_1B, _plan(), 8 * GIB, loss="fused")
    assert [s.kind for s in steps] == ["remedy", "sequence"]
    assert steps[1].changes == {"max_seq_length": 1024}
    assert "beyond the guide" in steps[1].description and "no token statistics" in steps[1].description
    assert steps[-1].estimate.verdict == "fits"


def test_sequence_from_the_data_lengths() -> None:
    plan = _plan(max_seq_length=2048)
    assert shorter_sequence(plan, Stats(p95=300, median=120)).changes == {"max_seq_length": 512}
    median = shorter_sequence(plan, Stats(p95=2000, median=600))
    assert median.changes == {"max_seq_length": 1024} and "median is 600" in median.why
    assert shorter_sequence(plan, Stats(p95=2000, median=1900)) is None
    assert shorter_sequence(_plan(max_seq_length=200), None) is None


def test_cuts_not_needed_for_the_fit_are_undone() -> None:
    # the loop cuts r to 8 and targets to q/v on the way; once checkpointing makes it fit, r and targets go back
    plan = _plan(per_device_train_batch_size=1, gradient_accumulation_steps=16, max_seq_length=512)
    steps = fit_to_vram(GEMMA_3_1B, plan, int(3.2 * GIB), loss="fused", seq=Stats(p95=500, median=400))
    changed = {k for s in steps for k in s.changes}
    assert "gradient_checkpointing" in changed
    assert not changed & {"lora_r", "target_modules"}
    assert steps[-1].estimate.verdict in ("fits", "tight")


def test_mistral_7b_on_16gb_does_not_fit_in_16bit_and_offers_4bit_without_leftover_cuts() -> None:
    inv = load_inventory("mistral-7b-v0.3")
    plan = TrainingPlan(model="mistral-7b-v0.3", lora_r=16, lora_alpha=32, target_modules=ALL7,
                        per_device_train_batch_size=2, gradient_accumulation_steps=8)
    steps = fit_to_vram(inv, plan, 16 * 10**9, loss="fused")
    assert [s.kind for s in steps] == ["tried", "four_bit"]
    assert steps[0].changes == {} and "those cuts are undone" in steps[0].description
    last = steps[-1]
    assert last.changes == {"load_in_4bit": True}
    assert last.description.startswith("does not fit in 16-bit; fits with --load-in-4bit at ")
    assert last.description.endswith(f"{last.estimate.total_bytes / GIB:.2f} GiB")
    assert last.estimate.verdict == "fits" and last.estimate.settings["load_in_4bit"] is True


def test_nothing_fits_says_so_and_keeps_no_cuts() -> None:
    steps = fit_to_vram(GEMMA_3_1B, _plan(), 2 * GIB, loss="fused")
    assert all(s.changes == {} for s in steps)
    assert steps[-1].kind == "note" and "nor with --load-in-4bit" in steps[-1].description


def test_4bit_is_not_offered_with_dora_or_for_moe() -> None:
    dora = fit_to_vram(GEMMA_3_1B, _plan(use_dora=True), 2 * GIB, loss="fused")
    assert [s.kind for s in dora] == ["note"] and "DoRA" in dora[0].description
    moe = load_inventory("qwen3-30b-a3b")
    plan = TrainingPlan(model="qwen3-30b-a3b", target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    steps = fit_to_vram(moe, plan, 24 * 10**9, loss="fused")
    assert [s.kind for s in steps] == ["note"]
    assert "fused 3-D weights" in steps[0].description and "3%" in steps[0].description


def test_a_4bit_plan_that_still_does_not_fit() -> None:
    inv = load_inventory("llama-3.3-70b")
    plan = TrainingPlan(model="llama-3.3-70b", load_in_4bit=True, target_modules=["q_proj", "v_proj"])
    steps = fit_to_vram(inv, plan, 24 * 10**9, loss="fused")
    assert [s.kind for s in steps] == ["note"] and "even with 4-bit loading" in steps[0].description


def test_fused_qkv_model_keeps_the_fused_projection() -> None:
    phi = ModelInventory("phi-like", "phi3", 2, 64, 100, 4, 4, 16, 128, 60000, (
        LinearKind("qkv_proj", 64, 192, 2, False, "attention"),
        LinearKind("o_proj", 64, 64, 2, False, "attention"),
        LinearKind("gate_up_proj", 64, 256, 2, False, "mlp"),
        LinearKind("down_proj", 128, 64, 2, False, "mlp"),
    ))
    plan = _plan(model="phi-like", target_modules=["all-linear"], max_seq_length=64)
    from lora_tui.core.advice import oom_remedies

    assert {"target_modules": ["qkv_proj"]} in [r.changes for r in oom_remedies(plan, phi)]
    assert fit_to_vram(phi, plan, 100 * GIB) == []


@pytest.mark.parametrize("vram_gib", [3, 4, 6, 8, 12, 16, 24])
def test_every_fit_ends_at_most_at_the_vram_or_says_it_cannot(vram_gib: int) -> None:
    steps = fit_to_vram(GEMMA_3_1B, _plan(), vram_gib * GIB, loss="full")
    plan = _plan()
    for step in steps:
        plan = TrainingPlan(**{**plan.to_dict(), **step.changes})
    final = plan_estimate(GEMMA_3_1B, plan, vram_gib * GIB, loss="full")
    assert final.verdict != "will_not_fit" or steps[-1].kind == "note"
