"""`lora-tui hw`: the GPUs (or the CPU/MPS fallback) a run would train on, and the guide's resource tier.

No GPU is not an error: the command prints what the fallback means and exits 0.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from lora_tui.core.units import fmt_gb_gib


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `hw` subcommand."""
    p = sub.add_parser(
        "hw",
        help="show the GPUs (or CPU/MPS fallback) and the guide's resource tier",
        description="Detect NVIDIA GPUs through NVML (falling back to Apple MPS or the CPU), show their memory, "
        "compute capability and MIG slices, and the guide's resource tier from the smallest usable GPU.",
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=run)


def _table(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _gpu_rows(report: Any) -> list[list[str]]:
    """One row per GPU and one indented row per MIG slice."""
    rows = [["GPU", "Name", "VRAM total", "Free", "CC", "MIG"]]
    for gpu in report.gpus:
        cc = "-" if gpu.compute_capability is None else "{}.{}".format(*gpu.compute_capability)
        mig = f"on, {len(gpu.mig_devices)} slice(s)" if gpu.is_mig else "off"
        rows.append([str(gpu.index), gpu.name, fmt_gb_gib(gpu.total_bytes), fmt_gb_gib(gpu.free_bytes), cc, mig])
        for m in gpu.mig_devices:
            rows.append([f"  {gpu.index}.{m.index}", m.name, fmt_gb_gib(m.total_bytes), fmt_gb_gib(m.free_bytes),
                         "", ""])
    return rows


def format_report(report: Any) -> str:
    """The human-readable form of a `HardwareReport`."""
    from lora_tui.core.tables import describe_resource_tier

    lines: list[str] = []
    if report.driver_version:
        cuda = f", CUDA {report.cuda_driver_version}" if report.cuda_driver_version else ""
        lines.append(f"NVIDIA driver {report.driver_version}{cuda}; NVML: {report.nvml_status}")
    else:
        lines.append(f"NVML: {report.nvml_status}")
    if report.gpus:
        lines += ["", *_table(_gpu_rows(report)), ""]
    lines.append(f"Training backend: {report.backend}")
    tier = report.resource_tier
    if tier is not None:
        lines.append(f"Usable VRAM: {fmt_gb_gib(report.usable_vram_bytes)} (the smallest usable GPU or MIG slice)")
        lines.append(f"Resource tier: {tier}, {describe_resource_tier(tier)}")
    lines.append(f"CPU: {report.cpu_name}, {report.cpu_cores} cores")
    lines.append(f"RAM: {fmt_gb_gib(report.ram_total_bytes)} total, {fmt_gb_gib(report.ram_available_bytes)} available")
    notes = [n for n in report.notes if not n.startswith("Resource tier:")]  # already shown above
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
