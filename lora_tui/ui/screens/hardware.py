"""Step 1, Hardware: the GPUs found (refreshed live), the guide's resource tier, or what a CPU/MPS run means."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Static

from lora_tui.core.tables import tier_name
from lora_tui.i18n import N_, _
from lora_tui.ui.format import fmt_bytes
from lora_tui.ui.messages import GpusSampled, HardwareDetected
from lora_tui.ui.screens.base import WizardScreen

TIER_TEXT = {
    "low": N_("under 8 GB of VRAM: the guide's memory-constrained tier. The advisor keeps r small and uses batch 1 "
              "with more accumulation steps; expect to target few modules on larger models."),
    "standard": N_("8-16 GB of VRAM: the guide's standard tier, room for the usual settings on 1-3B models."),
    "high": N_("over 16 GB of VRAM: the guide's high tier. The advisor allows a higher rank and larger batches."),
}
"""What each of the guide's resource tiers means, in a sentence (English; `_()` shows it)."""

BACKEND_TEXT = {
    "cpu": N_("No GPU found: training will run on the CPU. That is fine for the built-in demo model (a few "
              "minutes) and for trying things out, but real models train one to two orders of magnitude slower "
              "than on a GPU. The advisor still plans for your data and shows the memory a GPU would need."),
    "mps": N_("Apple GPU (MPS): the GPU shares the system's memory, bf16 support depends on the macOS version, "
              "and some kernels fall back to the CPU. Expect it to be several times slower than a CUDA GPU of "
              "similar memory."),
}
"""What a run on a machine without a CUDA GPU means for speed."""


class HardwareScreen(WizardScreen):
    """Detected GPUs with total and free VRAM, the resource tier, or the CPU/MPS fallback."""

    STEP = "hardware"

    def __init__(self) -> None:
        super().__init__()
        self._sampler: Timer | None = None
        """The live GPU refresh, started once."""

    def compose_body(self) -> ComposeResult:
        """The summary line, the GPU table and the tier explanation."""
        with VerticalScroll(id="body"):
            yield Static(_("Detecting hardware…"), id="hw-summary")
            yield DataTable(id="gpus", cursor_type="row", zebra_stripes=True)
            yield Static("", id="hw-tier", classes="explain")
            yield Static("", id="hw-notes", classes="dim")

    def on_mount(self) -> None:
        """Set up the table and start detection in a worker (NVML can take 100 ms or more)."""
        super().on_mount()
        table = self.query_one("#gpus", DataTable)
        table.add_columns("GPU", _("Name"), _("Total"), _("Free"), _("Used"), _("Util"), "CC")
        table.display = False
        if self.state.hardware is not None:
            self.on_hardware_detected(HardwareDetected(self.state.hardware))
        else:
            self.detect()

    @work(thread=True, exclusive=True, exit_on_error=False, group="hardware")
    def detect(self) -> None:
        """Run the hardware probe."""
        self.post_message(HardwareDetected(self.tui.hardware_probe()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpus")
    def sample_gpus(self) -> None:
        """Query live memory and utilisation."""
        gpus, status = self.tui.gpu_query()
        self.post_message(GpusSampled(tuple(gpus), status))

    def on_hardware_detected(self, message: HardwareDetected) -> None:
        """Show the report and start the live refresh when there are GPUs."""
        report = message.report
        self.state.set_inputs(hardware=report)
        self.query_one("#hw-summary", Static).update(self._summary(report))
        self._fill_gpus(tuple(report.gpus))
        tier = getattr(report, "resource_tier", None)
        notes = self._notes(report)
        explain = TIER_TEXT.get(tier or "") if report.gpus else ("" if notes else BACKEND_TEXT.get(report.backend))
        self.query_one("#hw-tier", Static).update(_(explain) if explain else "")
        self.query_one("#hw-notes", Static).update("\n".join(notes))
        if report.gpus and self.tui.gpu_interval > 0 and self._sampler is None:
            self._sampler = self.set_interval(self.tui.gpu_interval, self.sample_gpus)

    @staticmethod
    def _notes(report: Any) -> list[str]:
        """The report's notes in the current language (made again from the report, so a switch of language from
        the palette shows them in the new one); none for a report that came without notes."""
        from lora_tui.core.hardware.notes import hardware_notes

        return list(hardware_notes(report)) if getattr(report, "notes", ()) else []

    def on_gpus_sampled(self, message: GpusSampled) -> None:
        """Refresh the table with live figures."""
        if message.gpus:
            self._fill_gpus(message.gpus)

    def _summary(self, report: Any) -> Text:
        text = Text()
        backend = str(report.backend).upper()
        text.append(_("Backend: {backend}").format(backend=backend), style="bold")
        if report.gpus:
            text.append(_("   GPUs: {count}   usable VRAM: {vram}").format(
                count=len(report.gpus), vram=fmt_bytes(report.usable_vram_bytes)))
            tier = getattr(report, "resource_tier", None)
            if tier:
                text.append(_("   tier: {tier}").format(tier=tier_name(tier)), style="bold")
        text.append(_("\nCPU cores: {cores}   RAM: {ram}").format(cores=report.cpu_cores,
                                                                 ram=fmt_bytes(report.ram_total_bytes)))
        text.append(f"   NVML: {report.nvml_status}", style="dim")
        return text

    def _fill_gpus(self, gpus: tuple[Any, ...]) -> None:
        table = self.query_one("#gpus", DataTable)
        table.display = bool(gpus)
        table.clear()
        for gpu in gpus:
            util = getattr(gpu, "utilization_pct", None)
            cc = getattr(gpu, "compute_capability", None)
            name = gpu.name + (" (MIG)" if getattr(gpu, "is_mig", False) else "")
            table.add_row(
                str(gpu.index), name, fmt_bytes(gpu.total_bytes), fmt_bytes(gpu.free_bytes),
                fmt_bytes(gpu.used_bytes), "-" if util is None else f"{util:.0f}%",
                "-" if not cc else ".".join(str(x) for x in cc) if isinstance(cc, (tuple, list)) else str(cc),
            )
