"""Exact LoRA parameter arithmetic from a module inventory: per module kind and in total.

For each adapted module PEFT adds A (in x r) and B (r x out): r x (in + out) parameters; a fused expert weight
holds one A/B pair per expert. DoRA adds a magnitude vector of out_features per adapted module. The numbers equal
`get_peft_model(...).get_nb_trainable_parameters()` (tests/core/test_peft_parity.py checks this against PEFT).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from lora_tui.core.models.modules import (
    ALL_LINEAR,
    LinearKind,
    ModelInventory,
    resolve_parameters,
    resolve_targets,
)
from lora_tui.errors import UserError
from lora_tui.i18n import Phrase, _

SAFETENSORS_HEADER_BYTES_PER_TENSOR = 160
"""Approximate JSON header bytes per tensor in a PEFT adapter_model.safetensors.

Each entry is `"base_model.model.<path>.lora_A.weight":{"dtype":"F32","shape":[r,in],"data_offsets":[a,b]}`;
with module paths of 30-60 characters that is 120-200 bytes. The estimate is small next to the tensors.
"""


@dataclass(frozen=True)
class ModuleRow:
    """One adapted module kind in the per-layer table."""

    name: str
    """Display name: the leaf name (prefixed `vision:` for a vision tower's modules)."""
    in_features: int
    """Input features of one module."""
    out_features: int
    """Output features of one module."""
    count: int
    """Modules of this kind (usually one per decoder layer)."""
    original_params: int
    """Frozen parameters in all modules of this kind (weights and biases)."""
    lora_params: int
    """Trainable parameters LoRA (and DoRA's magnitude, when on) adds to all modules of this kind."""
    share: float
    """lora_params / original_params, as a fraction."""
    group: str
    """attention, mlp, experts, vision, output, embedding or other."""
    path: str = ""
    """Module path with layer indices as `*`."""
    experts: int = 1
    """Experts per fused parameter (1 for ordinary modules)."""


@dataclass(frozen=True)
class LoraMath:
    """What a LoRA configuration adds to a model, per module kind and in total."""

    model_id: str
    """The model the inventory describes."""
    r: int
    """LoRA rank."""
    lora_alpha: float
    """LoRA alpha."""
    scaling: float
    """The factor the update is multiplied by: alpha / r, or alpha / sqrt(r) with rsLoRA."""
    scaling_label: str
    """Where the scaling sits among the guide's alpha/r styles."""
    rows: tuple[ModuleRow, ...]
    """One row per adapted module kind, in model order."""
    trainable_params: int
    """Parameters PEFT marks trainable (all LoRA matrices, plus DoRA magnitudes)."""
    total_params: int
    """Base model parameters plus the LoRA parameters (PEFT's "all params")."""
    base_params: int
    """Parameters of the base model alone (tied weights once)."""
    trainable_pct: float
    """100 x trainable / total."""
    adapter_bytes_fp32: int
    """adapter_model.safetensors size with fp32 tensors: 4 bytes per parameter plus an estimated header."""
    adapter_bytes_bf16: int
    """The same with bf16 tensors: 2 bytes per parameter plus the header."""
    unmatched: tuple[str, ...]
    """Requested target names that match no module (PEFT refuses a config where nothing matches)."""
    use_dora: bool = False
    """Whether DoRA magnitude vectors are counted."""
    use_rslora: bool = False
    """Whether the scaling is rank-stabilised (alpha / sqrt(r))."""
    target_modules: tuple[str, ...] = ()
    """The requested target_modules."""
    target_parameters: tuple[str, ...] = ()
    """The requested target_parameters (fused expert weights)."""
    tensors: int = 0
    """Tensors the adapter file holds (lora_A, lora_B and magnitude per adapted module)."""
    notes: tuple[str, ...] = ()
    """Things PEFT does differently from the plain rule for this model (e.g. MoE expert remapping)."""

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"`r` must be >= 1, got {self.r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; `modules` holds one row per module kind."""
        data = asdict(self)
        data["modules"] = data.pop("rows")
        data["unmatched"] = list(self.unmatched)
        data["target_modules"] = list(self.target_modules)
        data["target_parameters"] = list(self.target_parameters)
        return data


def scaling_label(scaling: float) -> str:
    """The guide's alpha/r style for a scaling (conservative 1.0, standard 2.0, aggressive 4.0) or where it falls."""
    from lora_tui.core.tables import scaling_label as guide_label

    return guide_label(scaling)


def scaling_of(r: int, lora_alpha: float, use_rslora: bool = False) -> float:
    """alpha / r, or alpha / sqrt(r) with rsLoRA (as PEFT computes `scaling`)."""
    return lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r


def _row(kind: LinearKind, r: int, use_dora: bool) -> ModuleRow:
    """A kind's row: its frozen and added parameters."""
    added = kind.lora_params(r) + (kind.count * kind.out_features if use_dora else 0)
    original = kind.original_params
    return ModuleRow(kind.label, kind.in_features, kind.out_features, kind.count, original, added,
                     added / original if original else 0.0, kind.group, kind.path, kind.experts)


def _disambiguate(rows: list[ModuleRow]) -> list[ModuleRow]:
    """Rows whose display names collide get the path's last two components instead."""
    names = [row.name for row in rows]
    out = []
    for row in rows:
        if names.count(row.name) > 1 and row.path:
            row = ModuleRow(**{**asdict(row), "name": ".".join(row.path.split(".")[-2:])})
        out.append(row)
    return out


def compute_lora_math(
    inv: ModelInventory,
    *,
    r: int,
    lora_alpha: float,
    target_modules: list[str],
    use_dora: bool = False,
    use_rslora: bool = False,
    target_parameters: list[str] | None = None,
) -> LoraMath:
    """Per-kind and total LoRA parameters for `LoraConfig(r, lora_alpha, target_modules, ...)` on `inv`.

    Unknown names are reported in `unmatched` rather than raised, so a live editor can show them; use
    `modules.check_targets` to turn them into a user error.
    """
    if r < 1:
        raise ValueError(f"`r` must be >= 1, got {r}")
    if lora_alpha <= 0:
        raise ValueError(f"`lora_alpha` must be > 0, got {lora_alpha}")
    modules, params, rank_mult, notes = peft_moe_targets(inv, list(target_modules), list(target_parameters or []))
    kinds, unmatched = resolve_targets(inv, modules) if modules else ([], [])
    param_kinds, unmatched_params = resolve_parameters(inv, params)
    if use_dora and param_kinds:
        raise UserError(_("--use-dora: PEFT's DoRA cannot adapt fused expert weights (target_parameters); "
                          "target attention modules only, or turn DoRA off."))
    order = {id(k): i for i, k in enumerate((*inv.linears, *inv.embeddings))}
    chosen = sorted([*kinds, *param_kinds], key=lambda k: order[id(k)])
    rows = _disambiguate([_row(k, r * _mult(k, rank_mult), use_dora and k.layer_type != "parameter")
                          for k in chosen])
    trainable = sum(row.lora_params for row in rows)
    total = inv.total_params + trainable
    tensors = sum(k.count * (3 if use_dora else 2) for k in chosen)
    header = 8 + SAFETENSORS_HEADER_BYTES_PER_TENSOR * tensors if tensors else 0
    scaling = scaling_of(r, lora_alpha, use_rslora)
    return LoraMath(
        model_id=inv.model_id, r=r, lora_alpha=lora_alpha, scaling=scaling, scaling_label=scaling_label(scaling),
        rows=tuple(rows), trainable_params=trainable, total_params=total, base_params=inv.total_params,
        trainable_pct=100.0 * trainable / total, adapter_bytes_fp32=4 * trainable + header,
        adapter_bytes_bf16=2 * trainable + header, unmatched=tuple([*unmatched, *unmatched_params]),
        use_dora=use_dora, use_rslora=use_rslora, target_modules=tuple(target_modules),
        target_parameters=tuple(target_parameters or ()), tensors=tensors, notes=tuple(notes),
    )


def _mult(kind: LinearKind, rank_mult: dict[str, int]) -> int:
    """Rank multiplier PEFT applies to a fused parameter (2 when gate and up projections were fused)."""
    if kind.layer_type != "parameter":
        return 1
    return next((m for name, m in rank_mult.items() if kind.path.endswith("." + name)), 1)


def peft_moe_targets(inv: ModelInventory, target_modules: list[str], target_parameters: list[str]
                     ) -> tuple[list[str], list[str], dict[str, int], list[str]]:
    """Apply PEFT's transformers-v5 MoE remapping (`_convert_peft_config_moe`) to the requested targets.

    For MoE model types transformers converts from v4 checkpoints (Mixtral, Qwen2/3-MoE, DeepSeek, ...), PEFT
    moves expert and router names from `target_modules` to `target_parameters` on the fused weights, and doubles
    r (and alpha) for a weight that fuses two projections. Returns (target_modules, target_parameters,
    {fused name: rank multiplier}, notes). Other models pass through unchanged.
    """
    conv = inv.moe_conversion
    if not conv or not target_modules:
        return target_modules, target_parameters, {}, []
    mapping: dict[str, str] = conv["target_module_mapping"]
    fused: dict[str, list[str]] = conv["fused_targets"]
    if [t.lower() for t in target_modules] == [ALL_LINEAR]:
        kinds, _unmatched = resolve_targets(inv, [ALL_LINEAR])
        target_modules = sorted({k.name for k in kinds} | mapping.keys())
    params = list(target_parameters)
    remaining: list[str] = []
    present: dict[str, set[str]] = {name: set() for name in fused}
    for target in target_modules:
        old = next((o for o in mapping if target == o or target.endswith("." + o)), None)
        if old is None:
            remaining.append(target)
            continue
        if mapping[old] not in params:
            params.append(mapping[old])
        present.setdefault(mapping[old], set()).add(old)
    rank_mult: dict[str, int] = {}
    for name, olds in fused.items():
        got = present.get(name, set())
        if 0 < len(got) < len(olds):
            raise UserError(_("--target-modules: {given} needs {others} too: {model} fuses them into {fused}.").format(
                given=", ".join(sorted(got)), others=", ".join(sorted(set(olds) - got)), model=inv.model_id,
                fused=name))
        if len(got) == len(olds) > 1:
            rank_mult[name] = len(olds)
    notes: list[str] = []  # Phrases: English in JSON, in the language shown where printed
    if params != list(target_parameters) and rank_mult:
        notes.append(Phrase("PEFT adapts the fused expert/router weights {params} through target_parameters: this "
                            "needs lora_dropout=0 and no DoRA; {fused} gets rank {mult}r.", params=", ".join(params),
                            fused=", ".join(rank_mult), mult=max(rank_mult.values())))
    elif params != list(target_parameters):
        notes.append(Phrase("PEFT adapts the fused expert/router weights {params} through target_parameters: this "
                            "needs lora_dropout=0 and no DoRA.", params=", ".join(params)))
    return remaining, params, rank_mult, notes
