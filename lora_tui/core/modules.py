"""A model's module inventory: which linear layers it has, their shapes and how many of each.

The inventory is what every count in lora-tui is computed from (LoRA parameters, memory). It is built once per
model by letting transformers construct the module tree on the meta device (no weights, no download) in a
subprocess, and cached; inventories for the preset models ship with lora-tui so the common case is instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    """`linear` (nn.Linear), `conv1d` (GPT-2's transposed Conv1D) or `parameter` (fused expert weights)."""

    @property
    def original_params(self) -> int:
        """Frozen parameters in all modules of this kind (weights and biases)."""
        return self.count * (self.in_features * self.out_features + (self.out_features if self.bias else 0))

    def lora_params(self, r: int) -> int:
        """Parameters LoRA adds to all modules of this kind at rank r: r x (in + out) each."""
        return self.count * r * (self.in_features + self.out_features)


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
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Anything else worth showing (display name, hub id, dtype, notes)."""

    def kind(self, name: str) -> LinearKind | None:
        """The layer kind with this leaf name, if any."""
        for k in self.linears:
            if k.name == name:
                return k
        return None
