"""core.lora_math: per-kind rows, totals, scaling labels, DoRA/rsLoRA and adapter size (PEFT parity lives in
test_peft_parity.py)."""

from __future__ import annotations

import json

import pytest

from lora_tui.core.lora_math import compute_lora_math, scaling_label
from lora_tui.core.models.modules import load_inventory
from lora_tui.errors import UserError

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize("r,expected", [(4, 3_261_440), (8, 6_522_880), (16, 13_045_760), (32, 26_091_520)])
def test_gemma_1b_seven_projections_scale_linearly_in_r(r: int, expected: int) -> None:
    math = compute_lora_math(load_inventory("gemma-3-1b-it"), r=r, lora_alpha=2 * r, target_modules=SEVEN)
    assert math.trainable_params == expected
    assert math.total_params == 999_885_952 + expected


def test_gemma_1b_rows_use_the_real_q_proj_shape_not_the_guides() -> None:
    math = compute_lora_math(load_inventory("gemma-3-1b-it"), r=16, lora_alpha=32, target_modules=["q_proj"])
    (row,) = math.rows
    # the guide says 1152 -> 1152 and 36,864 per layer; the model has 1152 -> 1024: 16 x (1152 + 1024) = 34,816
    assert (row.in_features, row.out_features, row.count) == (1152, 1024, 26)
    assert row.lora_params == 26 * 34_816
    assert row.original_params == 26 * 1152 * 1024
    assert row.share == pytest.approx(34_816 / (1152 * 1024))


def test_rows_follow_model_order_whatever_the_request_order() -> None:
    math = compute_lora_math(load_inventory("Llama-3.2-1B"), r=8, lora_alpha=16,
                             target_modules=["down_proj", "v_proj", "q_proj"])
    assert [row.name for row in math.rows] == ["q_proj", "v_proj", "down_proj"]


def test_totals_and_percentage() -> None:
    math = compute_lora_math(load_inventory("Qwen2.5-0.5B"), r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    # 24 layers x 8 x ((896 + 896) + (896 + 128))
    assert math.trainable_params == 24 * 8 * (1792 + 1024) == 540_672
    assert math.trainable_pct == pytest.approx(100 * 540_672 / (494_032_768 + 540_672))


def test_adapter_size_is_tensor_bytes_plus_a_header_estimate() -> None:
    math = compute_lora_math(load_inventory("gemma-3-1b-it"), r=16, lora_alpha=32, target_modules=SEVEN)
    assert math.tensors == 7 * 26 * 2
    header_fp32 = math.adapter_bytes_fp32 - 4 * math.trainable_params
    header_bf16 = math.adapter_bytes_bf16 - 2 * math.trainable_params
    assert header_fp32 == header_bf16
    assert 100 * math.tensors < header_fp32 < 300 * math.tensors


def test_dora_adds_out_features_per_module_and_rslora_changes_scaling() -> None:
    inv = load_inventory("Llama-3.2-1B")
    plain = compute_lora_math(inv, r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"])
    dora = compute_lora_math(inv, r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], use_dora=True,
                             use_rslora=True)
    assert dora.trainable_params - plain.trainable_params == 16 * (2048 + 512)
    assert plain.scaling == 2.0 and dora.scaling == pytest.approx(8.0)
    assert dora.tensors == 3 * 2 * 16


@pytest.mark.parametrize("scaling,label", [
    (1.0, "conservative"), (2.0, "standard"), (4.0, "aggressive"), (3.0, "between standard and aggressive"),
    (1.5, "between conservative and standard"), (0.5, "below conservative"), (8.0, "beyond aggressive"),
])
def test_scaling_labels_follow_the_guides_styles(scaling: float, label: str) -> None:
    assert scaling_label(scaling) == label


def test_unmatched_targets_are_reported_not_raised() -> None:
    math = compute_lora_math(load_inventory("gemma-3-1b-it"), r=8, lora_alpha=16,
                             target_modules=["q_proj", "qkv_proj"])
    assert math.unmatched == ("qkv_proj",)
    assert [row.name for row in math.rows] == ["q_proj"]


def test_all_linear_skips_the_lm_head_and_vision_rows_are_labelled() -> None:
    inv = load_inventory("google/gemma-3-4b-it")
    math = compute_lora_math(inv, r=8, lora_alpha=16, target_modules=["all-linear"])
    names = [row.name for row in math.rows]
    assert "lm_head" not in names
    assert {"vision:q_proj", "vision:fc1", "q_proj", "down_proj"} <= set(names)


def test_to_dict_is_json_with_the_documented_keys() -> None:
    math = compute_lora_math(load_inventory("demo"), r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    data = json.loads(json.dumps(math.to_dict()))
    assert data["trainable_params"] == 4 * 8 * ((256 + 256) + (256 + 64))
    assert data["total_params"] == 4_065_536 + data["trainable_params"]
    assert [m["name"] for m in data["modules"]] == ["q_proj", "v_proj"]
    assert data["modules"][0]["lora_params"] == 4 * 8 * 512
    assert data["scaling_label"] == "standard"


@pytest.mark.parametrize("kwargs,match", [({"r": 0, "lora_alpha": 16}, "`r`"), ({"r": 8, "lora_alpha": 0},
                                                                                  "`lora_alpha`")])
def test_invalid_r_or_alpha(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compute_lora_math(load_inventory("demo"), target_modules=["q_proj"], **kwargs)


def test_dora_on_fused_experts_is_refused() -> None:
    from lora_tui.core.models.modules import LinearKind, ModelInventory

    inv = ModelInventory("moe", "qwen3_moe", 1, 8, 10, 2, 2, 4, 8, 1000, (
        LinearKind("q_proj", 8, 8, 1, group="attention", path="model.layers.*.self_attn.q_proj"),
        LinearKind("gate_up_proj", 8, 16, 1, layer_type="parameter", experts=2, group="experts",
                   path="model.layers.*.mlp.experts.gate_up_proj")))
    with pytest.raises(UserError, match="DoRA"):
        compute_lora_math(inv, r=4, lora_alpha=8, target_modules=["q_proj"],
                          target_parameters=["experts.gate_up_proj"], use_dora=True)
