"""LoRA math from an inventory equals what PEFT itself reports after get_peft_model, on the meta device.

Each case builds a small model of one architecture from a config (no weights, no download), takes its inventory
with the same code the subprocess builder runs, and compares `compute_lora_math` with
`get_peft_model(model, LoraConfig(...)).get_nb_trainable_parameters()`.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from peft import LoraConfig, get_peft_model

from lora_tui.core.lora_math import compute_lora_math
from lora_tui.core.models._build import build_inventory_dict, build_model, inventory_from_model
from lora_tui.core.models.modules import MODELS_DIR, ModelInventory, load_inventory
from lora_tui.errors import UserError

_SMALL = {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2}

CONFIGS: dict[str, dict[str, Any]] = {
    "llama_gqa": {"model_type": "llama", **_SMALL, "tie_word_embeddings": False},
    "llama_tied": {"model_type": "llama", **_SMALL, "tie_word_embeddings": True},
    "gemma3_text": {"model_type": "gemma3_text", **_SMALL, "num_key_value_heads": 1, "head_dim": 32,
                    "sliding_window": 16, "tie_word_embeddings": True},
    "qwen3": {"model_type": "qwen3", **_SMALL, "head_dim": 24, "tie_word_embeddings": True},
    "qwen2_bias": {"model_type": "qwen2", **_SMALL, "tie_word_embeddings": False},
    "phi3_fused": {"model_type": "phi3", **_SMALL, "pad_token_id": 0, "tie_word_embeddings": False},
    "gpt2_conv1d": {"model_type": "gpt2", "vocab_size": 512, "n_embd": 64, "n_layer": 2, "n_head": 4,
                    "n_positions": 128},
    "mistral": {"model_type": "mistral", **_SMALL, "head_dim": 16, "tie_word_embeddings": False},
    "qwen3_moe": {"model_type": "qwen3_moe", **_SMALL, "moe_intermediate_size": 32, "num_experts": 4,
                  "num_experts_per_tok": 2, "decoder_sparse_step": 2, "mlp_only_layers": [],
                  "tie_word_embeddings": False},
    "mixtral": {"model_type": "mixtral", **_SMALL, "num_local_experts": 4, "num_experts_per_tok": 2,
                "tie_word_embeddings": False},
    "gemma3_multimodal": {
        "model_type": "gemma3", "mm_tokens_per_image": 4, "image_token_index": 500, "boi_token_index": 498,
        "eoi_token_index": 499,
        "text_config": {"model_type": "gemma3_text", **_SMALL, "head_dim": 32, "sliding_window": 16},
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 48, "intermediate_size": 80,
                          "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
    },
}

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
SEVEN = [*ATTN, "gate_proj", "up_proj", "down_proj"]
TARGETS: dict[str, list[list[str]]] = {
    "llama_gqa": [["q_proj", "v_proj"], SEVEN, ["all-linear"], ["self_attn.q_proj", "mlp.down_proj"]],
    "llama_tied": [SEVEN, ["all-linear"], ["embed_tokens", "q_proj"]],
    "gemma3_text": [SEVEN, ["all-linear"]],
    "qwen3": [ATTN, ["all-linear"]],
    "qwen2_bias": [ATTN, ["all-linear"]],
    "phi3_fused": [["qkv_proj", "gate_up_proj"], ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
                   ["all-linear"]],
    "gpt2_conv1d": [["c_attn"], ["c_attn", "c_proj", "c_fc"], ["all-linear"]],
    "mistral": [SEVEN, ["all-linear"]],
    "qwen3_moe": [ATTN, ["all-linear"]],
    "mixtral": [ATTN, ["all-linear"]],
    "gemma3_multimodal": [["q_proj", "v_proj"], ["all-linear"], ["fc1"]],
}
CASES = [(arch, targets) for arch, lists in TARGETS.items() for targets in lists]


def _inventory(config: dict[str, Any]) -> ModelInventory:
    """The inventory exactly as the subprocess builder produces it (through its JSON form)."""
    return ModelInventory.from_dict(json.loads(json.dumps(build_inventory_dict(config, "test"))))


def _peft_counts(config: dict[str, Any], **lora: Any) -> tuple[int, int]:
    """(trainable, all) parameters PEFT reports for a fresh meta-device model of `config`."""
    model = build_model(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))
    return peft_model.get_nb_trainable_parameters()


@pytest.fixture(scope="module")
def inventories() -> dict[str, ModelInventory]:
    return {arch: _inventory(cfg) for arch, cfg in CONFIGS.items()}


@pytest.mark.parametrize("arch,targets", CASES, ids=[f"{a}-{'+'.join(t)}" for a, t in CASES])
@pytest.mark.parametrize("r", [4, 16])
def test_lora_params_equal_peft(inventories: dict[str, ModelInventory], arch: str, targets: list[str],
                                r: int) -> None:
    math = compute_lora_math(inventories[arch], r=r, lora_alpha=2 * r, target_modules=targets)
    peft_targets: Any = "all-linear" if targets == ["all-linear"] else targets
    trainable, total = _peft_counts(CONFIGS[arch], r=r, lora_alpha=2 * r, target_modules=peft_targets)
    assert (math.trainable_params, math.total_params) == (trainable, total)
    assert math.unmatched == ()


@pytest.mark.parametrize("arch", ["llama_gqa", "phi3_fused", "gpt2_conv1d"])
def test_dora_and_rslora_equal_peft(inventories: dict[str, ModelInventory], arch: str) -> None:
    targets = TARGETS[arch][1]
    math = compute_lora_math(inventories[arch], r=8, lora_alpha=16, target_modules=targets, use_dora=True,
                             use_rslora=True)
    trainable, total = _peft_counts(CONFIGS[arch], r=8, lora_alpha=16, target_modules=targets, use_dora=True,
                                    use_rslora=True)
    assert (math.trainable_params, math.total_params) == (trainable, total)
    assert math.scaling == pytest.approx(16 / 8**0.5)


@pytest.mark.parametrize("arch", ["qwen3_moe", "mixtral"])
def test_fused_experts_via_target_parameters(inventories: dict[str, ModelInventory], arch: str) -> None:
    inv = inventories[arch]
    params = inv.parameter_names()
    assert params == ["experts.down_proj", "experts.gate_up_proj", "gate.weight"]
    math = compute_lora_math(inv, r=4, lora_alpha=8, target_modules=ATTN, target_parameters=params[:2])
    trainable, total = _peft_counts(CONFIGS[arch], r=4, lora_alpha=8, lora_dropout=0.0, target_modules=ATTN,
                                    target_parameters=params[:2])
    assert (math.trainable_params, math.total_params) == (trainable, total)
    # target_modules never reaches fused expert weights: asking for them by their v5 name is reported unmatched
    assert compute_lora_math(inv, r=4, lora_alpha=8, target_modules=["gate_up_proj"]).unmatched == (
        "gate_up_proj",)


MOE_V4_NAMES = {"qwen3_moe": [["q_proj", "gate_proj", "up_proj", "down_proj"], ["down_proj", "gate"]],
                "mixtral": [["q_proj", "w1", "w3"], ["v_proj", "w2", "gate"]]}


@pytest.mark.parametrize("arch,targets", [(a, t) for a, ts in MOE_V4_NAMES.items() for t in ts])
def test_v4_expert_names_follow_peft_remapping(inventories: dict[str, ModelInventory], arch: str,
                                               targets: list[str]) -> None:
    math = compute_lora_math(inventories[arch], r=4, lora_alpha=8, target_modules=targets)
    trainable, total = _peft_counts(CONFIGS[arch], r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets)
    assert (math.trainable_params, math.total_params) == (trainable, total)
    assert math.notes and "lora_dropout=0" in math.notes[0]


def test_half_of_a_fused_expert_pair_is_refused_like_peft(inventories: dict[str, ModelInventory]) -> None:
    with pytest.raises(UserError, match="fuses them into gate_up_proj"):
        compute_lora_math(inventories["qwen3_moe"], r=4, lora_alpha=8, target_modules=["gate_proj"])
    with pytest.raises(ValueError, match="without also targeting up_proj"):
        _peft_counts(CONFIGS["qwen3_moe"], r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["gate_proj"])


def test_multimodal_gemma3_q_proj_also_adapts_the_vision_tower(inventories: dict[str, ModelInventory]) -> None:
    rows = compute_lora_math(inventories["gemma3_multimodal"], r=8, lora_alpha=16, target_modules=["q_proj"]).rows
    assert sorted(row.name for row in rows) == ["q_proj", "vision:q_proj"]


def test_unmatched_target_is_reported_and_peft_refuses_it(inventories: dict[str, ModelInventory]) -> None:
    math = compute_lora_math(inventories["phi3_fused"], r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    assert math.unmatched == ("q_proj", "v_proj") and math.trainable_params == 0
    with pytest.raises(ValueError, match="not found in the base model"):
        _peft_counts(CONFIGS["phi3_fused"], r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])


def test_gemma_3_1b_preset_reproduces_the_reference() -> None:
    inv = load_inventory("google/gemma-3-1b-it")
    assert (inv.kind("q_proj").in_features, inv.kind("q_proj").out_features) == (1152, 1024)
    assert (inv.kind("k_proj").in_features, inv.kind("k_proj").out_features) == (1152, 256)
    assert (inv.kind("v_proj").in_features, inv.kind("v_proj").out_features) == (1152, 256)
    math = compute_lora_math(inv, r=16, lora_alpha=32, target_modules=SEVEN)
    assert math.trainable_params == 13_045_760
    assert math.base_params == 999_885_952
    assert math.total_params == 999_885_952 + 13_045_760


PRESET_FILES = sorted(MODELS_DIR.glob("*.json"))


@pytest.mark.parametrize("path", PRESET_FILES, ids=[p.stem for p in PRESET_FILES])
def test_stored_preset_inventory_equals_a_fresh_build(path) -> None:
    meta = json.loads(path.read_text(encoding="utf-8"))
    fresh = build_inventory_dict(meta["config"], meta["name"])
    assert fresh == meta["inventory"]


def test_inventory_from_model_counts_tied_weights_once() -> None:
    tied = inventory_from_model(build_model(CONFIGS["llama_tied"]), "t")
    untied = inventory_from_model(build_model(CONFIGS["llama_gqa"]), "u")
    assert untied["total_params"] - tied["total_params"] == 512 * 64
