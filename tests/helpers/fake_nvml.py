"""A fake pynvml module for hardware tests: real pynvml error classes, devices described as data.

Build one with `FakeNvml([FakeGpu(...), ...], init_error=...)` and pass it as `nvml=` or return it from a
monkeypatched `lora_tui.core.hardware.detect._load_nvml`. It records init/shutdown calls so tests can check that
every successful nvmlInit is paired with nvmlShutdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

GIB = 1024**3
"""Bytes in one GiB."""


@dataclass
class FakeMig:
    """One MIG slice."""

    name: str
    """NVML name, e.g. `NVIDIA A100-SXM4-40GB MIG 1g.5gb`."""
    total: int
    """Slice memory in bytes."""
    used: int = 0
    """Bytes in use."""


@dataclass
class FakeGpu:
    """One GPU and the answers (or errors) NVML gives for it."""

    name: str
    """Product name."""
    total: int
    """Total memory in bytes."""
    used: int = 0
    """Bytes in use."""
    cc: tuple[int, int] | None = (8, 6)
    """Compute capability; None makes the query raise NotSupported."""
    util: int | None = 3
    """Utilisation percent; None makes the query raise NotSupported."""
    mig_mode: tuple[int, int] | None = None
    """(current, pending) MIG mode; None makes the query raise NotSupported (a GPU without MIG)."""
    migs: dict[int, FakeMig] = field(default_factory=dict)
    """MIG slices by slot index; other slots raise NotFound."""
    max_migs: int = 7
    """MIG slots nvmlDeviceGetMaxMigDeviceCount reports."""
    errors: dict[str, type[BaseException]] = field(default_factory=dict)
    """NVML function name -> error class it raises for this GPU."""


class FakeNvml:
    """Enough of pynvml's surface for lora_tui.core.hardware.detect, driven by FakeGpu data."""

    NVMLError = pynvml.NVMLError

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        init_error: type[BaseException] | BaseException | None = None,
        count_error: type[BaseException] | None = None,
        driver: str | bytes = "550.54.15",
        cuda: int = 12040,
    ) -> None:
        self.gpus = gpus or []
        self.init_error = init_error
        self.count_error = count_error
        self.driver = driver
        self.cuda = cuda
        self.init_calls = 0
        self.shutdown_calls = 0

    def _gpu(self, handle: Any, fn: str) -> FakeGpu:
        gpu = self.gpus[handle[1]]
        if fn in gpu.errors:
            raise gpu.errors[fn]()
        return gpu

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise self.init_error() if isinstance(self.init_error, type) else self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        if self.count_error is not None:
            raise self.count_error()
        return len(self.gpus)

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        handle = ("gpu", index)
        self._gpu(handle, "nvmlDeviceGetHandleByIndex")
        return handle

    def nvmlDeviceGetName(self, handle: Any) -> str:
        if handle[0] == "mig":
            return self.gpus[handle[1]].migs[handle[2]].name
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> SimpleNamespace:
        if handle[0] == "mig":
            mig = self.gpus[handle[1]].migs[handle[2]]
            return SimpleNamespace(total=mig.total, free=mig.total - mig.used, used=mig.used)
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(total=gpu.total, free=gpu.total - gpu.used, used=gpu.used)

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        if handle[0] == "mig":
            return f"MIG-{handle[1]}-{handle[2]}"
        self._gpu(handle, "nvmlDeviceGetUUID")
        return f"GPU-{handle[1]:04d}"

    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]:
        gpu = self._gpu(handle, "nvmlDeviceGetCudaComputeCapability")
        if gpu.cc is None:
            raise pynvml.NVMLError_NotSupported()
        return gpu.cc

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        if gpu.util is None or gpu.mig_mode:
            raise pynvml.NVMLError_NotSupported()
        return SimpleNamespace(gpu=gpu.util, memory=1)

    def nvmlDeviceGetMigMode(self, handle: Any) -> list[int]:
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")
        if gpu.mig_mode is None:
            raise pynvml.NVMLError_NotSupported()
        return list(gpu.mig_mode)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetMaxMigDeviceCount").max_migs

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if index not in gpu.migs:
            raise pynvml.NVMLError_NotFound()
        return ("mig", handle[1], index)
