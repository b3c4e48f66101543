"""Plain-language notes on what a machine's hardware means for training (MIG, bf16, the CPU fallback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lora_tui.core.tables import GB, guide

if TYPE_CHECKING:
    from lora_tui.core.hardware.detect import GpuInfo, HardwareReport

GIB = 1024**3
"""Bytes in one GiB."""


def _gib(n: int) -> str:
    """Bytes as GiB for a note."""
    return f"{n / GIB:.1f} GiB"


def gpu_notes(gpus: tuple[GpuInfo, ...]) -> list[str]:
    """What each GPU's particulars mean for training: MIG, bf16 support, memory other processes hold."""
    notes: list[str] = []
    for gpu in gpus:
        label = f"GPU {gpu.index} ({gpu.name})"
        if gpu.is_mig and not gpu.mig_devices:
            notes.append(
                f"{label} has MIG mode on but no MIG instances: CUDA cannot use it until an administrator "
                "creates one (nvidia-smi mig -cgi ... -C)."
            )
        elif gpu.is_mig:
            smallest = min(m.total_bytes for m in gpu.mig_devices)
            notes.append(
                f"{label} is split by MIG into {len(gpu.mig_devices)} slice(s); a training process sees one "
                f"slice, so the tier counts the smallest ({_gib(smallest)})."
            )
        if gpu.compute_capability is not None and gpu.compute_capability < (8, 0):
            major, minor = gpu.compute_capability
            notes.append(
                f"{label} has compute capability {major}.{minor}, without native bf16: training uses fp16 "
                "mixed precision there."
            )
        if not gpu.is_mig and gpu.total_bytes and gpu.free_bytes < gpu.total_bytes // 2:
            notes.append(
                f"{label}: other processes hold {_gib(gpu.used_bytes)} of {_gib(gpu.total_bytes)}; "
                "a run needs that memory back or must fit in what is free."
            )
    return notes


def backend_notes(report: HardwareReport, hidden: bool) -> list[str]:
    """The headline: which device trains, which tier that is, or what the CPU fallback means."""
    if report.backend == "cuda":
        usable = report.usable_vram_bytes
        tier = report.resource_tier
        if usable is None or tier is None:
            return []
        return [
            f"Resource tier: {tier} ({guide().resource_row(usable).label}), from the smallest usable GPU memory, "
            f"{usable / GB:.1f} GB ({_gib(usable)})."
        ]
    if report.gpus and hidden:
        why = "CUDA_VISIBLE_DEVICES hides every GPU"
    elif report.gpus:
        why = "MIG is on with no MIG instances, so CUDA sees no device"
    elif report.nvml_status == "ok":
        why = "NVML found no NVIDIA GPU"
    else:
        why = report.nvml_status
    if report.backend == "mps":
        return [
            f"No NVIDIA GPU ({why}). Training runs on the Apple GPU (MPS), which shares the "
            f"{_gib(report.ram_total_bytes)} of system memory; there is no separate VRAM to size a tier "
            "from, so pass --vram-gb to choose one."
        ]
    return [
        f"No usable GPU ({why}). Training falls back to the CPU ({report.cpu_cores} cores, "
        f"{_gib(report.ram_total_bytes)} RAM): fine for the built-in demo model and for trying settings, but "
        "expect a billion-parameter model to take hours where a GPU takes minutes."
    ]
