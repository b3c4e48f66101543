"""Fixed hardware reports and a launcher running the fake trainer, for deterministic UI tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_tui.core import runs
from lora_tui.core.hardware.detect import GpuInfo, HardwareReport, nvml_reason
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.resolve import ResolvedPlan

GIB = 1024**3
ROOT = Path(__file__).resolve().parents[2]
FAKE_TRAINER = ROOT / "tests" / "helpers" / "fake_trainer.py"


class _NoDriver(Exception):
    """NVML's error when no NVIDIA driver is installed (NVML_ERROR_LIBRARY_NOT_FOUND)."""

    value = 12


def hardware(gpu_gib: int | None) -> HardwareReport:
    """A CPU-only machine (None) or one with a single GPU of `gpu_gib` GiB, all figures fixed."""
    gpus: tuple[GpuInfo, ...] = ()
    if gpu_gib is not None:
        total = gpu_gib * GIB
        name = {8: "NVIDIA GeForce RTX 4060", 24: "NVIDIA GeForce RTX 4090"}.get(gpu_gib, f"GPU {gpu_gib} GB")
        gpus = (GpuInfo(index=0, name=name, total_bytes=total, free_bytes=total - GIB // 2,
                        used_bytes=GIB // 2, compute_capability=(8, 9), utilization_pct=3),)
    return HardwareReport(
        backend="cuda" if gpus else "cpu", gpus=gpus, driver_version="550.54" if gpus else None,
        cuda_driver_version="12.4" if gpus else None, nvml_status="ok" if gpus else nvml_reason(_NoDriver()),
        mps_available=False, cpu_name="Test CPU", cpu_cores=8, ram_total_bytes=32 * GIB,
        ram_available_bytes=24 * GIB,
    )


def probe(gpu_gib: int | None) -> Any:
    """A hardware probe returning `hardware(gpu_gib)`."""
    report = hardware(gpu_gib)
    return lambda: report


def gpu_query(gpu_gib: int | None) -> Any:
    """A live GPU query returning the fixed GPUs."""
    report = hardware(gpu_gib)
    return lambda: (report.gpus, report.nvml_status)


@dataclass
class Launched:
    """What the fake launcher returns (the LaunchedRun shape: run_dir, pid)."""

    run_dir: Path
    pid: int


class FakeLauncher:
    """Starts tests/helpers/fake_trainer.py in the plan's output directory; remembers every call."""

    def __init__(self, *extra: str) -> None:
        self.extra = list(extra)
        self.calls: list[tuple[TrainingPlan, dict[str, str], bool, bool]] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def __call__(self, resolved: ResolvedPlan, *, overwrite: bool = False, resume: bool = False) -> Launched:
        plan, sources = resolved.plan, resolved.sources
        runs.check_output_dir(plan.output, resume=resume, overwrite=overwrite)
        self.calls.append((plan, dict(sources), overwrite, resume))
        run_dir = Path(plan.output)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / runs.RUN_FILE).write_text(plan.to_toml(sources), encoding="utf-8")
        with open(run_dir / runs.LOG_FILE, "ab") as log:
            proc = subprocess.Popen([sys.executable, str(FAKE_TRAINER), str(run_dir), *self.extra],
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return Launched(run_dir, proc.pid)

    def wait(self, timeout: float = 20) -> None:
        """Wait for every started process."""
        for proc in self.procs:
            proc.wait(timeout)
