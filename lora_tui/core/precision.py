"""Which precision a run computes in: the one decision the training process and the memory estimate share.

`auto` resolves per device and model family (`choose_precision`):

- a CUDA GPU with bf16 (compute capability 8.0 and up: A100, RTX 30xx and later): bf16;
- a CUDA GPU without bf16 (T4, V100, RTX 20xx: the guide's 8-16 GB tier): fp16, except for model families known to
  overflow in fp16 (`FP16_OVERFLOW`: Gemma 2 and 3, whose activations exceed fp16's 65,504 and turn into NaN), which
  get fp32 with the reason shown;
- Apple MPS and the CPU: fp32 (no usable 16-bit mixed-precision training there).

The training process calls it with what torch reports (`lora_tui.train.worker.choose_precision`); the estimate
calls it with the hardware report, or with the GPU a `--vram-gb` figure stands for (`planned_precision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lora_tui.errors import UserError
from lora_tui.i18n import _

if TYPE_CHECKING:
    from lora_tui.core.hardware.detect import HardwareReport

DTYPES = ("bf16", "fp16", "fp32")
"""The precisions a run can compute in (TrainingPlan.precision adds `auto`)."""

FP16_OVERFLOW = frozenset({"gemma2", "gemma3", "gemma3_text", "gemma3n", "gemma3n_text"})
"""Model types whose activations overflow fp16 (Gemma 2 and 3: trained in bf16, activations beyond 65,504 -> NaN)."""

BF16_MIN_CAPABILITY = (8, 0)
"""CUDA compute capability from which bf16 is native (Ampere)."""


@dataclass(frozen=True)
class Precision:
    """The precision a run computes in, where it runs, and why."""

    dtype: str
    """bf16, fp16 or fp32: the dtype the base weights load in and the trainer's mixed precision."""
    device: str
    """cuda, mps or cpu."""
    reason: str
    """Why this precision, in one clause (shown with the estimate and in `--dry-run`)."""


def choose_precision(requested: str, *, device: str, bf16_supported: bool | None,
                     model_type: str | None = None) -> Precision:
    """The precision for `requested` (auto, bf16, fp16, fp32) on `device` for a model of `model_type`.

    `bf16_supported` is the CUDA device's answer (None: unknown, taken as supported). A precision the person chose
    is kept; fp16 on a family that overflows says so, bf16 on a GPU without it is refused.
    """
    family = model_type or ""
    if requested != "auto":
        if requested not in DTYPES:
            raise UserError(_("`precision` (--precision) must be one of auto, {choices}, got {value}").format(
                choices=", ".join(DTYPES), value=repr(requested)))
        if requested == "bf16" and device == "cuda" and bf16_supported is False:
            raise UserError(_("--precision bf16: this GPU has no bf16 (compute capability below 8.0); use "
                              "--precision auto (fp16, or fp32 for Gemma) or fp32"))
        if requested == "fp16" and family in FP16_OVERFLOW:
            return Precision(requested, device, _("as set (--precision); {family} is known to overflow in fp16 (NaN "
                                                  "losses): bf16 or fp32 is safer").format(family=family))
        return Precision(requested, device, _("as set (--precision)"))
    if device != "cuda":
        return Precision("fp32", device, _("auto: fp32 on Apple MPS") if device == "mps" else
                         _("auto: fp32 on the CPU"))
    if bf16_supported is not False:
        return Precision("bf16", device, _("auto: bf16, supported by this GPU") if bf16_supported else
                         _("auto: bf16 (assumed: a GPU with bf16 support)"))
    if family in FP16_OVERFLOW:
        return Precision("fp32", device, _("auto: this GPU has no bf16 and {family} overflows in fp16 (activations "
                                           "beyond 65,504 become NaN), so fp32").format(family=family))
    return Precision("fp16", device, _("auto: fp16, since this GPU has no bf16"))


def report_bf16(report: HardwareReport) -> bool | None:
    """Whether every NVIDIA GPU in a hardware report has native bf16; None when NVML gave no capability."""
    caps = [getattr(g, "compute_capability", None) for g in getattr(report, "gpus", ())]
    if not caps or any(c is None for c in caps):
        return None
    return all(c is not None and c >= BF16_MIN_CAPABILITY for c in caps)


def detected_hardware() -> HardwareReport | None:
    """This machine's hardware report (None when detection fails; NVML answers in well under a millisecond once
    loaded, so it is asked each time rather than cached)."""
    from lora_tui.core.hardware.detect import detect_hardware

    try:
        return detect_hardware()
    except Exception:  # noqa: BLE001 - the estimate then assumes a GPU with bf16
        return None


def planned_precision(requested: str, model_type: str | None, vram_bytes: int | None,
                      hardware: HardwareReport | None = None) -> Precision:
    """The precision a plan will train in, for an estimate made before the run.

    Without a VRAM figure the run is a CPU run (fp32, as the training process chooses there). With one, it is a
    CUDA GPU: the detected one's bf16 support when this machine has a CUDA GPU (`hardware`, else detected once),
    otherwise a GPU with bf16 is assumed (a `--vram-gb` figure planning for another machine).
    """
    if vram_bytes is None:
        backend = getattr(hardware, "backend", "cpu")
        device = backend if backend in ("mps", "cpu") else "cpu"
        return choose_precision(requested, device=device, bf16_supported=None, model_type=model_type)
    report = hardware if hardware is not None else detected_hardware()
    bf16 = report_bf16(report) if report is not None and getattr(report, "backend", None) == "cuda" else None
    return choose_precision(requested, device="cuda", bf16_supported=bf16, model_type=model_type)
