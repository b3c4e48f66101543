"""Activations a LoRA run keeps for backward, per decoder layer, derived from the module inventory.

The `A` part of the memory estimate (`lora_tui.core.memory`; docs/memory.md has the derivation and the measured
values it reproduces). Per token and layer: what autograd saves for the norms, the attention and the MLP of a
frozen layer, plus what each targeted LoRA module keeps. Mixture-of-experts layers keep the routed tokens' MLP
tensors for each of the k experts a token goes to; expert weights adapted through PEFT's `target_parameters` are
materialised as W + B @ A on every forward (`peft.tuners.lora.layer.ParamWrapper`), a per-layer copy of the whole
expert stack that backward needs, plus its gradient while backward runs.
"""

from __future__ import annotations

from lora_tui.core.models.modules import LinearKind, ModelInventory

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
"""Bytes per element of each supported compute/adapter dtype."""

ATTN_OUTPUT_NAMES = frozenset({"o_proj", "out_proj", "dense", "c_proj", "wo", "o"})
"""Leaf names of attention output projections (their input is the attention output, already saved)."""

NORMS_PER_LAYER = {"gemma2": 4, "gemma3": 4, "gemma3_text": 4, "olmo2": 2}
"""RMSNorms per decoder layer where it is not the usual 2 (Gemma 2/3 put norms before and after each block)."""

QK_NORM = frozenset({"gemma3", "gemma3_text", "qwen3", "qwen3_moe", "olmo2"})
"""Model types that RMS-normalise queries and keys per head."""

DEFAULT_EXPERTS_PER_TOKEN = 8
"""Experts per token assumed for an MoE inventory that does not record it (cached before lora-tui recorded it)."""


def layer_activation_bytes(inv: ModelInventory, targets: list[LinearKind], *, seq_len: int, dtype: str = "bf16",
                           lora_r: int = 16, lora_dropout: float = 0.05, use_dora: bool = False,
                           attn: str = "sdpa", adapter_dtype: str = "fp32", device: str = "cuda",
                           residual_dtype: str | None = None, experts_targeted: bool = False) -> float:
    """Bytes autograd saves per token in one decoder layer of a frozen base with LoRA on `targets`.

    Derived from what each op keeps for backward (torch 2.13 / transformers 5.24 / peft 0.21 sources):
    RMSNorm keeps its fp32 input (4 x width); SDPA/flash attention keep q, k, v (k and v at key/value-head width),
    the output and an fp32 log-sum-exp per head; eager attention keeps q and the head-repeated k and v, the fp32
    softmax and its bf16 copy (6 x heads x sequence) instead; a gated MLP keeps gate, up and the activation's
    output (3 x intermediate); an MoE layer keeps that for each of its k experts per token, the expert output it
    scales by the routing weight and the router's fp32 probabilities. Frozen linears keep nothing. A LoRA module
    keeps its input cast to the adapter dtype (one copy per module when the dtypes differ, otherwise the shared
    input), with dropout > 0 the dropped copy plus the mask, and the rank-r input of lora_B; DoRA also keeps the
    base and LoRA outputs. `residual_dtype` is the residual stream's and the MLP's dtype when it differs from
    the compute dtype (fp32 after PEFT's 4-bit upcast); `experts_targeted` adds the inputs the adapted expert
    weights need for their gradient.
    """
    c = DTYPE_BYTES[dtype]
    r = DTYPE_BYTES[residual_dtype or dtype]
    a = DTYPE_BYTES[adapter_dtype]
    h, n_h, n_kv, d = inv.hidden_size, inv.num_attention_heads, inv.num_key_value_heads, inv.head_dim
    norms = NORMS_PER_LAYER.get(inv.model_type, 2) * 4 * h
    if inv.model_type in QK_NORM:
        norms += 4 * (n_h + n_kv) * d
    if attn == "eager":
        attention = 6 * n_h * seq_len + 3 * c * n_h * d
    else:
        attention = c * (2 * n_h * d + 2 * n_kv * d) + 4 * n_h
    if is_moe(inv):
        mlp = moe_token_bytes(inv, r, experts_targeted)
    else:
        mlp = (3 if _is_gated(inv) else 1) * r * _intermediate(inv)
    return norms + attention + mlp + _lora_saved_bytes(inv, targets, c=r, a=a, lora_r=lora_r,
                                                        lora_dropout=lora_dropout, use_dora=use_dora,
                                                        attn=attn, device=device)


def is_moe(inv: ModelInventory) -> bool:
    """Whether the model routes tokens to experts (fused expert weights in its inventory)."""
    return bool(inv.num_experts) and any(k.layer_type == "parameter" and k.experts > 1 for k in inv.linears)


def moe_token_bytes(inv: ModelInventory, c: int, experts_targeted: bool) -> float:
    """Per token, one MoE layer: for each of the k experts a token is routed to, the gate and up outputs and the
    activation's output (3 x expert width), the expert's output before it is scaled by the routing weight
    (hidden), and, when the expert weights are adapted, the inputs of both expert projections; plus the router's
    fp32 logits and probabilities; plus any dense (shared-expert) MLP in the layer."""
    k = inv.experts_per_token or DEFAULT_EXPERTS_PER_TOKEN
    inter = inv.intermediate_size or _intermediate(inv)
    h = inv.hidden_size
    per_expert = 3 * c * inter + c * h + (c * (h + inter) if experts_targeted else 0)
    router = 2 * 4 * (inv.num_experts or 1)
    dense = [kind.out_features for kind in inv.linears if kind.group == "mlp" and kind.in_features == h]
    shared = (3 if len(dense) >= 2 else 1) * c * max(dense) if dense else 0
    return k * per_expert + router + shared


def expert_weight_bytes(inv: ModelInventory, params: list[LinearKind], param_bytes: int) -> float:
    """One layer's adapted expert weights materialised as W + B @ A (PEFT's ParamWrapper, each forward)."""
    return sum(kind.experts * kind.in_features * kind.out_features * param_bytes * kind.count / inv.num_layers
               for kind in params)


def _lora_saved_bytes(inv: ModelInventory, targets: list[LinearKind], *, c: int, a: int, lora_r: int,
                      lora_dropout: float, use_dora: bool, attn: str, device: str) -> float:
    """Per token per layer: what the LoRA branches of the targeted modules keep (see layer_activation_bytes)."""
    layer_kinds = [k for k in targets if k.group != "output" and k.layer_type != "parameter"]
    per_layer = [k for k in layer_kinds for _ in range(max(1, round(k.count / inv.num_layers)))]
    total = float(sum(a * lora_r for _ in per_layer))  # lora_B's input: the rank-r output of lora_A
    if lora_dropout > 0:
        mask = a if device == "cpu" else 1  # CPU: same-dtype noise tensor; CUDA: native_dropout's bool mask
        total += sum((a + mask) * k.in_features for k in per_layer)
    elif a != c:
        total += sum(a * k.in_features for k in per_layer)
    else:
        shared: set[str] = set()
        for k in per_layer:
            role = _input_role(inv, k)
            if role == "attn_out" and attn != "eager":
                continue  # the attention output is already kept by SDPA/flash attention
            if role in ("attn_in", "mlp_in"):
                if role in shared:
                    continue
                shared.add(role)
            total += c * k.in_features
    if use_dora:
        total += sum((c + a) * k.out_features for k in per_layer)
    return total


def _input_role(inv: ModelInventory, kind: LinearKind) -> str:
    """Which tensor feeds a layer kind: the normed input of attention/MLP, the attention output, or the MLP's."""
    if kind.group == "attention":
        return "attn_out" if kind.name in ATTN_OUTPUT_NAMES else "attn_in"
    return "mlp_in" if kind.in_features == inv.hidden_size else "mlp_down"


def _intermediate(inv: ModelInventory) -> int:
    if inv.intermediate_size:
        return inv.intermediate_size
    widths = [k.out_features for k in inv.linears if k.group in ("mlp", "experts") and k.in_features == inv.hidden_size]
    return max(widths, default=4 * inv.hidden_size)


def _is_gated(inv: ModelInventory) -> bool:
    """Gated MLPs (SwiGLU/GeGLU) have two hidden-to-intermediate kinds, or one fused kind twice as wide."""
    ups = [k for k in inv.linears if k.group in ("mlp", "experts") and k.in_features == inv.hidden_size]
    return len(ups) >= 2 or any(k.out_features == 2 * _intermediate(inv) for k in ups)
