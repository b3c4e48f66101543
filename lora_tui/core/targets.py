"""The guide's target-module patterns (minimal, standard, maximum) mapped onto one model's modules.

The patterns themselves are data in `presets/guide.toml`; this module is the only place that turns a pattern into
module names for a model (a fused `qkv_proj` in Phi-3 stands for q, k and v) and that names the pattern a target
list is.
"""

from __future__ import annotations

from lora_tui.core.models.inventory import ModelInventory
from lora_tui.core.tables import guide
from lora_tui.errors import UserError
from lora_tui.i18n import _

CUSTOM = "custom"
"""The pattern name of a target list that is none of the guide's patterns."""

FUSED = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
         "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}
"""Separate projection names -> the fused module that holds them in models such as Phi-3."""


def pattern_names() -> tuple[str, ...]:
    """The guide's pattern keys in the guide's order (minimal, standard, maximum)."""
    return tuple(guide().patterns)


def map_targets(modules: list[str], inventory: ModelInventory | None) -> tuple[list[str], str]:
    """Adapt module names to the model: fused qkv/gate_up where the model fuses them; names it lacks dropped.

    Returns the names and a note for the reason ("" when nothing changed; a clause in the language shown that the
    reason's own template places, in English "; mapped to ..."). Without an inventory the names are returned as
    they are.
    """
    if inventory is None:
        return list(modules), ""
    present = {k.name for k in inventory.linears if k.group != "output" and k.layer_type != "parameter"}
    experts = _expert_names(inventory)
    mapped: list[str] = []
    for name in modules:
        target = name if name in present else experts.get(name) or FUSED.get(name, name)
        if (target in present or target in experts.values()) and target not in mapped:
            mapped.append(target)
    if mapped == list(modules):
        return mapped, ""
    missing = [n for n in modules if n not in present and FUSED.get(n) not in present and n not in experts]
    names = ", ".join(mapped) or _("none")
    if missing:
        return mapped, _("; mapped to this model's modules ({modules}); it has no {missing}").format(
            modules=names, missing=", ".join(missing))
    return mapped, _("; mapped to this model's modules ({modules})").format(modules=names)


def _expert_names(inventory: ModelInventory) -> dict[str, str]:
    """Guide names -> the names PEFT remaps onto a mixture-of-experts model's fused expert weights.

    PEFT (transformers-v5 MoE conversion, `inventory.moe_conversion`) takes the checkpoint's expert names in
    target_modules and adapts the fused weights through target_parameters: gate_proj/up_proj/down_proj for Qwen-MoE,
    w1/w3/w2 for Mixtral. The fused weights' own names (`gate_up_proj` as a 3-D parameter) are no modules and must
    never be used as targets. Models without the conversion (e.g. gpt-oss) have no such names.
    """
    conv = inventory.moe_conversion or {}
    mapping: dict[str, str] = conv.get("target_module_mapping") or {}
    fused: dict[str, list[str]] = conv.get("fused_targets") or {}
    names: dict[str, str] = {old: old for old in mapping if old in ("gate_proj", "up_proj", "down_proj")}
    for role in ("gate_proj", "up_proj", "down_proj"):
        if role in names:
            continue
        olds = fused.get(FUSED.get(role, role)) or [o for o, new in mapping.items() if new == role]
        position = {"gate_proj": 0, "up_proj": 1}.get(role, 0)
        if len(olds) > position:
            names[role] = olds[position]
    return names


def pattern_modules(pattern: str, inventory: ModelInventory | None) -> tuple[list[str], str]:
    """A guide pattern's module names for this model, and the note saying how they were mapped."""
    patterns = guide().patterns
    if pattern not in patterns:
        raise UserError(_("target pattern {pattern}: unknown; choose one of {choices}").format(
            pattern=repr(pattern), choices=", ".join(patterns)))
    return map_targets(list(patterns[pattern].modules), inventory)


def pattern_of(targets: list[str] | tuple[str, ...], inventory: ModelInventory | None) -> str:
    """The guide's pattern these targets are on this model (order ignored), or `custom`."""
    chosen = set(targets)
    for key in pattern_names():
        if set(pattern_modules(key, inventory)[0]) == chosen:
            return key
    return CUSTOM
