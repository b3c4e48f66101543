"""Messages posted by the app's workers: small dataclasses, one per result a worker can produce."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from lora_tui.core.follow import Poll

if TYPE_CHECKING:
    from lora_tui.core.dataset.preview import PreviewExample
    from lora_tui.core.dataset.report import DatasetReport
    from lora_tui.core.hardware.detect import GpuInfo, HardwareReport
    from lora_tui.core.models.inventory import ModelInventory
    from lora_tui.core.runs import RunStatus


@dataclass
class HardwareDetected(Message):
    """The hardware probe finished."""

    report: HardwareReport
    """What the probe found."""


@dataclass
class GpusSampled(Message):
    """A live refresh of the GPUs' memory and utilisation."""

    gpus: tuple[GpuInfo, ...]
    """One per GPU, as `query_gpus` returns them."""
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
    report: DatasetReport
    """What the inspection found."""
    preview: tuple[PreviewExample, ...] = ()
    """The first examples as training sees them (when the model's tokenizer is on this machine)."""
    template: str = ""
    """The chat template the preview was rendered with ('' for plain text)."""


@dataclass
class ModelChecked(Message):
    """A model's offline availability and module inventory were looked up."""

    model: str
    """The model as typed (preset, demo, hub id or path)."""
    available: bool
    """Whether it can be used without a network."""
    reason: str
    """Why (or why not), in one line."""
    inventory: ModelInventory | None
    """The model's module inventory, when it could be loaded."""
    data_report: DatasetReport | None = None
    """The data measured again with this model's tokenizer, when the wizard's report was another model's."""


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


@dataclass
class AdapterDescribed(Message):
    """The details of the highlighted adapter are ready."""

    path: str
    """Adapter directory."""
    lines: list[str]
    """The `adapters show` text, line by line."""


@dataclass
class AnswerChunk(Message):
    """A piece of streamed answer text."""

    column: str
    """`base` or `adapter`."""
    text: str
    """Text to append (or the whole answer when `replace`)."""
    replace: bool = False
    """Replace the pane's text instead of appending."""


@dataclass
class AdapterStatus(Message):
    """A one-line status update (loading, merge progress, done)."""

    text: str
    """What to show."""


@dataclass
class RunsListed(Message):
    """The runs under the output root were listed."""

    rows: list[tuple[Path, RunStatus | None]]
    """(run directory, status) per run, newest first."""
