"""Peak training memory of a LoRA run, as named parts (the fit loop that acts on it is `lora_tui.core.fit`).

Peak = W + S + A + T + O (docs/memory.md has the method, sources and the calibration table):

- W, frozen weights: parameters x bytes of the dtype (tied embeddings once). With 4-bit loading the decoder's
  linear layers take NF4 with double quantization (4 bits + one 8-bit absmax per 64 weights + a second-level
  scale: about 0.52 bytes per weight); everything else (embeddings, LM head, norms, biases, fused expert weights)
  is cast to fp32 by PEFT's `prepare_model_for_kbit_training`.
- S, trainable state: LoRA parameters (and DoRA magnitudes) x 4 tensors (weight, gradient, AdamW m and v) x the
  adapter dtype's bytes: 16 B per parameter with PEFT's default fp32 adapters (`autocast_adapter_dtype=True`).
  The parameters are `lora_math`'s, which equal PEFT's, fused experts reached through `target_parameters` included.
- A, activations saved for backward: derived per decoder layer from the module inventory
  (`lora_tui.core.activations`); with gradient checkpointing each layer keeps only its input plus one layer's full
  activations while it is recomputed.
- T, logits and loss, for the loss path the runner takes (`LOSS_IMPLS`): TRL's SFTTrainer patches the model with a
  fused LM head that scores tokens in tiles and never builds the logits (`fused`); a plain Transformers loop, label
  smoothing or a custom loss builds them (`full`: 12 B per logit).
- O, overhead: CUDA context and allocator fragmentation: 0.75 GiB + 8% of the rest (docs/memory.md,
  "The overhead term": 0.5-1 GB + 5-10%). On the CPU there is no CUDA context; instead the run's resident set
  grows by a measured fixed cost of the CPU runtime (`CPU_RUNTIME_FIXED`), and with 4-bit loading by the weights
  bitsandbytes reads at full precision before quantising them (`_cpu_parts`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lora_tui.core.activations import DTYPE_BYTES, expert_weight_bytes, is_moe, layer_activation_bytes
from lora_tui.core.lora_math import compute_lora_math, peft_moe_targets
from lora_tui.core.models.modules import LinearKind, ModelInventory, check_targets, resolve_parameters
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.precision import planned_precision
from lora_tui.core.units import GIB, fmt_gib
from lora_tui.errors import UserError
from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.core.hardware.detect import HardwareReport

ATTN_IMPLS = ("sdpa", "flash_attention_2", "eager")
"""Attention implementations the activation model knows (transformers' `attn_implementation`)."""

LOSS_IMPLS = ("fused", "full", "bf16", "chunked")
"""`fused`: TRL's chunked LM head (`add_fused_lm_head`, what `lora-tui train` runs); `full`: transformers'
cross-entropy on fp32-upcast logits (a plain loop, label smoothing, a custom loss); `bf16`: cross-entropy straight
on 16-bit logits (first-generation Qwen's own modelling code); `chunked`: torchtune's chunked loss."""

CLI_LOSS_IMPLS = ("fused", "full")
"""The loss paths `plan` and `recommend` offer as `--loss-impl`."""

DEVICES = ("cuda", "cpu")
"""Where the run happens: dropout's mask (bool on CUDA, a same-dtype noise tensor on CPU) and TRL's tile kernel."""

NF4_BYTES_PER_PARAM = 0.516
"""NF4 with double quantization: 4 bits + 8-bit absmax per 64 weights + fp32 scale per 256 blocks (QLoRA paper)."""

LOSS_BYTES_PER_LOGIT = 12.0
"""Peak bytes per logit of the loss: fp32 log-softmax + its fp32 gradient + the incoming fp32 gradient (measured)."""

LOSS_BYTES_PER_LOGIT_16 = 8.0
"""Cross-entropy on 16-bit logits: the shifted logits copy, the log-softmax, its gradient and the incoming one."""

LOSS_CHUNKS = 8
"""Chunks of torchtune's `CEWithChunkedOutputLoss` (its `num_output_chunks` default)."""

FUSED_TILE_TOKENS = 4096
"""Tokens per tile of TRL's fused LM head (`trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE`)."""

FUSED_TILE_VOCAB = 32768
"""Vocabulary entries per tile of TRL's fused LM head (`trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE`)."""

FUSED_BYTES_PER_TOKEN = 48
"""fp32 values per scored token in TRL's fused head: seven running statistics (max, sums, target logit), the
log-probability, entropy and log-normaliser it saves, and their gradients: 12 x 4 B."""

FUSED_CPU_TILE_COPIES = 8
"""fp32 tile-sized temporaries alive at once in the fused head's torch fallback (CPU, no Triton): its backward
builds y, z, log p, p, the gradient and the target mask as whole tiles. A 1,024-token step took about 1,071 MiB
(measured, docs/memory.md) against 8 x 128 MiB tiles."""

QLORA_ADAPTER_DTYPE = "bf16"
"""TRL's SFTTrainer casts the LoRA weights of a quantised model to bf16 (the QLoRA paper's recipe)."""

OVERHEAD_FIXED = 0.75 * GIB
"""CUDA context and allocator reserve (docs/memory.md, "The overhead term": 0.5-1 GB)."""

OVERHEAD_FRACTION = 0.08
"""Allocator fragmentation as a share of everything else (docs/memory.md, "The overhead term": 5-10%)."""

CPU_RUNTIME_FIXED = 150 * 1024 * 1024
"""What a CPU training run's resident set grows by beyond the tensors the other parts count (kernel workspaces,
per-thread allocator arenas, the Trainer's state). Measured for this project with torch 2.13 (CPU build): peak
resident-set growth minus the estimated parts was 151 MiB on the demo model and 154 MiB on a 77M-parameter
Llama (batch 1-2, 75-token batches, 3-4 steps); docs/memory.md, "Estimated against measured"."""

TIGHT_FRACTION = 0.85
"""An estimate above 85% of VRAM is `tight`: other processes, the display or a long batch can tip it over."""


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
    """The inputs the estimate was made from (with `precision_reason` when made for a plan)."""

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


def verdict_for(total_bytes: int, vram_bytes: int | None) -> str:
    """`unknown` without VRAM; `fits` up to 85% of it; `tight` up to 100%; else `will_not_fit`."""
    if vram_bytes is None:
        return "unknown"
    if total_bytes <= TIGHT_FRACTION * vram_bytes:
        return "fits"
    return "tight" if total_bytes <= vram_bytes else "will_not_fit"


@functools.lru_cache(maxsize=1)
def runner_loss_impl() -> str:
    """The loss path `lora-tui train` takes with the installed TRL: `fused` when its SFTTrainer calls the model with
    `fused_lm_head=True` (TRL's chunked head), else `full`. Reads TRL's source without importing it."""
    spec = importlib.util.find_spec("trl")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        try:
            source = (Path(location) / "trainer" / "sft_trainer.py").read_text(encoding="utf-8")
        except OSError:
            continue
        return "fused" if "fused_lm_head=True" in source else "full"
    return "full"


def resolve_targets(inv: ModelInventory, target_modules: list[str]) -> list[LinearKind]:
    """The layer kinds a PEFT target list adapts, fused expert weights that PEFT remaps the names onto included
    (`lora_math.peft_moe_targets`); raises UserError naming the model's modules when a name matches nothing."""
    modules, params, _, _ = peft_moe_targets(inv, list(target_modules), [])
    kinds = [k for k in check_targets(inv, modules) if k.layer_type != "embedding"] if modules else []
    return kinds + resolve_parameters(inv, params)[0]


def estimate_memory(inv: ModelInventory, *, lora_r: int, target_modules: list[str], batch_size: int, seq_len: int,
                    dtype: str = "bf16", gradient_checkpointing: bool = True, lora_dropout: float = 0.05,
                    use_dora: bool = False, attn: str = "sdpa", load_in_4bit: bool = False,
                    adapter_dtype: str = "fp32", vram_bytes: int | None = None, loss: str = "fused",
                    device: str = "cuda", kbit_upcast: bool = True) -> MemoryEstimate:
    """Peak training memory of a LoRA run on `inv` with these settings (see the module docstring).

    Beyond the TrainingPlan's settings: `attn` (sdpa, flash_attention_2, eager), `load_in_4bit` (QLoRA),
    `adapter_dtype` (PEFT keeps fp32 adapters by default; older PEFT and torchtune use the base dtype), `loss`
    (see LOSS_IMPLS), `device` (cuda or cpu) and `kbit_upcast` (PEFT's `prepare_model_for_kbit_training` casts
    non-quantised weights to fp32 for bitsandbytes, not for GPTQ).
    """
    settings = {
        "lora_r": lora_r, "target_modules": list(target_modules), "batch_size": batch_size, "seq_len": seq_len,
        "dtype": dtype, "gradient_checkpointing": gradient_checkpointing, "lora_dropout": lora_dropout,
        "use_dora": use_dora, "attn": attn, "load_in_4bit": load_in_4bit, "adapter_dtype": adapter_dtype,
        "loss": loss, "device": device, "kbit_upcast": kbit_upcast,
    }
    _validate(settings)
    targets = resolve_targets(inv, list(target_modules))
    upcast = load_in_4bit and kbit_upcast
    parts = [
        _weights_part(inv, dtype, load_in_4bit, kbit_upcast),
        _trainable_part(inv, lora_r, list(target_modules), use_dora, adapter_dtype),
        _activations_part(inv, targets, settings),
        _logits_part(inv, batch_size, seq_len, loss, dtype=dtype, device=device, head_fp32=upcast),
    ]
    subtotal = sum(p.bytes for p in parts)
    if device == "cpu":  # no CUDA context on the CPU: its runtime's measured fixed cost instead
        overhead = int(OVERHEAD_FRACTION * subtotal)
        parts.append(MemoryPart("overhead", _("Allocator fragmentation (CPU)"), overhead,
                                _("{share} x {rest} (no CUDA context on the CPU)").format(
                                    share=f"{OVERHEAD_FRACTION:.0%}", rest=fmt_gib(subtotal))))
        parts.extend(_cpu_parts(inv, load_in_4bit, dtype))
    else:
        overhead = int(OVERHEAD_FIXED + OVERHEAD_FRACTION * subtotal)
        parts.append(MemoryPart("overhead", _("CUDA context and fragmentation"), overhead,
                                f"{fmt_gib(OVERHEAD_FIXED)} + {OVERHEAD_FRACTION:.0%} x {fmt_gib(subtotal)}"))
    total = sum(p.bytes for p in parts)
    return MemoryEstimate(parts=tuple(parts), total_bytes=total, vram_bytes=vram_bytes,
                          verdict=verdict_for(total, vram_bytes),
                          headroom_bytes=None if vram_bytes is None else vram_bytes - total, settings=settings)


def _cpu_parts(inv: ModelInventory, load_in_4bit: bool, dtype: str) -> list[MemoryPart]:
    """The CPU run's fixed runtime cost, and with 4-bit loading the full-precision weights read before quantising
    (both measured). bitsandbytes on the CPU reads each weight at full precision before quantising it and glibc
    keeps the freed pages: the measured peak exceeded the other parts by the full-precision weights (296 MiB on a
    77M Llama) plus the fixed cost. On CUDA the copies are per tensor and freed."""
    parts = [MemoryPart("cpu_runtime", _("CPU runtime (measured fixed cost)"), CPU_RUNTIME_FIXED,
                        _("kernel workspaces and per-thread allocator arenas (torch CPU build, measured)"))]
    if load_in_4bit:
        c = DTYPE_BYTES[dtype]
        parts.append(MemoryPart("cpu_4bit_load", _("Weights read before quantising (CPU)"), inv.total_params * c,
                                _("{params} params x {bytes} B ({dtype}), pages the allocator keeps").format(
                                    params=f"{inv.total_params:,}", bytes=c, dtype=dtype)))
    return parts


def _validate(s: dict[str, Any]) -> None:
    for name in ("lora_r", "batch_size", "seq_len"):
        if not (isinstance(s[name], int) and s[name] > 0):
            raise UserError(_("memory estimate: `{name}` must be a positive integer, got {value}").format(
                name=name, value=repr(s[name])))
    if not 0 <= s["lora_dropout"] < 1:
        raise UserError(_("memory estimate: `{name}` must be in [0, 1), got {value}").format(
            name="lora_dropout", value=repr(s["lora_dropout"])))
    for name, choices in (("dtype", DTYPE_BYTES), ("adapter_dtype", DTYPE_BYTES), ("attn", ATTN_IMPLS),
                          ("loss", LOSS_IMPLS), ("device", DEVICES)):
        if s[name] not in choices:
            raise UserError(_("memory estimate: `{name}` must be one of {choices}, got {value}").format(
                name=name, choices=", ".join(choices), value=repr(s[name])))


def quantised_params(inv: ModelInventory) -> int:
    """Weights bitsandbytes loads in 4-bit: the decoder's nn.Linear layers (not the LM head, not Conv1D, not fused
    expert parameters, which are no nn.Linear)."""
    return sum(k.count * k.in_features * k.out_features for k in inv.linears
               if k.group != "output" and k.layer_type == "linear")


def four_bit_problem(inv: ModelInventory) -> str | None:
    """Why 4-bit loading cannot help this model (most of its weights are not nn.Linear layers), else None."""
    share = quantised_params(inv) / inv.total_params
    if share >= 0.5:
        return None
    what = (_("its experts are fused 3-D weights, not nn.Linear layers") if is_moe(inv) else
            _("most of its weights are not nn.Linear layers (e.g. GPT-2's Conv1D, or the embeddings)"))
    return _("bitsandbytes would quantise only {share} of {model}'s weights: {what}, and PEFT upcasts the rest to "
             "fp32").format(share=f"{share:.0%}", model=inv.model_id, what=what)


def _weights_part(inv: ModelInventory, dtype: str, load_in_4bit: bool, kbit_upcast: bool) -> MemoryPart:
    c = DTYPE_BYTES[dtype]
    tied = _(" (tied embeddings once)") if inv.tie_word_embeddings else ""
    if not load_in_4bit:
        return MemoryPart("weights", _("Frozen base weights"), inv.total_params * c,
                          _("{params} params x {bytes} B ({dtype}){tied}").format(
                              params=f"{inv.total_params:,}", bytes=c, dtype=dtype, tied=tied))
    quantised = quantised_params(inv)
    rest = inv.total_params - quantised
    other = 4 if kbit_upcast else c
    why = _("fp32 after prepare_model_for_kbit_training") if kbit_upcast else dtype
    size = int(quantised * NF4_BYTES_PER_PARAM) + rest * other
    return MemoryPart("weights", _("Frozen base weights (4-bit)"), size,
                      _("{quantised} linear weights x {nf4} B (NF4) + {rest} other params x {bytes} B ({why}){tied}")
                      .format(quantised=f"{quantised:,}", nf4=NF4_BYTES_PER_PARAM, rest=f"{rest:,}", bytes=other,
                              why=why, tied=tied))


def _trainable_part(inv: ModelInventory, lora_r: int, target_modules: list[str], use_dora: bool,
                    adapter_dtype: str) -> MemoryPart:
    a = DTYPE_BYTES[adapter_dtype]
    math = compute_lora_math(inv, r=lora_r, lora_alpha=2 * lora_r, target_modules=target_modules, use_dora=use_dora)
    params = math.trainable_params
    extras = []
    if use_dora:
        extras.append(_("{count} DoRA magnitudes").format(
            count=f"{sum(row.count * row.out_features for row in math.rows):,}"))
    experts = sum(row.lora_params for row in math.rows if row.group == "experts")
    if experts:
        extras.append(_("{count} on fused experts (target_parameters)").format(count=f"{experts:,}"))
    extra = _(" incl. {extras}").format(extras=_(", ").join(extras)) if extras else ""
    return MemoryPart("trainable", _("LoRA weights, gradients and AdamW state"), params * 4 * a,
                      _("{params} params{extra} x 4 (weight, grad, Adam m, v) x {bytes} B ({dtype})").format(
                          params=f"{params:,}", extra=extra, bytes=a, dtype=adapter_dtype))


def _activations_part(inv: ModelInventory, targets: list[LinearKind], s: dict[str, Any]) -> MemoryPart:
    upcast = s["load_in_4bit"] and s["kbit_upcast"]
    residual = "fp32" if upcast else s["dtype"]
    r = DTYPE_BYTES[residual]
    tokens = s["batch_size"] * s["seq_len"]
    params = [k for k in targets if k.layer_type == "parameter"]
    full = layer_activation_bytes(inv, targets, seq_len=s["seq_len"], dtype=s["dtype"], lora_r=s["lora_r"],
                                  lora_dropout=s["lora_dropout"], use_dora=s["use_dora"], attn=s["attn"],
                                  adapter_dtype=s["adapter_dtype"], device=s["device"], residual_dtype=residual,
                                  experts_targeted=bool(params))
    per_h = full / inv.hidden_size
    final_norm = 4 * inv.hidden_size * tokens
    experts = expert_weight_bytes(inv, params, 4 if upcast else DTYPE_BYTES[s["dtype"]])
    if s["gradient_checkpointing"]:
        expert_note = _(" + expert weights materialised per layer (W + B @ A) and their gradient: {size} each").format(
            size=fmt_gib(experts)) if params else ""
        size = int(inv.num_layers * tokens * r * inv.hidden_size + tokens * full + final_norm + 2 * experts)
        detail = _("{layers} layers x {tokens} tok x {bytes} x {hidden} (layer inputs) + one layer recomputed: "
                   "{tokens} tok x {hidden} x {per_h} B + final norm{experts}").format(
                       layers=inv.num_layers, tokens=f"{tokens:,}", bytes=r, hidden=inv.hidden_size,
                       per_h=f"{per_h:.1f}", experts=expert_note)
        return MemoryPart("activations", _("Activations (gradient checkpointing)"), size, detail)
    expert_note = _(" + expert weights materialised in every layer (W + B @ A) and their gradient: {size} each"
                    ).format(size=fmt_gib(experts)) if params else ""
    size = int(inv.num_layers * (tokens * full + experts) + experts + final_norm)
    detail = _("{layers} layers x {batch} x {seq} tok x {hidden} x {per_h} B + final norm{experts}").format(
        layers=inv.num_layers, batch=s["batch_size"], seq=s["seq_len"], hidden=inv.hidden_size,
        per_h=f"{per_h:.1f}", experts=expert_note)
    return MemoryPart("activations", _("Activations"), size, detail)


def _logits_part(inv: ModelInventory, batch_size: int, seq_len: int, loss: str, *, dtype: str, device: str,
                 head_fp32: bool) -> MemoryPart:
    tokens = batch_size * seq_len
    logits = tokens * inv.vocab_size
    if loss == "fused":
        return _fused_head_part(inv, tokens, dtype=dtype, device=device, head_fp32=head_fp32)
    if loss == "chunked":
        per = 2 + LOSS_BYTES_PER_LOGIT / LOSS_CHUNKS
        return MemoryPart("logits", _("Logits and loss (chunked)"), int(logits * per),
                          _("{batch} x {seq} tok x {vocab} vocab x (2 B bf16 logits + {bytes} B / {chunks} chunks)")
                          .format(batch=batch_size, seq=seq_len, vocab=f"{inv.vocab_size:,}",
                                  bytes=f"{LOSS_BYTES_PER_LOGIT:g}", chunks=LOSS_CHUNKS))
    per = LOSS_BYTES_PER_LOGIT_16 if loss == "bf16" else LOSS_BYTES_PER_LOGIT
    return MemoryPart("logits", _("Logits and loss (full logits)"), int(logits * per),
                      _("{batch} x {seq} tok x {vocab} vocab x {bytes} B").format(
                          batch=batch_size, seq=seq_len, vocab=f"{inv.vocab_size:,}", bytes=f"{per:g}"))


def _fused_head_part(inv: ModelInventory, tokens: int, *, dtype: str, device: str, head_fp32: bool) -> MemoryPart:
    """TRL's fused LM head: one [tokens x vocabulary] tile of logits at a time (fp32 temporaries of it on the CPU
    fallback), the head's weight slice cast to the compute dtype when the head is fp32 (4-bit upcast), and per token
    the saved hidden state, its fp32 gradient and the gradient's cast, plus a few fp32 statistics."""
    c = DTYPE_BYTES[dtype]
    h = inv.hidden_size
    tile_t, tile_v = min(tokens, FUSED_TILE_TOKENS), min(inv.vocab_size, FUSED_TILE_VOCAB)
    per_tile_elem = FUSED_CPU_TILE_COPIES * 4 if device == "cpu" else c
    tile = tile_t * tile_v * per_tile_elem
    head_copy = tile_v * h * c if head_fp32 and c != 4 else 0
    per_token = h * (c + 4 + c) + FUSED_BYTES_PER_TOKEN
    size = tile + head_copy + tokens * per_token
    kind = _("{copies} fp32 copies").format(copies=FUSED_CPU_TILE_COPIES) if device == "cpu" else f"{c} B"
    copy = _(" + head slice {vocab} x {hidden} x {bytes} B (fp32 head)").format(
        vocab=f"{tile_v:,}", hidden=h, bytes=c) if head_copy else ""
    return MemoryPart("logits", _("Loss (TRL fused LM head, no full logits)"), int(size),
                      _("tile {tile} tok x {vocab} vocab x {kind}{copy} + {tokens} tok x ({hidden} x {bytes} B hidden "
                        "and its gradient + {stats} B fp32 statistics)").format(
                          tile=f"{tile_t:,}", vocab=f"{tile_v:,}", kind=kind, copy=copy, tokens=f"{tokens:,}",
                          hidden=h, bytes=2 * c + 4, stats=FUSED_BYTES_PER_TOKEN))


def plan_estimate(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int | None = None, *,
                  hardware: HardwareReport | None = None, loss: str | None = None,
                  lengths: TokenLengths | None = None, seq_len: int | None = None) -> MemoryEstimate:
    """The estimate for a TrainingPlan's settings, in the precision the training process will use on the planned
    device (`core.precision.planned_precision`), with the loss path `lora-tui train` takes (or `loss`) and, with
    4-bit loading, the adapters in bf16 as TRL casts them.

    With the data's measured token `lengths` the batch is the worst padded one (every example padded to the
    longest, cut at max_seq_length) and the settings carry the typical batch's total (at the median length) and
    a `seq_basis` saying which is which; without them every example is taken as max_seq_length tokens, the worst
    case, and `seq_basis` says so. Packed batches (`batching` packed) fill every row to max_seq_length whatever
    the lengths; grouped and padding-free batches are at most the worst padded one."""
    if lengths is not None and plan.batching != "packed":
        return _with_lengths(inv, plan, vram_bytes, lengths, hardware=hardware, loss=loss)
    precision = planned_precision(plan.precision, inv.model_type, vram_bytes, hardware)
    est = estimate_memory(
        inv, lora_r=plan.lora_r, target_modules=plan.target_modules, batch_size=plan.per_device_train_batch_size,
        seq_len=seq_len or plan.max_seq_length, dtype=precision.dtype,
        gradient_checkpointing=plan.gradient_checkpointing,
        lora_dropout=plan.lora_dropout, use_dora=plan.use_dora, load_in_4bit=plan.load_in_4bit,
        adapter_dtype=QLORA_ADAPTER_DTYPE if plan.load_in_4bit else "fp32", vram_bytes=vram_bytes,
        loss=loss or runner_loss_impl(), device="cpu" if precision.device == "cpu" else "cuda")
    basis = (_("every example taken as {seq} tokens").format(seq=seq_len) if seq_len else
             _("packed rows of max_seq_length {seq} tokens").format(seq=plan.max_seq_length)
             if plan.batching == "packed" else
             _("every example taken as max_seq_length {seq} tokens (no measured lengths: a worst case)").format(
                 seq=plan.max_seq_length))
    return dataclasses.replace(est, settings={**est.settings, "precision_reason": precision.reason,
                                              "planned_device": precision.device, "seq_basis": basis})


class TokenLengths(Protocol):
    """What the estimate reads of a dataset's measured token lengths (core.dataset.tokens.TokenStats has it)."""

    @property
    def median(self) -> int:
        """Median length in tokens."""

    @property
    def max(self) -> int:
        """Longest example in tokens."""


def _with_lengths(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int | None, lengths: TokenLengths, *,
                  hardware: HardwareReport | None, loss: str | None) -> MemoryEstimate:
    """The worst padded batch's estimate, with the typical batch's total beside it in the settings."""
    worst_len = max(1, min(plan.max_seq_length, lengths.max))
    typical_len = max(1, min(plan.max_seq_length, lengths.median))
    worst = plan_estimate(inv, plan, vram_bytes, hardware=hardware, loss=loss, seq_len=worst_len)
    typical = plan_estimate(inv, plan, vram_bytes, hardware=hardware, loss=loss, seq_len=typical_len)
    if lengths.max > plan.max_seq_length:
        basis = _("worst padded batch: every example padded to the longest ({longest} tokens, cut to max_seq_length "
                  "{seq}); a typical batch (median {median} tokens) needs {typical} GiB")
    else:
        basis = _("worst padded batch: every example padded to the longest ({longest} tokens); a typical batch "
                  "(median {median} tokens) needs {typical} GiB")
    basis = basis.format(longest=lengths.max, seq=plan.max_seq_length, median=lengths.median,
                         typical=f"{typical.total_bytes / GIB:.2f}")
    return dataclasses.replace(worst, settings={**worst.settings, "seq_basis": basis,
                                                "typical_seq_len": typical_len,
                                                "typical_total_bytes": typical.total_bytes})
