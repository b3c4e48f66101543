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
from lora_tui.i18n import N_, _, pgettext

PEFT_PARAMETER_DROPOUT = N_("PEFT adapts {model}'s fused expert weights ({params}) through target_parameters, whose "
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
        notes.append(_("Memory: {description}.").format(description=final.description))
    return [step.to_dict() for step in steps]


def expert_dropout(values: MutableMapping[str, Any], reasons: MutableMapping[str, str],
                    inventory: ModelInventory) -> tuple[Any, str] | None:
    """Step 1 (also without a VRAM figure): dropout 0 where the targets reach fused experts; returns the dropout
    and reason it replaced (None when nothing changed)."""
    params = expert_parameters(inventory, values["target_modules"])
    if not params or values["lora_dropout"] == 0:
        return None
    before = (values["lora_dropout"], reasons["lora_dropout"])
    why = _(PEFT_PARAMETER_DROPOUT).format(model=inventory.model_id, params=", ".join(params))
    values["lora_dropout"] = 0.0
    reasons["lora_dropout"] = _("0: {why} (the tables said {value}: {before})").format(
        why=why, value=fmt_value(before[0]), before=before[1])
    return before


def _checkpointing(values: MutableMapping[str, Any], reasons: MutableMapping[str, str], inventory: ModelInventory,
                   vram_bytes: int, loss: str | None) -> None:
    """Step 2: gradient checkpointing only where the estimate needs it."""
    off = plan_estimate(inventory, TrainingPlan(**{**values, "gradient_checkpointing": False}), vram_bytes,
                        loss=loss)
    on = plan_estimate(inventory, TrainingPlan(**{**values, "gradient_checkpointing": True}), vram_bytes, loss=loss)
    if off.verdict == "fits":
        values["gradient_checkpointing"] = False
        reasons["gradient_checkpointing"] = _(
            "off: without it the estimate is {off} of {vram}, which fits with headroom (at most 85%), so "
            "recomputing activations (about 30% more time) would buy nothing").format(
                off=fmt_gib(off.total_bytes), vram=fmt_gib(vram_bytes))
        return
    from lora_tui.core.recommend import verdict_words

    values["gradient_checkpointing"] = True
    reasons["gradient_checkpointing"] = _(
        "on: without it the estimate is {off} of {vram} ({verdict}); with it {on} (activations shrink to the layer "
        "inputs for about 30% more time)").format(off=fmt_gib(off.total_bytes), vram=fmt_gib(vram_bytes),
                                                  verdict=verdict_words(off.verdict), on=fmt_gib(on.total_bytes))


def sharded_checkpointing_reason(values: MutableMapping[str, Any], inventory: ModelInventory, vram_bytes: int,
                                 lengths: Any = None) -> str:
    """Gradient checkpointing's reason (it stays on) with what one GPU holds under FSDP over every process of the
    run, with and without it (the worst padded batch of the data's token `lengths`, where known): the one-GPU
    figures `_checkpointing` gave are not this run's."""
    from lora_tui.core.memory_sharded import plan_memory
    from lora_tui.core.recommend import verdict_words

    without, with_it = (TrainingPlan(**{**values, "distributed": "fsdp", "gradient_checkpointing": gc})
                        for gc in (False, True))
    off, on = (plan_memory(inventory, plan, vram_bytes, lengths=lengths).one_gpu for plan in (without, with_it))
    figures = {"off": fmt_gib(off.total_bytes), "on": fmt_gib(on.total_bytes), "vram": fmt_gib(vram_bytes),
               "shards": with_it.world_size, "verdict": verdict_words(off.verdict)}
    if off.verdict == "fits":
        return _("on: under FSDP over {shards} processes one GPU holds {on} with it; without it {off} of {vram} would "
                 "fit too (--no-gradient-checkpointing, about 30% faster)").format(**figures)
    return _("on: under FSDP over {shards} processes one GPU would hold {off} of {vram} without it ({verdict}); with "
             "it {on} (activations shrink to the layer inputs for about 30% more time)").format(**figures)


def _apply_step(step: FitStep, values: MutableMapping[str, Any], reasons: MutableMapping[str, str],
                vram_bytes: int) -> None:
    """One fit step's changes into the recommendation, each with the reason naming the step."""
    if step.kind == "four_bit":
        why = _("on: {description}").format(description=step.description.replace("{", "{{").replace("}", "}}"))
    elif step.kind == "sequence":
        why = _("{old} -> {new}, {why}").replace("{why}", step.description.split('(', 1)[-1].rstrip(')'))
    else:
        why = _("{old} -> {new} by the guide's out-of-memory remedies, so the estimate fits {gb} GB").replace(
            "{gb}", f"{vram_bytes / 1e9:.1f}")
    for key, value in step.changes.items():
        if key not in values or values[key] == value:
            continue
        text = why.format(old=fmt_value(values[key]), new=fmt_value(value))
        before = reasons.get(key) or pgettext("value source", "default")
        reasons[key] = _("{text} (before: {before})").format(text=text, before=before) if step.kind != "four_bit" \
            else text
        values[key] = value
