"""The per-GPU memory of a run on several processes: replicated under DDP, sharded under FSDP.

Under DDP every GPU holds the whole estimate (`core.memory`). Under FSDP (full sharding) the frozen weights and
the LoRA weights with their gradients and AdamW state are split over the shards (every process of the run), and
while a decoder layer computes, its weights are gathered whole: FSDP2 prefetches the next layer, so two layers'
weights are held unsharded at once. Activations, logits and overhead stay per GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lora_tui.core.memory import MemoryEstimate, MemoryPart, verdict_for
from lora_tui.i18n import _

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
