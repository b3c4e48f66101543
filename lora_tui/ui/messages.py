"""Messages posted by the app's workers: small dataclasses, one per result a worker can produce."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from lora_tui.core.follow import Poll


@dataclass
class HardwareDetected(Message):
    """The hardware probe finished."""

    report: Any
    """The `lora_tui.core.hardware.detect.HardwareReport`."""


@dataclass
class GpusSampled(Message):
    """A live refresh of the GPUs' memory and utilisation."""

    gpus: tuple[Any, ...]
    """`GpuInfo` per GPU, as `query_gpus` returns them."""
    status: str
    """NVML status text."""

    def can_replace(self, message: Message) -> bool:
        """Only the newest sample matters: bursts collapse."""
        return isinstance(message, GpusSampled)


@dataclass
class DataInspected(Message):
    """A data file was inspected."""

    path: str
    """The file or directory inspected."""
    report: Any
    """The `lora_tui.core.dataset.report.DatasetReport`."""


@dataclass
class ModelChecked(Message):
    """A model's offline availability and module inventory were looked up."""

    model: str
    """The model as typed (preset, demo, hub id or path)."""
    available: bool
    """Whether it can be used without a network."""
    reason: str
    """Why (or why not), in one line."""
    inventory: Any | None
    """The `ModelInventory`, when it could be loaded."""


@dataclass
class RunLaunched(Message):
    """A training process was started."""

    run_dir: Path
    """Its run directory."""
    pid: int | None
    """Its process id."""


@dataclass
class RunPolled(Message):
    """New log lines, metrics and status of the followed run."""

    poll: Poll
    """What changed since the previous poll."""
