"""Safe precision (core/precision.py): one decision for the training process and the estimate, with its reason."""

from __future__ import annotations

import pytest

from lora_tui.core.hardware.detect import GpuInfo, HardwareReport
from lora_tui.core.memory import plan_estimate
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.precision import choose_precision, planned_precision, report_bf16
from lora_tui.errors import UserError
from tests.helpers.memory_models import GEMMA_3_1B, LLAMA_32_1B


def _report(capability: tuple[int, int] | None, gib: int = 16) -> HardwareReport:
    """A faked hardware report: one NVIDIA GPU of this compute capability (T4: 7.5, A100: 8.0)."""
    gpu = GpuInfo(index=0, name="NVIDIA Tesla T4" if capability == (7, 5) else "NVIDIA GPU",
                  total_bytes=gib * 2**30, free_bytes=gib * 2**30, used_bytes=0, compute_capability=capability)
    return HardwareReport(backend="cuda", gpus=(gpu,), driver_version="550", cuda_driver_version="12.4",
                          nvml_status="ok", mps_available=False, cpu_name="x86_64", cpu_cores=8,
                          ram_total_bytes=64 * 2**30, ram_available_bytes=60 * 2**30)


@pytest.mark.parametrize(
    ("device", "bf16", "model_type", "dtype", "words"),
    [
        ("cuda", True, "llama", "bf16", "supported by this GPU"),
        ("cuda", False, "llama", "fp16", "no bf16"),
        ("cuda", False, "gemma3_text", "fp32", "overflows in fp16"),
        ("cuda", False, "gemma2", "fp32", "overflows in fp16"),
        ("cuda", None, "gemma3", "bf16", "assumed"),
        ("cpu", None, "llama", "fp32", "CPU"),
        ("mps", None, "llama", "fp32", "MPS"),
    ],
)
def test_auto(device: str, bf16: bool | None, model_type: str, dtype: str, words: str) -> None:
    choice = choose_precision("auto", device=device, bf16_supported=bf16, model_type=model_type)
    assert choice.dtype == dtype and words in choice.reason and choice.device == device


def test_a_chosen_precision_is_kept_and_fp16_gemma_is_warned_about() -> None:
    assert choose_precision("fp32", device="cuda", bf16_supported=True).dtype == "fp32"
    warned = choose_precision("fp16", device="cuda", bf16_supported=False, model_type="gemma3_text")
    assert warned.dtype == "fp16" and "overflow" in warned.reason
    with pytest.raises(UserError, match="no bf16"):
        choose_precision("bf16", device="cuda", bf16_supported=False)


def test_gemma_3_on_a_t4_gets_fp32_with_its_reason_in_the_estimate() -> None:
    t4 = _report((7, 5))
    assert report_bf16(t4) is False and report_bf16(_report((8, 0))) is True and report_bf16(_report(None)) is None
    plan = TrainingPlan(model="gemma-3-1b-it", per_device_train_batch_size=1, max_seq_length=512)
    est = plan_estimate(GEMMA_3_1B, plan, 15 * 10**9, hardware=t4)
    assert est.settings["dtype"] == "fp32" and "overflows in fp16" in est.settings["precision_reason"]
    assert est.part("weights").bytes == GEMMA_3_1B.total_params * 4
    llama = plan_estimate(LLAMA_32_1B, plan, 15 * 10**9, hardware=t4)
    assert llama.settings["dtype"] == "fp16" and llama.part("weights").bytes == LLAMA_32_1B.total_params * 2


def test_without_vram_the_run_is_a_cpu_run_in_fp32() -> None:
    plan = TrainingPlan(model="llama-3.2-1b")
    assert planned_precision("auto", "llama", None).dtype == "fp32"
    est = plan_estimate(LLAMA_32_1B, plan, None)
    assert est.settings["dtype"] == "fp32" and est.settings["device"] == "cpu"
    assert est.part("overhead").label.startswith("Allocator fragmentation")


def test_a_vram_figure_without_a_detected_gpu_assumes_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lora_tui.core.precision.detected_hardware", lambda: None)
    choice = planned_precision("auto", "gemma3_text", 8 * 10**9)
    assert choice.dtype == "bf16" and "assumed" in choice.reason
    monkeypatch.setattr("lora_tui.core.precision.detected_hardware", lambda: _report((7, 0)))
    assert planned_precision("auto", "gemma3_text", 8 * 10**9).dtype == "fp32"


def test_the_training_process_asks_the_same_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    """train/worker.py on a CUDA GPU without bf16 (faked): Gemma 3 gets fp32 with its reason, Llama fp16."""
    import torch

    from lora_tui.train.worker import choose_precision, precision_choice

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    gemma = precision_choice("auto", "gemma-3-1b-it")
    assert (gemma.dtype, gemma.device) == ("fp32", "cuda") and "overflows in fp16" in gemma.reason
    assert choose_precision("auto", "llama-3.2-1b") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_precision("auto", "gemma-3-1b-it") == "bf16"
