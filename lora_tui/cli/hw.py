"""`lora-tui hw`: the GPUs (or the CPU/MPS fallback) a run would train on, and the guide's resource tier.

No GPU is not an error: the command prints what the fallback means and exits 0.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lora_tui.cells import table
from lora_tui.core.units import fmt_gb_gib
from lora_tui.i18n import _


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `hw` subcommand."""
    p = sub.add_parser(
        "hw",
        help=_("show the GPUs (or CPU/MPS fallback) and the guide's resource tier"),
        description=_("Detect NVIDIA GPUs through NVML (falling back to Apple MPS or the CPU), show their memory, "
                      "compute capability and MIG slices, and the guide's resource tier from the smallest usable "
                      "GPU."),
    )
    p.add_argument("--json", action="store_true", help=_("print the full report as JSON"))
    p.set_defaults(func=run)


def _table(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart (measured in terminal cells)."""
    return table(rows)


def _gpu_rows(report: Any) -> list[list[str]]:
    """One row per GPU and one indented row per MIG slice."""
    rows = [["GPU", _("Name"), _("VRAM total"), _("Free"), "CC", "MIG"]]
    for gpu in report.gpus:
        cc = "-" if gpu.compute_capability is None else "{}.{}".format(*gpu.compute_capability)
        mig = _("on, {count} slice(s)").format(count=len(gpu.mig_devices)) if gpu.is_mig else _("off")
        rows.append([str(gpu.index), gpu.name, fmt_gb_gib(gpu.total_bytes), fmt_gb_gib(gpu.free_bytes), cc, mig])
        for m in gpu.mig_devices:
            rows.append([f"  {gpu.index}.{m.index}", m.name, fmt_gb_gib(m.total_bytes), fmt_gb_gib(m.free_bytes),
                         "", ""])
    return rows


def format_report(report: Any) -> str:
    """The human-readable form of a `HardwareReport`."""
    from lora_tui.core.tables import describe_resource_tier, tier_name

    lines: list[str] = []
    if report.driver_version:
        cuda = f", CUDA {report.cuda_driver_version}" if report.cuda_driver_version else ""
        lines.append(_("NVIDIA driver {driver}{cuda}; NVML: {status}").format(
            driver=report.driver_version, cuda=cuda, status=report.nvml_status))
    else:
        lines.append(f"NVML: {report.nvml_status}")
    if report.gpus:
        lines += ["", *_table(_gpu_rows(report)), ""]
    lines.append(_("Training backend: {backend}").format(backend=report.backend))
    tier = report.resource_tier
    if tier is not None:
        lines.append(_("Usable VRAM: {vram} (the smallest usable GPU or MIG slice)").format(
            vram=fmt_gb_gib(report.usable_vram_bytes)))
        lines.append(_("Resource tier: {tier}, {description}").format(tier=tier_name(tier),
                                                                      description=describe_resource_tier(tier)))
    lines.append(_("CPU: {name}, {cores} cores").format(name=report.cpu_name, cores=report.cpu_cores))
    lines.append(_("RAM: {total} total, {available} available").format(
        total=fmt_gb_gib(report.ram_total_bytes), available=fmt_gb_gib(report.ram_available_bytes)))
    headline = _("Resource tier:")
    notes = [n for n in report.notes if not n.startswith(headline)]  # already shown above
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Detect and print; exit 0 whether or not a GPU is present."""
    from lora_tui.core.hardware.detect import detect_hardware

    report = detect_hardware()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return 0
