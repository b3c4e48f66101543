"""The recommendation's memory-aware steps, with a model and a VRAM figure (`recommend`'s step 7).

In this order, each changing the recommended values and saying why:

1. Fused experts: when the targets reach a mixture-of-experts model's fused expert weights (PEFT remaps
   gate_proj/up_proj/down_proj onto them through `target_parameters`), dropout is 0, which PEFT requires there.
2. Gradient checkpointing: off when the estimate without it fits with headroom (at most 85% of the VRAM), on
   otherwise, with both figures.
3. The fit loop (`core.fit.fit_to_vram`): the guide's out-of-memory remedies that are needed and no more, a
   shorter sequence where it saves more than a capacity cut, and 4-bit loading when 16-bit cannot fit.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from lora_tui.core.fit import FitStep, SeqFacts, fit_to_vram
from lora_tui.core.lora_math import peft_moe_targets
from lora_tui.core.memory import plan_estimate
from lora_tui.core.models.modules import ModelInventory
from lora_tui.core.plan import TrainingPlan, fmt_value
from lora_tui.core.units import fmt_gib

PEFT_PARAMETER_DROPOUT = ("PEFT adapts {model}'s fused expert weights ({params}) through target_parameters, whose "
                          "ParamWrapper cannot apply dropout (it raises for lora_dropout != 0)")
"""Why dropout is 0 when the targets reach fused expert weights."""


def expert_parameters(inventory: ModelInventory, target_modules: list[str]) -> list[str]:
    """The fused expert weights PEFT adapts for these target_modules (empty for dense models)."""
    return peft_moe_targets(inventory, list(target_modules), [])[1]


def advise_memory(values: MutableMapping[str, Any], reasons: MutableMapping[str, str], notes: list[str],
                  inventory: ModelInventory, vram_bytes: int, *, loss: str | None = None,
                  seq: SeqFacts | None = None) -> list[dict[str, Any]]:
    """Apply the module docstring's three steps to recommended `values` (TrainingPlan fields) in place; returns
    the fit steps as dicts (description, changes, total_bytes, verdict, kind)."""
    dropout_before = expert_dropout(values, reasons, inventory)
    _checkpointing(values, reasons, inventory, vram_bytes, loss)
    plan = TrainingPlan(**dict(values))
    steps = fit_to_vram(inventory, plan, vram_bytes, loss=loss, seq=seq)
    for step in steps:
        _apply_step(step, values, reasons, vram_bytes)
    if dropout_before is not None and not expert_parameters(inventory, values["target_modules"]):
        values["lora_dropout"], reasons["lora_dropout"] = dropout_before
    final = steps[-1] if steps else None
    if final is not None and final.kind == "note":
        notes.append(f"Memory: {final.description}.")
    return [step.to_dict() for step in steps]


def expert_dropout(values: MutableMapping[str, Any], reasons: MutableMapping[str, str],
                    inventory: ModelInventory) -> tuple[Any, str] | None:
    """Step 1 (also without a VRAM figure): dropout 0 where the targets reach fused experts; returns the dropout
    and reason it replaced (None when nothing changed)."""
    params = expert_parameters(inventory, values["target_modules"])
    if not params or values["lora_dropout"] == 0:
        return None
    before = (values["lora_dropout"], reasons["lora_dropout"])
    why = PEFT_PARAMETER_DROPOUT.format(model=inventory.model_id, params=", ".join(params))
    values["lora_dropout"] = 0.0
    reasons["lora_dropout"] = f"0: {why} (the tables said {fmt_value(before[0])}: {before[1]})"
    return before


def _checkpointing(values: MutableMapping[str, Any], reasons: MutableMapping[str, str], inventory: ModelInventory,
                   vram_bytes: int, loss: str | None) -> None:
    """Step 2: gradient checkpointing only where the estimate needs it."""
    off = plan_estimate(inventory, TrainingPlan(**{**values, "gradient_checkpointing": False}), vram_bytes,
                        loss=loss)
    on = plan_estimate(inventory, TrainingPlan(**{**values, "gradient_checkpointing": True}), vram_bytes, loss=loss)
    of_vram = f"of {fmt_gib(vram_bytes)}"
    if off.verdict == "fits":
        values["gradient_checkpointing"] = False
        reasons["gradient_checkpointing"] = (
            f"off: without it the estimate is {fmt_gib(off.total_bytes)} {of_vram}, which fits with headroom (at "
            "most 85%), so recomputing activations (about 30% more time) would buy nothing")
        return
    values["gradient_checkpointing"] = True
    reasons["gradient_checkpointing"] = (
        f"on: without it the estimate is {fmt_gib(off.total_bytes)} {of_vram} ({off.verdict.replace('_', ' ')}); "
        f"with it {fmt_gib(on.total_bytes)} (activations shrink to the layer inputs for about 30% more time)")


def _apply_step(step: FitStep, values: MutableMapping[str, Any], reasons: MutableMapping[str, str],
                vram_bytes: int) -> None:
    """One fit step's changes into the recommendation, each with the reason naming the step."""
    if step.kind == "four_bit":
        why = f"on: {step.description}"
    elif step.kind == "sequence":
        why = f"{{old}} -> {{new}}, {step.description.split('(', 1)[-1].rstrip(')')}"
    else:
        why = (f"{{old}} -> {{new}} by the guide's out-of-memory remedies, so the estimate fits "
               f"{vram_bytes / 1e9:.1f} GB")
    for key, value in step.changes.items():
        if key not in values or values[key] == value:
            continue
        text = why.format(old=fmt_value(values[key]), new=fmt_value(value))
        reasons[key] = f"{text} (before: {reasons.get(key, 'default')})" if step.kind != "four_bit" else text
        values[key] = value
