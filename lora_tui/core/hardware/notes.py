"""Plain-language notes on what a machine's hardware means for training (MIG, bf16, the CPU fallback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lora_tui.core.tables import guide
from lora_tui.core.units import fmt_gb_gib, fmt_gib

if TYPE_CHECKING:
    from lora_tui.core.hardware.detect import GpuInfo, HardwareReport

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
                f"slice, so the tier counts the smallest ({fmt_gib(smallest, 1)})."
            )
        if gpu.compute_capability is not None and gpu.compute_capability < (8, 0):
            major, minor = gpu.compute_capability
            notes.append(
                f"{label} has compute capability {major}.{minor}, without native bf16: training uses fp16 "
                "mixed precision there."
            )
        if not gpu.is_mig and gpu.total_bytes and gpu.free_bytes < gpu.total_bytes // 2:
            notes.append(
                f"{label}: other processes hold {fmt_gib(gpu.used_bytes, 1)} of {fmt_gib(gpu.total_bytes, 1)}; "
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
            f"{fmt_gb_gib(usable)}."
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
            f"{fmt_gib(report.ram_total_bytes, 1)} of system memory; there is no separate VRAM to size a tier "
            "from, so pass --vram-gb to choose one."
        ]
    return [
        f"No usable GPU ({why}). Training falls back to the CPU ({report.cpu_cores} cores, "
        f"{fmt_gib(report.ram_total_bytes, 1)} RAM): fine for the built-in demo model and for trying settings, but "
        "expect a billion-parameter model to take hours where a GPU takes minutes."
    ]
