"""The data model of a model's shape: its adaptable layer kinds (LinearKind) and the whole (ModelInventory).

Pure data with JSON round-trips; `lora_tui.core.models.modules` builds, caches and loads these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

LAYER_TYPES = ("linear", "conv1d", "embedding", "parameter")
"""Kinds of adaptable layer an inventory records."""


@dataclass(frozen=True)
class LinearKind:
    """One kind of adaptable layer (all modules sharing a leaf name and shape)."""

    name: str
    """Leaf module name as PEFT matches it, e.g. `q_proj`, `c_attn`, `gate_up_proj`."""
    in_features: int
    """Input features of one module."""
    out_features: int
    """Output features of one module."""
    count: int
    """How many modules of this kind the model has (usually one per decoder layer)."""
    bias: bool = False
    """Whether the module has a bias vector."""
    group: str = "other"
    """Where it sits: `attention`, `mlp`, `experts` or `output` (the LM head)."""
    layer_type: str = "linear"
    """`linear` (nn.Linear), `conv1d` (GPT-2's transposed Conv1D), `embedding` (nn.Embedding) or `parameter`
    (fused 3-D expert weights, adaptable only through PEFT's `target_parameters`)."""
    path: str = ""
    """Module (or parameter) path with layer indices as `*`, e.g. `model.layers.*.self_attn.q_proj`."""
    experts: int = 1
    """Experts stacked in one fused parameter (`parameter` kinds); 1 for ordinary modules."""

    def __post_init__(self) -> None:
        for name in ("in_features", "out_features", "count", "experts"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.layer_type not in LAYER_TYPES:
            raise ValueError(f"`layer_type` must be one of {LAYER_TYPES}, got {self.layer_type!r}")

    @property
    def original_params(self) -> int:
        """Frozen parameters in all modules of this kind (weights and biases)."""
        per = self.experts * self.in_features * self.out_features + (self.out_features if self.bias else 0)
        return self.count * per

    def lora_params(self, r: int) -> int:
        """Parameters LoRA adds to all modules of this kind at rank r: r x (in + out) each (per expert)."""
        return self.count * self.experts * r * (self.in_features + self.out_features)

    @property
    def label(self) -> str:
        """Short display name: the leaf name, prefixed with the group when it is not a decoder block's own."""
        return f"vision:{self.name}" if self.group == "vision" else self.name

    def matches(self, target: str) -> bool:
        """PEFT's `target_modules` rule for a list entry: the module path equals it or ends with `.` + it.

        Fused expert parameters are not modules, so a `target_modules` entry never matches them.
        """
        if self.layer_type == "parameter":
            return False
        path = self.path or self.name
        return path == target or path.endswith("." + target)

    def matches_parameter(self, target: str) -> bool:
        """PEFT's `target_parameters` rule: the parameter path equals it or ends with `.` + it."""
        if self.layer_type != "parameter":
            return False
        path = self.path or self.name
        return path == target or path.endswith("." + target)


@dataclass(frozen=True)
class ModelInventory:
    """Everything lora-tui needs to know about a model's shape, without its weights."""

    model_id: str
    """Preset name, hub id or local path the inventory was made for."""
    model_type: str
    """transformers `model_type` of the text model, e.g. `llama`, `gemma3_text`, `qwen2`."""
    num_layers: int
    """Decoder layers."""
    hidden_size: int
    """Width of the residual stream."""
    vocab_size: int
    """Rows of the token embedding (and columns of the LM head)."""
    num_attention_heads: int
    """Query heads."""
    num_key_value_heads: int
    """Key/value heads (fewer than query heads under grouped-query attention)."""
    head_dim: int
    """Width of one attention head."""
    intermediate_size: int | None
    """Width of the MLP's hidden layer (per expert for mixture-of-experts models)."""
    total_params: int
    """Parameters of the whole model as `model.parameters()` counts them (tied weights once)."""
    linears: tuple[LinearKind, ...]
    """Every adaptable layer kind inside the decoder layers, plus the LM head (group `output`)."""
    tie_word_embeddings: bool = False
    """Whether the LM head shares the embedding matrix."""
    max_position_embeddings: int | None = None
    """Longest sequence the model was built for."""
    num_experts: int | None = None
    """Experts per MoE layer, for mixture-of-experts models."""
    experts_per_token: int | None = None
    """Experts each token is routed to (the router's top k) in a mixture-of-experts layer; None for dense models."""
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Anything else worth showing (display name, hub id, dtype, notes)."""
    embeddings: tuple[LinearKind, ...] = ()
    """Embedding tables (layer_type `embedding`): PEFT adapts them only when named; never under all-linear."""
    architecture: str = ""
    """The transformers class the inventory was built from, e.g. `Gemma3ForCausalLM`."""
    moe_conversion: dict[str, Any] | None = field(default=None, hash=False)
    """PEFT's v4->v5 MoE target remapping tables for this model type (`target_module_mapping`: old leaf name ->
    fused parameter name; `fused_targets`: fused name -> the old names fused into it), or None."""

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size", "vocab_size", "total_params"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if not self.linears:
            raise ValueError("`linears` must list at least one layer kind")

    def kind(self, name: str) -> LinearKind | None:
        """The layer kind with this leaf name, if any."""
        for k in self.linears:
            if k.name == name:
                return k
        return None

    def module_names(self) -> list[str]:
        """Leaf names a `target_modules` entry can use, in model order (output head and embeddings last)."""
        names: list[str] = []
        ordered = [k for k in self.linears if k.group != "output" and k.layer_type != "parameter"]
        ordered += [k for k in self.linears if k.group == "output"] + list(self.embeddings)
        for k in ordered:
            if k.name not in names:
                names.append(k.name)
        return names

    def parameter_names(self) -> list[str]:
        """Names of fused expert parameters (for PEFT's `target_parameters`), e.g. `experts.gate_up_proj`."""
        return sorted({".".join(k.path.split(".")[-2:]) for k in self.linears if k.layer_type == "parameter"})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the shape `_inventory_build` writes and presets store)."""
        data = dataclasses.asdict(self)
        data.pop("extra")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, model_id: str | None = None,
                  extra: dict[str, Any] | None = None) -> ModelInventory:
        """Rebuild from `to_dict()` output (unknown keys ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        skip = ("linears", "embeddings", "extra")
        kw = {k: v for k, v in data.items() if k in known and k not in skip}
        kinds = [LinearKind(**_kind_kwargs(d)) for d in data["linears"]]
        kw["linears"] = tuple(k for k in kinds if k.layer_type != "embedding")
        kw["embeddings"] = tuple(k for k in kinds if k.layer_type == "embedding") + tuple(
            LinearKind(**_kind_kwargs(d)) for d in data.get("embeddings", ()))
        if model_id is not None:
            kw["model_id"] = model_id
        return cls(**kw, extra=dict(extra or {}))


def _kind_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    """The LinearKind fields of a stored kind dict."""
    known = {f.name for f in dataclasses.fields(LinearKind)}
    return {k: v for k, v in data.items() if k in known}
