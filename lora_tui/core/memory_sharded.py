"""The per-GPU memory of a run on several processes: replicated under DDP, sharded under FSDP, and which of the two
a run takes when the person does not say (`choose`, resolve's rule for `distributed`).

Under DDP every GPU holds the whole estimate (`core.memory`). Under FSDP (full sharding) the frozen weights and
the LoRA weights with their gradients and AdamW state are split over the shards (every process of the run), and
while a decoder layer computes, its weights are gathered whole: FSDP2 prefetches the next layer, so two layers'
weights are held unsharded at once. Activations and logits stay per GPU; the CUDA context and fragmentation
overhead is the estimate's own rule (`core.memory`: a fixed part + 8%) over what one GPU holds.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from lora_tui.core.memory import (
    OVERHEAD_FIXED,
    OVERHEAD_FRACTION,
    MemoryEstimate,
    MemoryPart,
    verdict_for,
)
from lora_tui.core.units import fmt_gib
from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.core.dataset.tokens import TokenStats
    from lora_tui.core.models.inventory import ModelInventory
    from lora_tui.core.plan import TrainingPlan

SHARDED = ("weights", "trainable")
"""The estimate's parts FSDP splits over the shards."""

GATHERED_LAYERS = 2
"""Decoder layers held unsharded at once under FSDP2 (the computing one and the prefetched next one)."""


def sharded(est: MemoryEstimate, shards: int, num_layers: int) -> MemoryEstimate:
    """The estimate per GPU under FSDP with `shards` processes (the estimate itself for one)."""
    if shards <= 1:
        return est
    parts: list[MemoryPart] = []
    for part in est.parts:
        if part.key in SHARDED:
            parts.append(dataclasses.replace(part, bytes=part.bytes // shards, label=part.label + _(" (sharded)"),
                                             detail=_("{detail}, / {shards} shards (FSDP)").format(
                                                 detail=part.detail, shards=shards)))
        else:
            parts.append(part)
    weights = est.part("weights").bytes
    layers = min(GATHERED_LAYERS, max(num_layers, 1))
    gathered = weights * layers // max(num_layers, 1)
    parts.append(MemoryPart("gathered", _("Decoder layers gathered whole (FSDP)"), gathered,
                            _("{layers} of {total} layers' weights unsharded while they compute").format(
                                layers=layers, total=num_layers)))
    if est.settings.get("device") != "cpu":  # fragmentation is a share of what this GPU holds, not of the whole
        rest = sum(p.bytes for p in parts if p.key != "overhead")
        parts = [dataclasses.replace(p, bytes=int(OVERHEAD_FIXED + OVERHEAD_FRACTION * rest),
                                     detail=f"{fmt_gib(OVERHEAD_FIXED)} + {OVERHEAD_FRACTION:.0%} x {fmt_gib(rest)}")
                 if p.key == "overhead" else p for p in parts]
    total = sum(p.bytes for p in parts)
    vram = est.vram_bytes
    return dataclasses.replace(est, parts=tuple(parts), total_bytes=total, verdict=verdict_for(total, vram),
                               headroom_bytes=None if vram is None else vram - total,
                               settings={**est.settings, "distributed": "fsdp", "shards": shards})


def per_gpu(est: MemoryEstimate, shards: int, num_layers: int) -> dict[str, Any]:
    """Both strategies' per-GPU totals and verdicts, for the dry run and launch.json."""
    fsdp = sharded(est, shards, num_layers)
    return {"shards": shards, "ddp_bytes": est.total_bytes, "ddp_verdict": est.verdict,
            "fsdp_bytes": fsdp.total_bytes, "fsdp_verdict": fsdp.verdict}


@dataclasses.dataclass(frozen=True)
class PlanMemory:
    """A plan's memory estimate: the whole of it, what one GPU holds under the plan's strategy, and for several
    processes both strategies' per-GPU figures."""

    whole: MemoryEstimate
    """The whole estimate: what every GPU holds under DDP."""
    one_gpu: MemoryEstimate
    """What one GPU holds under the plan's strategy (`whole` under DDP or for one process)."""
    per_gpu: dict[str, Any] | None
    """`per_gpu`'s figures for a run on several processes, else None."""


def plan_memory(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int | None, *, lengths: Any = None,
                loss: str | None = None) -> PlanMemory:
    """`core.memory.plan_estimate` of `plan` (`lengths`, `loss` passed on), then what one GPU of the plan holds."""
    from lora_tui.core.memory import plan_estimate

    whole = plan_estimate(inv, plan, vram_bytes, lengths=lengths, loss=loss)
    layers = int(getattr(inv, "num_layers", 1) or 1)
    return PlanMemory(whole, sharded(whole, fsdp_shards(plan), layers),
                      per_gpu(whole, plan.world_size, layers) if plan.world_size > 1 else None)


def fsdp_shards(plan: TrainingPlan) -> int:
    """The shards of the plan's weights: every process of the run under fsdp, else 1 (DDP, or one process: each
    GPU holds the whole estimate). `sharded(est, fsdp_shards(plan), layers)` is what one GPU of the plan holds."""
    return int(plan.world_size) if plan.distributed == "fsdp" else 1


def per_gpu_text(per: dict[str, Any]) -> str:
    """`per_gpu`'s figures as one line in the language shown (the Advisor, `recommend` and `plan`)."""
    from lora_tui.core.recommend import verdict_words

    return _("Per-GPU memory: ddp {ddp} ({ddp_verdict}, the whole base on every GPU); fsdp {fsdp} ({fsdp_verdict}, "
             "weights and LoRA state / {shards} shards)").format(
                 ddp=fmt_gib(per["ddp_bytes"]), ddp_verdict=verdict_words(per["ddp_verdict"]),
                 fsdp=fmt_gib(per["fsdp_bytes"]), fsdp_verdict=verdict_words(per["fsdp_verdict"]),
                 shards=per["shards"])


@dataclasses.dataclass(frozen=True)
class Strategy:
    """The strategy a run on several processes takes when the person did not choose one, and why."""

    distributed: str
    """ddp or fsdp."""
    reason: str
    """Why, with the per-GPU figures compared."""
    changes: dict[str, tuple[Any, str]] = dataclasses.field(default_factory=dict)
    """Other settings the choice changes: field -> (value, reason) (4-bit loading off when FSDP fits in 16-bit)."""


def uncompared(world: int, inv: ModelInventory | None, vram_bytes: int | None) -> str | None:
    """ddp's reason when the two strategies cannot be compared (one process, no GPU, no model known); else None."""
    if world < 2:
        return _("ddp: one process, nothing to shard")
    if vram_bytes is None:
        return _("ddp: no GPU here, and fsdp shards a model only across CUDA GPUs")
    if inv is None:
        return _("ddp: no model known yet to estimate; fsdp is chosen only when DDP does not fit one GPU")
    return None


def choose(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int, *, lengths: TokenStats | None = None,
           four_bit_way_out: bool = False, fixed: frozenset[str] = frozenset()) -> Strategy:
    """fsdp only when DDP's per-GPU estimate does not fit one GPU and FSDP's does, as is or with the guide's
    out-of-memory remedies (`core.fit`, its fit verdict); else ddp. `four_bit_way_out`: the recommendation loaded the
    base in 4-bit because 16-bit did not fit one GPU; when FSDP fits the 16-bit base, it is sharded in 16-bit
    instead. A remedy never changes a setting in `fixed` (the ones the person set)."""
    if four_bit_way_out and plan.load_in_4bit:
        fitted = _sharded_fit(inv, dataclasses.replace(plan, load_in_4bit=False), vram_bytes, lengths, fixed)
        if fitted is not None:
            changes, said = fitted
            return Strategy("fsdp", _(
                "fsdp: in 16-bit, DDP needs {ddp} of {vram} on every GPU and will not fit; FSDP over {shards} "
                "processes needs {fsdp} per GPU, so the base is sharded in 16-bit instead of loaded in 4-bit").format(
                    **said), {"load_in_4bit": (False, _(
                        "off: FSDP over {shards} processes fits the 16-bit base ({fsdp} of {vram} per GPU; DDP would "
                        "need {ddp}), so 4-bit loading is not needed").format(**said)), **changes})
    (ddp_fits, fsdp_fits), said = _compare(inv, plan, vram_bytes, lengths)
    if ddp_fits:
        return Strategy("ddp", _("ddp: DDP fits one GPU ({ddp} of {vram}, the whole base on every GPU); FSDP over "
                                 "{shards} processes ({fsdp} per GPU) is chosen only when DDP does not fit").format(
                                     **said))
    fitted = None if fsdp_fits else _sharded_fit(inv, plan, vram_bytes, lengths, fixed)
    if fsdp_fits or fitted is not None:
        changes, said = fitted or ({}, said)
        return Strategy("fsdp", _("fsdp: DDP needs {ddp} of {vram} on every GPU (the whole base on each) and will "
                                  "not fit; FSDP over {shards} processes shards the weights and LoRA state: {fsdp} "
                                  "per GPU").format(**said), changes)
    return Strategy("ddp", _("ddp: neither fits one GPU of {vram}: DDP needs {ddp}, FSDP over {shards} processes "
                             "{fsdp}; see the memory remedies").format(**said))


def _sharded_fit(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int, lengths: TokenStats | None,
                 fixed: frozenset[str]) -> tuple[dict[str, tuple[Any, str]], dict[str, Any]] | None:
    """The guide's out-of-memory remedies FSDP's per-GPU estimate of `plan` needs to fit while DDP's does not
    (field -> (value, reason), empty when none), and the figures after them; None when FSDP does not fit that way
    or a remedy would change a setting in `fixed`."""
    from lora_tui.core.fit import fit_to_vram
    from lora_tui.core.plan import TrainingPlan

    steps = fit_to_vram(inv, plan, vram_bytes, seq=lengths, shards=plan.world_size)
    if any(step.kind not in ("remedy", "sequence") or fixed & set(step.changes) for step in steps):
        return None  # FSDP needs more than the guide's remedies (or to change what the person set)
    changes: dict[str, tuple[Any, str]] = {}
    for step in steps:
        why = _("the guide's out-of-memory remedy that FSDP over {shards} processes needs to fit one GPU: "
                "{step}").format(step=step.description, shards=plan.world_size)
        changes.update({name: (value, why) for name, value in step.changes.items()})
    fitted = TrainingPlan.from_dict({**plan.to_dict(), **{k: v for k, (v, _why) in changes.items()}},
                                    where="memory fit")
    fit, said = _compare(inv, fitted, vram_bytes, lengths)
    return (changes, said) if fit == (False, True) else None


def as_set(distributed: str) -> str:
    """The reason of a strategy the person set."""
    return _("{value}: as set (--distributed)").format(value=distributed)


def as_planned(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int | None, *, given: bool) -> Strategy:
    """The strategy of `plan` with every other setting as it is (`lora-tui plan`): a given one kept (the reason says
    when DDP does not fit one GPU and FSDP would), else `choose` with no remedy allowed."""
    from lora_tui.core.plan import TrainingPlan

    why = uncompared(plan.world_size, inv, vram_bytes)
    if given:
        warning = given_does_not_fit(inv, plan, vram_bytes) if why is None and vram_bytes is not None else None
        return Strategy(plan.distributed, warning or as_set(plan.distributed))
    if why is not None or vram_bytes is None:
        return Strategy("ddp", why or "")
    return choose(inv, dataclasses.replace(plan, distributed="ddp"), vram_bytes,
                  fixed=frozenset(TrainingPlan.field_names()))


def given_does_not_fit(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int, *,
                       lengths: TokenStats | None = None) -> str | None:
    """For a given `ddp` that does not fit one GPU while FSDP would: the warning, with both figures; else None."""
    if plan.distributed != "ddp":
        return None
    fit, said = _compare(inv, plan, vram_bytes, lengths)
    if fit != (False, True):
        return None
    return _("ddp as you set it, but DDP needs {ddp} of {vram} on every GPU and will not fit, while FSDP over {shards} "
             "processes needs {fsdp}: --distributed fsdp").format(**said)


def _compare(inv: ModelInventory, plan: TrainingPlan, vram_bytes: int, lengths: TokenStats | None
             ) -> tuple[tuple[bool, bool], dict[str, Any]]:
    """(whether DDP fits, whether FSDP fits) per GPU, and the figures a reason names."""
    from lora_tui.core.fit import fits, total_text
    from lora_tui.core.memory import plan_estimate

    ddp = plan_estimate(inv, plan, vram_bytes, lengths=lengths)
    fsdp = sharded(ddp, plan.world_size, int(inv.num_layers or 1))
    return (fits(ddp), fits(fsdp)), {"ddp": total_text(ddp), "fsdp": total_text(fsdp), "vram": fmt_gib(vram_bytes),
                                     "shards": plan.world_size}
