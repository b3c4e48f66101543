"""How much memory a merge needs, and on which device to run it. Light: pure arithmetic, no torch.

A merge (`merge_and_unload`) holds the base weights in the chosen dtype, the adapter's A and B matrices (PEFT
keeps them in fp32), and while it folds one module it materialises that module's delta B @ A in fp32 and a
cast copy of the weight. On a GPU the CUDA context and allocator fragmentation come on top (about 0.5-1 GB plus
5-10%: docs/memory.md, "The overhead term").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lora_tui.core.units import MIB, fmt_gib_or_mib
from lora_tui.errors import UserError
from lora_tui.i18n import Phrase, _

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
"""Bytes per parameter of each merge dtype."""
DEVICES = ("auto", "cpu", "cuda")
"""Allowed values of `--device`."""
CUDA_CONTEXT_BYTES = 512 * MIB
"""CUDA context and allocator reserve: the low end of the 0.5-1 GB measured overhead."""
FRAGMENTATION = 0.05
"""Share of the weights added for allocator fragmentation and temporaries."""


@dataclass
class MergePlan:
    """The merge's memory need and the device chosen for it."""

    device: str
    """`cpu` or `cuda`: where the merge runs."""
    dtype: str
    """bf16, fp16 or fp32: the dtype of the merged weights."""
    weights_bytes: int
    """Base weights in `dtype`."""
    adapter_bytes: int
    """The adapter's A and B matrices in fp32."""
    working_bytes: int
    """Largest module's fp32 delta and cast copy, plus fragmentation (and the CUDA context on a GPU)."""
    available_bytes: int | None
    """Free memory on the chosen device when known (GPU free VRAM or available RAM)."""
    reason: str
    """One line saying why this device was chosen: a `Phrase`, English in JSON and shown in the current language."""

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError("`device` must be cpu or cuda")
        if self.dtype not in DTYPE_BYTES:
            raise ValueError(f"`dtype` must be one of {', '.join(DTYPE_BYTES)}")

    @property
    def total_bytes(self) -> int:
        """Peak memory the merge needs on `device`."""
        return self.weights_bytes + self.adapter_bytes + self.working_bytes

    @property
    def fits(self) -> bool | None:
        """Whether the need fits the free memory (None when the free memory is unknown)."""
        return None if self.available_bytes is None else self.total_bytes <= self.available_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict with the total."""
        return {**asdict(self), "total_bytes": self.total_bytes, "fits": self.fits}

    def lines(self) -> list[str]:
        """Human-readable breakdown, one part a line, in the current language."""
        total, device = fmt_gib_or_mib(self.total_bytes), self.device
        return [
            _("base weights ({dtype}): {size}").format(dtype=self.dtype, size=fmt_gib_or_mib(self.weights_bytes)),
            _("adapter (fp32): {size}").format(size=fmt_gib_or_mib(self.adapter_bytes)),
            _("working memory: {size}").format(size=fmt_gib_or_mib(self.working_bytes)),
            _("total: {size} on {device}").format(size=total, device=device) if self.available_bytes is None else
            _("total: {size} on {device} ({free} free)").format(size=total, device=device,
                                                                free=fmt_gib_or_mib(self.available_bytes)),
            _(self.reason),
        ]


def _need(base_params: int, largest: int, adapter_params: int, dtype: str, cuda: bool) -> tuple[int, ...]:
    weights = base_params * DTYPE_BYTES[dtype]
    adapter = adapter_params * 4
    working = largest * (4 + DTYPE_BYTES[dtype]) + int(weights * FRAGMENTATION)
    return weights, adapter, working + (CUDA_CONTEXT_BYTES if cuda else 0)


def plan_merge(
    *,
    base_params: int,
    largest_weight_params: int,
    adapter_params: int,
    dtype: str = "bf16",
    device: str = "auto",
    gpu_free_bytes: int | None = None,
    ram_available_bytes: int | None = None,
) -> MergePlan:
    """Choose the merge device: the GPU when asked (or on auto when it fits), else the CPU; say why.

    UserError for `--device cuda` without a GPU or with too little free memory, and when the CPU is chosen
    but the available RAM is known to be too small.
    """
    if dtype not in DTYPE_BYTES:
        raise UserError(_("--dtype {dtype}: choose one of {choices}").format(dtype=dtype,
                                                                           choices=", ".join(DTYPE_BYTES)))
    if device not in DEVICES:
        raise UserError(_("--device {device}: choose one of {choices}").format(device=device,
                                                                             choices=", ".join(DEVICES)))
    g_w, g_a, g_k = _need(base_params, largest_weight_params, adapter_params, dtype, cuda=True)
    gpu_need = g_w + g_a + g_k
    if device in ("cuda", "auto") and gpu_free_bytes is not None and gpu_need <= gpu_free_bytes:
        need, free = fmt_gib_or_mib(gpu_need), fmt_gib_or_mib(gpu_free_bytes)
        why = Phrase("merging on the GPU (requested: needs {need}, {free} free)", need=need, free=free) \
            if device == "cuda" else Phrase("merging on the GPU (it fits: needs {need}, {free} free)", need=need,
                                            free=free)
        return MergePlan("cuda", dtype, g_w, g_a, g_k, gpu_free_bytes, why)
    if device == "cuda":
        if gpu_free_bytes is None:
            raise UserError(_("--device cuda: no CUDA GPU is available; use --device cpu (or auto)"))
        raise UserError(_("--device cuda: the merge needs {need}, the GPU has {free} free; use --device cpu (or "
                          "auto), or free GPU memory").format(need=fmt_gib_or_mib(gpu_need),
                                                              free=fmt_gib_or_mib(gpu_free_bytes)))
    c_w, c_a, c_k = _need(base_params, largest_weight_params, adapter_params, dtype, cuda=False)
    if device == "cpu":
        reason = Phrase("merging on the CPU (requested)")
    elif gpu_free_bytes is None:
        reason = Phrase("merging on the CPU (no CUDA GPU)")
    else:
        reason = Phrase("merging on the CPU: the GPU has {free} free but the merge needs {need}",
                        free=fmt_gib_or_mib(gpu_free_bytes), need=fmt_gib_or_mib(gpu_need))
    plan = MergePlan("cpu", dtype, c_w, c_a, c_k, ram_available_bytes, reason)
    if plan.fits is False:
        raise UserError(_("merge needs {need} of RAM, {available} is available: close other programs or use a "
                          "machine with more memory").format(need=fmt_gib_or_mib(plan.total_bytes),
                                                              available=fmt_gib_or_mib(ram_available_bytes or 0)))
    return plan
