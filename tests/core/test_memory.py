"""Peak-memory estimate: parts by hand, the measured bytes-per-token values, verdicts and the fit loop."""

from __future__ import annotations

import pytest

from lora_tui.core.activations import layer_activation_bytes
from lora_tui.core.memory import (
    CPU_RUNTIME_FIXED,
    GIB,
    OVERHEAD_FIXED,
    OVERHEAD_FRACTION,
    estimate_memory,
    resolve_targets,
    verdict_for,
)
from lora_tui.core.models.modules import ModelInventory
from lora_tui.errors import UserError
from tests.helpers.memory_models import GEMMA_3_1B, LLAMA_32_1B, QWEN25_05B, decoder

ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# ---- a tiny inventory whose every byte is computed by hand below -----------------------------------------

TINY = decoder("tiny", "llama", layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=32,
               tied=True)
# params: q 64, k 32, v 32, o 64, gate 128, up 128, down 128 = 576 per layer x 2 = 1152; embedding 256;
# norms 2 x 8 x 2 = 32; final norm 8 -> 1448.


def test_tiny_inventory_param_count() -> None:
    assert TINY.total_params == 1448


# Per token per layer, sdpa, bf16 base (c = 2), q/v targeted, r = 2, dropout 0:
#   norms 2 x 4 x 8 = 64; attention 2 x (2 x 8 + 2 x 4) + 4 x 2 heads = 56; gated MLP 3 x 2 x 16 = 96
#   fp32 adapters: each module keeps its own fp32 input (4 x 8 each = 64) + lora_B input 4 x 2 x 2 = 16 -> 80
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 64 + 56 + 96 + 80),
        # bf16 adapters: q and v share the (bf16) normed input once: 2 x 8 = 16, lora_B inputs 2 x 2 x 2 = 8
        ({"adapter_dtype": "bf16"}, 64 + 56 + 96 + 16 + 8),
        # dropout on CUDA: per module dropped fp32 copy 4 x 8 + bool mask 8 = 40, x2 = 80, + lora_B 16
        ({"lora_dropout": 0.1}, 64 + 56 + 96 + 80 + 16),
        # dropout on CPU: the mask is an fp32 noise tensor: (4 + 4) x 8 x 2 = 128, + 16
        ({"lora_dropout": 0.1, "device": "cpu"}, 64 + 56 + 96 + 128 + 16),
        # eager at seq 10: 6 x 2 heads x 10 = 120 + q and repeated k, v 3 x 2 x 8 = 48 instead of 56
        ({"attn": "eager", "seq_len": 10}, 64 + 168 + 96 + 80),
        # DoRA also keeps base and LoRA outputs: (2 + 4) x (4 + 8) = 72
        ({"use_dora": True}, 64 + 56 + 96 + 80 + 72),
    ],
)
def test_tiny_layer_activation_bytes(kwargs: dict, expected: int) -> None:
    targets = resolve_targets(TINY, ["q_proj", "v_proj"])
    args = {"seq_len": 10, "lora_r": 2, "lora_dropout": 0.0, **kwargs}
    assert layer_activation_bytes(TINY, targets, **args) == expected


def test_tiny_parts_by_hand() -> None:
    est = estimate_memory(TINY, lora_r=2, target_modules=["q_proj", "v_proj"], batch_size=3, seq_len=10,
                          lora_dropout=0.0, gradient_checkpointing=False, loss="full")
    parts = {p.key: p.bytes for p in est.parts}
    assert parts["weights"] == 1448 * 2
    # LoRA params: q 2 x (8 + 8) + v 2 x (8 + 4) = 56 per layer x 2 = 112, x 16 B
    assert parts["trainable"] == 112 * 16
    # 2 layers x 30 tokens x 296 B + final norm 4 x 8 x 30
    assert parts["activations"] == 2 * 30 * 296 + 960
    assert parts["logits"] == 30 * 32 * 12
    subtotal = sum(v for k, v in parts.items() if k != "overhead")
    assert parts["overhead"] == int(OVERHEAD_FIXED + OVERHEAD_FRACTION * subtotal)
    assert est.total_bytes == subtotal + parts["overhead"]
    assert est.verdict == "unknown" and est.headroom_bytes is None
    assert "2 layers x 3 x 10 tok x 8 x 37.0 B" in est.part("activations").detail


def test_checkpointing_keeps_layer_inputs_plus_one_layer() -> None:
    est = estimate_memory(TINY, lora_r=2, target_modules=["q_proj", "v_proj"], batch_size=3, seq_len=10,
                          lora_dropout=0.0, gradient_checkpointing=True)
    assert est.part("activations").bytes == 2 * 30 * 2 * 8 + 30 * 296 + 960


def test_four_bit_weights_and_upcast() -> None:
    linear = 1152
    est = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=1, seq_len=4, load_in_4bit=True)
    assert est.part("weights").bytes == int(linear * 0.516) + (1448 - linear) * 4
    gptq = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=1, seq_len=4,
                           load_in_4bit=True, kbit_upcast=False)
    assert gptq.part("weights").bytes == int(linear * 0.516) + (1448 - linear) * 2


def test_bf16_adapters_halve_state_and_dora_adds_magnitudes() -> None:
    base = {"lora_r": 2, "target_modules": ["q_proj"], "batch_size": 1, "seq_len": 4}
    assert estimate_memory(TINY, **base, adapter_dtype="bf16").part("trainable").bytes == 64 * 8
    assert estimate_memory(TINY, **base, use_dora=True).part("trainable").bytes == (64 + 16) * 16


def test_chunked_and_16bit_loss() -> None:
    base = {"lora_r": 2, "target_modules": ["q_proj"], "batch_size": 2, "seq_len": 5}
    assert estimate_memory(TINY, **base, loss="bf16").part("logits").bytes == 10 * 32 * 8
    assert estimate_memory(TINY, **base, loss="chunked").part("logits").bytes == int(10 * 32 * 3.5)


def test_all_linear_leaves_out_lm_head_and_unknown_target_is_refused() -> None:
    assert [k.name for k in resolve_targets(TINY, ["all-linear"])] == ALL7
    with pytest.raises(UserError, match="qkv_proj matches no module of tiny"):
        resolve_targets(TINY, ["qkv_proj"])
    with pytest.raises(UserError, match="`attn` must be one of"):
        estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=1, seq_len=4, attn="flash")


# ---- MEMORY.md's measured bytes per token per layer / hidden (CPU, batch 1, seq 512, r 16, all linear) ------

C_TOLERANCE = 0.03
"""Derived c values must match the measured ones within 3%."""


@pytest.mark.parametrize(
    ("inv", "measured"),
    [
        (LLAMA_32_1B, {"fp32": 77.3, "bf16": 49.2, "dropout": 117.3, "eager": 126.2}),
        (GEMMA_3_1B, {"fp32": 108.9, "bf16": 77.2, "dropout": 156.5, "eager": 117.8}),
        (QWEN25_05B, {"fp32": 91.4, "bf16": 60.3, "dropout": 137.1, "eager": 140.8}),
    ],
    ids=lambda v: getattr(v, "model_id", ""),
)
def test_measured_c_values(inv: ModelInventory, measured: dict[str, float]) -> None:
    targets = resolve_targets(inv, ["all-linear"])
    settings = {
        "fp32": {},
        "bf16": {"adapter_dtype": "bf16"},
        "dropout": {"lora_dropout": 0.05},
        "eager": {"attn": "eager"},
    }
    for column, extra in settings.items():
        args = {"seq_len": 512, "lora_r": 16, "lora_dropout": 0.0, "device": "cpu", **extra}
        c = layer_activation_bytes(inv, targets, **args) / inv.hidden_size
        assert c == pytest.approx(measured[column], rel=C_TOLERANCE), column


def test_full_logits_dominate_for_gemma() -> None:
    est = estimate_memory(GEMMA_3_1B, lora_r=16, target_modules=ALL7, batch_size=1, seq_len=2048, loss="full")
    assert est.part("logits").bytes == 12 * 2048 * 262144
    assert est.part("logits").bytes > est.part("activations").bytes


# ---- verdicts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "vram", "verdict"),
    [(50, None, "unknown"), (85, 100, "fits"), (86, 100, "tight"), (100, 100, "tight"), (101, 100, "will_not_fit")],
)
def test_verdict_thresholds(total: int, vram: int | None, verdict: str) -> None:
    assert verdict_for(total, vram) == verdict


def test_headroom_and_to_dict() -> None:
    est = estimate_memory(LLAMA_32_1B, lora_r=16, target_modules=["q_proj", "v_proj"], batch_size=1, seq_len=512,
                          vram_bytes=24 * GIB)
    assert est.verdict == "fits"
    assert est.headroom_bytes == 24 * GIB - est.total_bytes
    d = est.to_dict()
    assert [p["key"] for p in d["parts"]] == ["weights", "trainable", "activations", "logits", "overhead"]
    assert d["total_bytes"] == sum(p["bytes"] for p in d["parts"])
    assert d["settings"]["seq_len"] == 512


@pytest.mark.parametrize(("preset", "hand_built"), [("gemma-3-1b-it", GEMMA_3_1B), ("llama-3.2-1b", LLAMA_32_1B)])
def test_shipped_presets_give_the_same_estimate(preset: str, hand_built: ModelInventory) -> None:
    from lora_tui.core.models.modules import load_inventory

    inv = load_inventory(preset)
    kw = {"lora_r": 16, "target_modules": ["all-linear"], "batch_size": 2, "seq_len": 1024}
    assert estimate_memory(inv, **kw).to_dict()["parts"] == estimate_memory(hand_built, **kw).to_dict()["parts"]


# ---- the loss path: TRL's fused LM head ------------------------------------------------------------------


def test_fused_head_by_hand() -> None:
    # TINY: 30 tokens, vocabulary 32, hidden 8, bf16 on CUDA: one 30 x 32 tile of 2 B, per token 8 x (2 + 4 + 2)
    # (the saved hidden state, its fp32 gradient and the cast back) + 48 B of fp32 statistics
    est = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=3, seq_len=10, loss="fused")
    assert est.part("logits").bytes == 30 * 32 * 2 + 30 * (8 * 8 + 48)
    cpu = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=3, seq_len=10, loss="fused",
                          dtype="fp32", device="cpu")
    assert cpu.part("logits").bytes == 30 * 32 * 8 * 4 + 30 * (8 * 12 + 48)
    # on the CPU there is no CUDA context: the fragmentation share, then the CPU runtime's measured fixed cost
    tensors = sum(p.bytes for p in cpu.parts if p.key not in ("overhead", "cpu_runtime"))
    assert cpu.part("overhead").bytes == int(OVERHEAD_FRACTION * tensors)
    assert cpu.part("cpu_runtime").bytes == CPU_RUNTIME_FIXED
    assert cpu.total_bytes == tensors + int(OVERHEAD_FRACTION * tensors) + CPU_RUNTIME_FIXED
    assert [p.key for p in cpu.parts].count("cpu_4bit_load") == 0


def test_cpu_4bit_counts_the_weights_read_before_quantising() -> None:
    # bitsandbytes on the CPU reads every weight at the run's precision (fp32 there) before quantising it
    est = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=1, seq_len=10, dtype="fp32",
                          device="cpu", load_in_4bit=True)
    assert est.part("cpu_4bit_load").bytes == TINY.total_params * 4
    cuda = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=1, seq_len=10, load_in_4bit=True)
    assert {"cpu_runtime", "cpu_4bit_load"}.isdisjoint(p.key for p in cuda.parts)


def test_fused_head_tiles_cap_at_4096_tokens_by_32768_entries() -> None:
    est = estimate_memory(GEMMA_3_1B, lora_r=16, target_modules=ALL7, batch_size=8, seq_len=4096, loss="fused")
    tokens = 8 * 4096
    assert est.part("logits").bytes == 4096 * 32768 * 2 + tokens * (1152 * 8 + 48)


def test_gemma_3_1b_at_batch_2_by_1024_fused_against_full() -> None:
    """The issue's case: the full-logits term (6 GiB) is what the runner never builds."""
    kw = {"lora_r": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "batch_size": 2,
          "seq_len": 1024}
    full = estimate_memory(GEMMA_3_1B, **kw, loss="full")
    fused = estimate_memory(GEMMA_3_1B, **kw, loss="fused")
    assert full.part("logits").bytes == 12 * 2048 * 262144
    assert fused.part("logits").bytes < 160 * 2**20
    assert full.total_bytes / GIB == pytest.approx(9.61, abs=0.01)
    assert fused.total_bytes / GIB == pytest.approx(3.29, abs=0.01)


def test_runner_loss_impl_reads_the_installed_trl() -> None:
    from lora_tui.core.memory import runner_loss_impl

    assert runner_loss_impl() == "fused"  # TRL 1.16's SFTTrainer calls model(..., fused_lm_head=True)


# ---- mixture of experts: fused experts through target_parameters -------------------------------------------


def test_moe_expert_parameters_count_in_trainable_state_and_activations() -> None:
    from lora_tui.core.lora_math import compute_lora_math
    from lora_tui.core.models.modules import load_inventory

    inv = load_inventory("qwen3-30b-a3b")
    kw = {"lora_r": 16, "batch_size": 2, "seq_len": 1024, "lora_dropout": 0.0}
    attn = estimate_memory(inv, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], **kw)
    every = estimate_memory(inv, target_modules=["all-linear"], **kw)
    trainable = compute_lora_math(inv, r=16, lora_alpha=32, target_modules=["all-linear"]).trainable_params
    assert trainable == 996_507_648  # PEFT's count (tests/core/test_peft_parity.py checks the rule)
    assert every.part("trainable").bytes == trainable * 16
    assert every.part("trainable").bytes - attn.part("trainable").bytes > 14 * GIB
    # each adapted expert stack is materialised (W + B @ A): gate_up 128 x 2048 x 1536 + down 128 x 768 x 2048
    expert_copy = (128 * 2048 * 1536 + 128 * 768 * 2048) * 2
    with_gc = every.part("activations").bytes - attn.part("activations").bytes
    assert with_gc > 2 * expert_copy
    no_gc = estimate_memory(inv, target_modules=["all-linear"], gradient_checkpointing=False, **kw)
    assert no_gc.part("activations").bytes > 48 * expert_copy
    assert "target_parameters" in every.part("trainable").detail


def test_moe_tokens_keep_the_k_routed_experts_tensors() -> None:
    from lora_tui.core.activations import moe_token_bytes
    from lora_tui.core.models.modules import load_inventory

    inv = load_inventory("mixtral-8x7b")
    assert inv.experts_per_token == 2 and inv.num_experts == 8
    # per routed expert: gate, up, activation (3 x 14336 x 2 B) + the expert output (4096 x 2 B); router fp32 x 2
    assert moe_token_bytes(inv, 2, False) == 2 * (3 * 2 * 14336 + 2 * 4096) + 2 * 4 * 8


def test_four_bit_problem_names_moe_and_conv1d_models() -> None:
    from lora_tui.core.memory import four_bit_problem
    from lora_tui.core.models.modules import load_inventory

    assert four_bit_problem(load_inventory("mistral-7b-v0.3")) is None
    assert four_bit_problem(load_inventory("demo")) is None
    assert "fused 3-D weights" in (four_bit_problem(load_inventory("mixtral-8x7b")) or "")


def test_four_bit_head_slice_and_fp32_residual() -> None:
    est = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=3, seq_len=10, loss="fused",
                          load_in_4bit=True)
    # the fp32 LM head (upcast) is cast to bf16 one 32-entry slice at a time: 32 x 8 x 2 B
    assert est.part("logits").bytes == 30 * 32 * 2 + 32 * 8 * 2 + 30 * (8 * 8 + 48)
    plain = estimate_memory(TINY, lora_r=2, target_modules=["q_proj"], batch_size=3, seq_len=10)
    assert est.part("activations").bytes > plain.part("activations").bytes  # the residual stream is fp32


def test_measured_lengths_estimate_the_worst_padded_batch_and_name_the_typical_one() -> None:
    from types import SimpleNamespace

    from lora_tui.core.memory import plan_estimate
    from lora_tui.core.models.modules import load_inventory
    from lora_tui.core.plan import TrainingPlan

    inv = load_inventory("gemma-3-1b-it")
    plan = TrainingPlan(model="gemma-3-1b-it", max_seq_length=1024, per_device_train_batch_size=2)
    bound = plan_estimate(inv, plan, int(8e9))
    assert bound.settings["seq_len"] == 1024 and "no measured lengths: a worst case" in bound.settings["seq_basis"]
    measured = plan_estimate(inv, plan, int(8e9), lengths=SimpleNamespace(median=200, max=600))
    typical = plan_estimate(inv, plan, int(8e9), seq_len=200)
    assert measured.settings["seq_len"] == 600 and measured.total_bytes < bound.total_bytes
    assert measured.settings["typical_total_bytes"] == typical.total_bytes < measured.total_bytes
    assert measured.settings["seq_basis"].startswith("worst padded batch: every example padded to the longest (600")
    cut = plan_estimate(inv, plan, int(8e9), lengths=SimpleNamespace(median=300, max=5000))
    assert cut.settings["seq_len"] == 1024 and "cut to max_seq_length 1024" in cut.settings["seq_basis"]
