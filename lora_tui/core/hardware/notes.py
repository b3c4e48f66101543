"""Plain-language notes on what a machine's hardware means for training (MIG, bf16, the CPU fallback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lora_tui.core.tables import guide, row_label, tier_name
from lora_tui.core.units import fmt_gb_gib, fmt_gib
from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.core.hardware.detect import GpuInfo, HardwareReport

def hardware_notes(report: HardwareReport) -> tuple[str, ...]:
    """Every note on a report, in the current language: the headline, each GPU's particulars, the GPUs left out
    (a screen shows them again after a switch of language from these)."""
    notes = backend_notes(report, report.cuda_hidden) + gpu_notes(report.gpus)
    if report.gpus and report.nvml_status != "ok":
        notes.append(_("Some GPUs are left out: {status}.").format(status=report.nvml_status))
    return tuple(notes)


def gpu_notes(gpus: tuple[GpuInfo, ...]) -> list[str]:
    """What each GPU's particulars mean for training: MIG, bf16 support, memory other processes hold."""
    notes: list[str] = []
    for gpu in gpus:
        label = f"GPU {gpu.index} ({gpu.name})"
        if gpu.is_mig and not gpu.mig_devices:
            notes.append(_(
                "{gpu} has MIG mode on but no MIG instances: CUDA cannot use it until an administrator "
                "creates one (nvidia-smi mig -cgi ... -C).").format(gpu=label))
        elif gpu.is_mig:
            smallest = min(m.total_bytes for m in gpu.mig_devices)
            notes.append(_(
                "{gpu} is split by MIG into {count} slice(s); a training process sees one "
                "slice, so the tier counts the smallest ({size}).").format(
                    gpu=label, count=len(gpu.mig_devices), size=fmt_gib(smallest, 1)))
        if gpu.compute_capability is not None and gpu.compute_capability < (8, 0):
            major, minor = gpu.compute_capability
            notes.append(_(
                "{gpu} has compute capability {major}.{minor}, without native bf16: training uses fp16 "
                "mixed precision there.").format(gpu=label, major=major, minor=minor))
        if not gpu.is_mig and gpu.total_bytes and gpu.free_bytes < gpu.total_bytes // 2:
            notes.append(_(
                "{gpu}: other processes hold {used} of {total}; "
                "a run needs that memory back or must fit in what is free.").format(
                    gpu=label, used=fmt_gib(gpu.used_bytes, 1), total=fmt_gib(gpu.total_bytes, 1)))
    return notes


def backend_notes(report: HardwareReport, hidden: bool) -> list[str]:
    """The headline: which device trains, which tier that is, or what the CPU fallback means."""
    if report.backend == "cuda":
        usable = report.usable_vram_bytes
        tier = report.resource_tier
        if usable is None or tier is None:
            return []
        return [_(
            "Resource tier: {tier} ({label}), from the smallest usable GPU memory, {vram}.").format(
                tier=tier_name(tier), label=row_label(guide().resource_row(usable)), vram=fmt_gb_gib(usable))]
    if report.gpus and hidden:
        why = _("CUDA_VISIBLE_DEVICES hides every GPU")
    elif report.gpus:
        why = _("MIG is on with no MIG instances, so CUDA sees no device")
    elif report.nvml_status == "ok":
        why = _("NVML found no NVIDIA GPU")
    else:
        why = report.nvml_status
    if report.backend == "mps":
        return [_(
            "No NVIDIA GPU ({why}). Training runs on the Apple GPU (MPS), which shares the "
            "{ram} of system memory; there is no separate VRAM to size a tier "
            "from, so pass --vram-gb to choose one.").format(why=why, ram=fmt_gib(report.ram_total_bytes, 1))]
    return [_(
        "No usable GPU ({why}). Training falls back to the CPU ({cores} cores, "
        "{ram} RAM): fine for the built-in demo model and for trying settings, but "
        "expect a billion-parameter model to take hours where a GPU takes minutes.").format(
            why=why, cores=report.cpu_cores, ram=fmt_gib(report.ram_total_bytes, 1))]
