"""The host side of hardware detection: CPU name and cores, RAM (container limits included), Apple MPS.

Light by design: torch is imported only on Apple silicon, only to ask whether MPS works.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from collections.abc import Mapping
from pathlib import Path


def cpu_name() -> str:
    """CPU model name from /proc/cpuinfo (Linux) or sysctl (macOS); the architecture when unknown."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        try:
            for line in cpuinfo.read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
        except OSError:
            pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=2
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_cores() -> int:
    """Logical CPUs this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def cgroup_memory_limit() -> int | None:
    """A cgroup v2 memory limit in bytes (containers), or None when unlimited or not in a cgroup."""
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def ram_bytes() -> tuple[int, int]:
    """(total, available) system memory, lowered to a container's memory limit when one is set."""
    import psutil  # a dependency; imported here to keep start-up light

    vm = psutil.virtual_memory()
    total, available = int(vm.total), int(vm.available)
    limit = cgroup_memory_limit()
    if limit is not None and 0 < limit < total:
        total, available = limit, min(available, limit)
    return total, available


def mps_available() -> bool:
    """Apple's MPS backend works: decided by the platform first, torch only on Apple silicon."""
    if platform.system() != "Darwin" or platform.machine() != "arm64":
        return False
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.backends.mps.is_available())


def cuda_hidden(env: Mapping[str, str]) -> bool:
    """CUDA_VISIBLE_DEVICES hides every GPU (empty, or starting with -1): CUDA then sees none."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    return value is not None and (value.strip() == "" or value.split(",")[0].strip() == "-1")
