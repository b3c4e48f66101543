"""Peak training memory of a LoRA run, as named parts, and the guide's out-of-memory fit loop.

Peak = W + S + A + T + O (docs/memory.md has the method, sources and the calibration table):

- W, frozen weights: parameters x bytes of the dtype (tied embeddings once). With 4-bit loading the decoder's
  linear layers take NF4 with double quantization (4 bits + one 8-bit absmax per 64 weights + a second-level
  scale: about 0.52 bytes per weight); everything else (embeddings, LM head, norms, biases) is cast to fp32 by
  PEFT's `prepare_model_for_kbit_training`.
- S, trainable state: LoRA parameters (and DoRA magnitudes) x 4 tensors (weight, gradient, AdamW m and v) x the
  adapter dtype's bytes: 16 B per parameter with PEFT's default fp32 adapters (`autocast_adapter_dtype=True`).
- A, activations saved for backward: derived per decoder layer from the module inventory (see
  `layer_activation_bytes`): what autograd keeps for the norms, attention and MLP of a frozen bf16 layer, plus what
  each targeted LoRA module keeps (its input cast to the adapter dtype, the dropout copy and mask). This
  reproduces the bytes-per-token-per-layer values measured for this project by counting the tensors autograd saves
  (docs/memory.md table; torch 2.13, transformers 5.24, peft 0.21.2) within 3%. With gradient
  checkpointing each layer keeps only its input (2 x hidden bytes per token, measured exactly) plus one layer's
  full activations while it is recomputed.
- T, logits and loss: about 12 x batch x sequence x vocabulary bytes (fp32 log-softmax and two fp32 gradients;
  measured 12.02 with Gemma 3's 262,144 vocabulary). Chunked cross-entropy (torchtune) keeps the bf16 logits plus
  one chunk's fp32 transient.
- O, overhead: CUDA context and allocator fragmentation: 0.75 GiB + 8% of the rest (docs/memory.md,
  "The overhead term": 0.5-1 GB + 5-10%).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lora_tui.core.models.modules import LinearKind, ModelInventory, check_targets
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.units import GIB, fmt_gib
from lora_tui.errors import UserError

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
"""Bytes per element of each supported compute/adapter dtype."""

ATTN_IMPLS = ("sdpa", "flash_attention_2", "eager")
"""Attention implementations the activation model knows (transformers' `attn_implementation`)."""

LOSS_IMPLS = ("full", "bf16", "chunked")
"""`full`: transformers' cross-entropy on fp32-upcast logits; `bf16`: cross-entropy straight on 16-bit logits
(first-generation Qwen's own modelling code); `chunked`: torchtune's chunked loss."""

DEVICES = ("cuda", "cpu")
"""Where the run happens: only dropout's saved mask differs (bool on CUDA, a same-dtype noise tensor on CPU)."""

NF4_BYTES_PER_PARAM = 0.516
"""NF4 with double quantization: 4 bits + 8-bit absmax per 64 weights + fp32 scale per 256 blocks (QLoRA paper)."""

LOSS_BYTES_PER_LOGIT = 12.0
"""Peak bytes per logit of the loss: fp32 log-softmax + its fp32 gradient + the incoming fp32 gradient (measured)."""

LOSS_BYTES_PER_LOGIT_16 = 8.0
"""Cross-entropy on 16-bit logits: the shifted logits copy, the log-softmax, its gradient and the incoming one."""

LOSS_CHUNKS = 8
"""Chunks of torchtune's `CEWithChunkedOutputLoss` (its `num_output_chunks` default)."""

OVERHEAD_FIXED = 0.75 * GIB
"""CUDA context and allocator reserve (docs/memory.md, "The overhead term": 0.5-1 GB)."""

OVERHEAD_FRACTION = 0.08
"""Allocator fragmentation as a share of everything else (docs/memory.md, "The overhead term": 5-10%)."""

TIGHT_FRACTION = 0.85
"""An estimate above 85% of VRAM is `tight`: other processes, the display or a long batch can tip it over."""

ATTN_OUTPUT_NAMES = frozenset({"o_proj", "out_proj", "dense", "c_proj", "wo", "o"})
"""Leaf names of attention output projections (their input is the attention output, already saved)."""

_NORMS_PER_LAYER = {"gemma2": 4, "gemma3": 4, "gemma3_text": 4, "olmo2": 2}
"""RMSNorms per decoder layer where it is not the usual 2 (Gemma 2/3 put norms before and after each block)."""

_QK_NORM = frozenset({"gemma3", "gemma3_text", "qwen3", "qwen3_moe", "olmo2"})
"""Model types that RMS-normalise queries and keys per head."""


@dataclass(frozen=True)
class MemoryPart:
    """One named share of the peak."""

    key: str
    """Stable key: `weights`, `trainable`, `activations`, `logits`, `overhead`."""
    label: str
    """Display name."""
    bytes: int
    """Size in bytes."""
    detail: str
    """The formula with this run's numbers plugged in."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON friendly)."""
        return {"key": self.key, "label": self.label, "bytes": self.bytes, "detail": self.detail}


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak training memory as parts, and how it compares with the VRAM."""

    parts: tuple[MemoryPart, ...]
    """Weights, trainable state, activations, logits/loss and overhead, in that order."""
    total_bytes: int
    """Sum of the parts."""
    vram_bytes: int | None
    """VRAM it is compared with; None when unknown."""
    verdict: str
    """`fits`, `tight`, `will_not_fit`, or `unknown` when no VRAM is known (see `verdict_for`)."""
    headroom_bytes: int | None
    """VRAM minus total (negative when it will not fit); None when no VRAM is known."""
    settings: dict[str, Any] = field(hash=False)
    """The inputs the estimate was made from."""

    def part(self, key: str) -> MemoryPart:
        """The part with this key."""
        return next(p for p in self.parts if p.key == key)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON friendly)."""
        return {
            "parts": [p.to_dict() for p in self.parts],
            "total_bytes": self.total_bytes,
            "vram_bytes": self.vram_bytes,
            "verdict": self.verdict,
            "headroom_bytes": self.headroom_bytes,
            "settings": dict(self.settings),
        }


@dataclass(frozen=True)
class FitStep:
    """One out-of-memory remedy applied on the way to fitting, with the estimate after it."""

    description: str
    """What changed, e.g. `batch 4 -> 1, accumulation 4 -> 16`."""
    changes: dict[str, Any] = field(hash=False)
    """TrainingPlan field -> new value (empty for the closing note when nothing more helps)."""
    estimate: MemoryEstimate = field(hash=False)
    """The estimate with this and every earlier step applied."""

    def __post_init__(self) -> None:
        if not isinstance(self.estimate, MemoryEstimate):
            raise ValueError("`estimate` must be a MemoryEstimate")


def verdict_for(total_bytes: int, vram_bytes: int | None) -> str:
    """`unknown` without VRAM; `fits` up to 85% of it; `tight` up to 100%; else `will_not_fit`."""
    if vram_bytes is None:
        return "unknown"
    if total_bytes <= TIGHT_FRACTION * vram_bytes:
        return "fits"
    return "tight" if total_bytes <= vram_bytes else "will_not_fit"


def resolve_targets(inv: ModelInventory, target_modules: list[str]) -> list[LinearKind]:
    """The layer kinds a PEFT target list adapts: PEFT's matching rules (`lora_tui.core.models.modules.check_targets`),
    which raise UserError naming the model's modules when a name matches nothing."""
    return [k for k in check_targets(inv, list(target_modules)) if k.layer_type != "embedding"]


def layer_activation_bytes(inv: ModelInventory, targets: list[LinearKind], *, seq_len: int, dtype: str = "bf16",
                           lora_r: int = 16, lora_dropout: float = 0.05, use_dora: bool = False,
                           attn: str = "sdpa", adapter_dtype: str = "fp32", device: str = "cuda") -> float:
    """Bytes autograd saves per token in one decoder layer of a frozen base with LoRA on `targets`.

    Derived from what each op keeps for backward (torch 2.13 / transformers 5.24 / peft 0.21 sources):
    RMSNorm keeps its fp32 input (4 x width); SDPA/flash attention keep q, k, v (k and v at key/value-head width),
    the output and an fp32 log-sum-exp per head; eager attention keeps q and the head-repeated k and v, the fp32
    softmax and its bf16 copy (6 x heads x sequence) instead; a gated MLP keeps gate, up and the activation's
    output (3 x intermediate x 2 B). Frozen linears keep nothing. A LoRA module keeps its input cast to the adapter
    dtype (one copy per module when the dtypes differ, otherwise the shared input), with dropout > 0 the dropped
    copy plus the mask, and the rank-r input of lora_B; DoRA also keeps the base and LoRA outputs.
    """
    c = DTYPE_BYTES[dtype]
    a = DTYPE_BYTES[adapter_dtype]
    h, n_h, n_kv, d = inv.hidden_size, inv.num_attention_heads, inv.num_key_value_heads, inv.head_dim
    inter = _intermediate(inv)
    norms = _NORMS_PER_LAYER.get(inv.model_type, 2) * 4 * h
    if inv.model_type in _QK_NORM:
        norms += 4 * (n_h + n_kv) * d
    if attn == "eager":
        attention = 6 * n_h * seq_len + 3 * c * n_h * d
    else:
        attention = c * (2 * n_h * d + 2 * n_kv * d) + 4 * n_h
    mlp = (3 if _is_gated(inv) else 1) * c * inter
    return norms + attention + mlp + _lora_saved_bytes(inv, targets, c=c, a=a, lora_r=lora_r,
                                                        lora_dropout=lora_dropout, use_dora=use_dora,
                                                        attn=attn, device=device)


def _lora_saved_bytes(inv: ModelInventory, targets: list[LinearKind], *, c: int, a: int, lora_r: int,
                      lora_dropout: float, use_dora: bool, attn: str, device: str) -> float:
    """Per token per layer: what the LoRA branches of the targeted modules keep (see layer_activation_bytes)."""
    layer_kinds = [k for k in targets if k.group != "output"]
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


def estimate_memory(inv: ModelInventory, *, lora_r: int, target_modules: list[str], batch_size: int, seq_len: int,
                    dtype: str = "bf16", gradient_checkpointing: bool = True, lora_dropout: float = 0.05,
                    use_dora: bool = False, attn: str = "sdpa", load_in_4bit: bool = False,
                    adapter_dtype: str = "fp32", vram_bytes: int | None = None, loss: str = "full",
                    device: str = "cuda", kbit_upcast: bool = True) -> MemoryEstimate:
    """Peak training memory of a LoRA run on `inv` with these settings (see the module docstring).

    Beyond the TrainingPlan's settings: `attn` (sdpa, flash_attention_2, eager), `load_in_4bit` (QLoRA),
    `adapter_dtype` (PEFT keeps fp32 adapters by default; older PEFT and torchtune use the base dtype), `loss`
    (see LOSS_IMPLS), `device` (cuda or cpu: dropout's mask) and `kbit_upcast` (PEFT's
    `prepare_model_for_kbit_training` casts non-quantised weights to fp32 for bitsandbytes, not for GPTQ).
    """
    settings = {
        "lora_r": lora_r, "target_modules": list(target_modules), "batch_size": batch_size, "seq_len": seq_len,
        "dtype": dtype, "gradient_checkpointing": gradient_checkpointing, "lora_dropout": lora_dropout,
        "use_dora": use_dora, "attn": attn, "load_in_4bit": load_in_4bit, "adapter_dtype": adapter_dtype,
        "loss": loss, "device": device, "kbit_upcast": kbit_upcast,
    }
    _validate(settings)
    targets = resolve_targets(inv, list(target_modules))
    parts = [
        _weights_part(inv, dtype, load_in_4bit, kbit_upcast),
        _trainable_part(targets, lora_r, use_dora, adapter_dtype),
        _activations_part(inv, targets, settings),
        _logits_part(inv, batch_size, seq_len, loss),
    ]
    subtotal = sum(p.bytes for p in parts)
    overhead = int(OVERHEAD_FIXED + OVERHEAD_FRACTION * subtotal)
    parts.append(MemoryPart("overhead", "CUDA context and fragmentation", overhead,
                            f"{fmt_gib(OVERHEAD_FIXED)} + {OVERHEAD_FRACTION:.0%} x {fmt_gib(subtotal)}"))
    total = subtotal + overhead
    return MemoryEstimate(parts=tuple(parts), total_bytes=total, vram_bytes=vram_bytes,
                          verdict=verdict_for(total, vram_bytes),
                          headroom_bytes=None if vram_bytes is None else vram_bytes - total, settings=settings)


def _validate(s: dict[str, Any]) -> None:
    checks = [
        ("lora_r", isinstance(s["lora_r"], int) and s["lora_r"] > 0, "a positive integer"),
        ("batch_size", isinstance(s["batch_size"], int) and s["batch_size"] > 0, "a positive integer"),
        ("seq_len", isinstance(s["seq_len"], int) and s["seq_len"] > 0, "a positive integer"),
        ("dtype", s["dtype"] in DTYPE_BYTES, f"one of {', '.join(DTYPE_BYTES)}"),
        ("adapter_dtype", s["adapter_dtype"] in DTYPE_BYTES, f"one of {', '.join(DTYPE_BYTES)}"),
        ("lora_dropout", 0 <= s["lora_dropout"] < 1, "in [0, 1)"),
        ("attn", s["attn"] in ATTN_IMPLS, f"one of {', '.join(ATTN_IMPLS)}"),
        ("loss", s["loss"] in LOSS_IMPLS, f"one of {', '.join(LOSS_IMPLS)}"),
        ("device", s["device"] in DEVICES, f"one of {', '.join(DEVICES)}"),
    ]
    for name, ok, want in checks:
        if not ok:
            raise UserError(f"memory estimate: `{name}` must be {want}, got {s[name]!r}")


def _weights_part(inv: ModelInventory, dtype: str, load_in_4bit: bool, kbit_upcast: bool) -> MemoryPart:
    c = DTYPE_BYTES[dtype]
    tied = " (tied embeddings once)" if inv.tie_word_embeddings else ""
    if not load_in_4bit:
        return MemoryPart("weights", "Frozen base weights", inv.total_params * c,
                          f"{inv.total_params:,} params x {c} B ({dtype}){tied}")
    quantised = sum(k.count * k.in_features * k.out_features for k in inv.linears
                    if k.group != "output" and k.layer_type == "linear")
    rest = inv.total_params - quantised
    other = 4 if kbit_upcast else c
    why = "fp32 after prepare_model_for_kbit_training" if kbit_upcast else dtype
    size = int(quantised * NF4_BYTES_PER_PARAM) + rest * other
    return MemoryPart("weights", "Frozen base weights (4-bit)", size,
                      f"{quantised:,} linear weights x {NF4_BYTES_PER_PARAM} B (NF4) + {rest:,} other params x "
                      f"{other} B ({why}){tied}")


def _trainable_part(targets: list[LinearKind], lora_r: int, use_dora: bool, adapter_dtype: str) -> MemoryPart:
    a = DTYPE_BYTES[adapter_dtype]
    params = sum(k.lora_params(lora_r) for k in targets)
    extra = ""
    if use_dora:
        mags = sum(k.count * k.out_features for k in targets)
        params += mags
        extra = f" incl. {mags:,} DoRA magnitudes"
    return MemoryPart("trainable", "LoRA weights, gradients and AdamW state", params * 4 * a,
                      f"{params:,} params{extra} x 4 (weight, grad, Adam m, v) x {a} B ({adapter_dtype})")


def _activations_part(inv: ModelInventory, targets: list[LinearKind], s: dict[str, Any]) -> MemoryPart:
    c = DTYPE_BYTES[s["dtype"]]
    tokens = s["batch_size"] * s["seq_len"]
    full = layer_activation_bytes(inv, targets, seq_len=s["seq_len"], dtype=s["dtype"], lora_r=s["lora_r"],
                                  lora_dropout=s["lora_dropout"], use_dora=s["use_dora"], attn=s["attn"],
                                  adapter_dtype=s["adapter_dtype"], device=s["device"])
    per_h = full / inv.hidden_size
    final_norm = 4 * inv.hidden_size * tokens
    if s["gradient_checkpointing"]:
        size = int(inv.num_layers * tokens * c * inv.hidden_size + tokens * full + final_norm)
        detail = (f"{inv.num_layers} layers x {tokens:,} tok x {c} x {inv.hidden_size} (layer inputs) + one layer "
                  f"recomputed: {tokens:,} tok x {inv.hidden_size} x {per_h:.1f} B + final norm")
        return MemoryPart("activations", "Activations (gradient checkpointing)", size, detail)
    size = int(inv.num_layers * tokens * full + final_norm)
    detail = (f"{inv.num_layers} layers x {s['batch_size']} x {s['seq_len']} tok x {inv.hidden_size} x "
              f"{per_h:.1f} B + final norm")
    return MemoryPart("activations", "Activations", size, detail)


def _logits_part(inv: ModelInventory, batch_size: int, seq_len: int, loss: str) -> MemoryPart:
    logits = batch_size * seq_len * inv.vocab_size
    if loss == "chunked":
        per = 2 + LOSS_BYTES_PER_LOGIT / LOSS_CHUNKS
        return MemoryPart("logits", "Logits and loss (chunked)", int(logits * per),
                          f"{batch_size} x {seq_len} tok x {inv.vocab_size:,} vocab x (2 B bf16 logits + "
                          f"{LOSS_BYTES_PER_LOGIT:g} B / {LOSS_CHUNKS} chunks)")
    per = LOSS_BYTES_PER_LOGIT_16 if loss == "bf16" else LOSS_BYTES_PER_LOGIT
    return MemoryPart("logits", "Logits and loss", int(logits * per),
                      f"{batch_size} x {seq_len} tok x {inv.vocab_size:,} vocab x {per:g} B")


# ---- the guide's out-of-memory remedies, applied until the estimate fits ---------------------------------


def plan_estimate(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int | None = None) -> MemoryEstimate:
    """The estimate for a TrainingPlan's settings (precision `auto` is taken as bf16)."""
    return estimate_memory(
        inv, lora_r=plan.lora_r, target_modules=plan.target_modules, batch_size=plan.per_device_train_batch_size,
        seq_len=plan.max_seq_length, dtype="bf16" if plan.precision == "auto" else plan.precision,
        gradient_checkpointing=plan.gradient_checkpointing, lora_dropout=plan.lora_dropout,
        use_dora=plan.use_dora, vram_bytes=vram_bytes)


def fit_to_vram(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int) -> list[FitStep]:
    """Apply the out-of-memory remedies in order until the estimate is at most the VRAM ('fits' or 'tight').

    Returns the steps taken, each with the estimate after it; empty when the plan already fits. When every
    remedy is used and it still does not fit, a last step with no changes says so and shows what loading the
    base model in 4-bit (QLoRA) would need instead.
    """
    from lora_tui.core.advice import oom_remedies

    current = plan
    estimate = plan_estimate(inv, current, vram_bytes)
    steps: list[FitStep] = []
    while estimate.verdict == "will_not_fit":
        remedies = oom_remedies(current, inv)
        if not remedies:
            break
        current = TrainingPlan.from_dict({**current.to_dict(), **remedies[0].changes}, where="memory fit")
        estimate = plan_estimate(inv, current, vram_bytes)
        steps.append(FitStep(remedies[0].description, dict(remedies[0].changes), estimate))
    if estimate.verdict != "will_not_fit":
        return steps
    s = dict(estimate.settings)
    s.pop("vram_bytes", None)
    qlora = estimate_memory(inv, **{**s, "load_in_4bit": True}, vram_bytes=vram_bytes)
    largest = max(estimate.parts, key=lambda p: p.bytes)
    steps.append(FitStep(
        f"still does not fit: needs {fmt_gib(estimate.total_bytes)} of {fmt_gib(vram_bytes)} after every remedy "
        f"(largest part: {largest.label.lower()}, {fmt_gib(largest.bytes)}); loading the base model in 4-bit "
        f"(QLoRA) would need {fmt_gib(qlora.total_bytes)} ({qlora.verdict.replace('_', ' ')}); a shorter "
        f"--max-seq-length shrinks activations and logits",
        {}, qlora))
    return steps
