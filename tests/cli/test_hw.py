"""`lora-tui hw [--json]` end to end, with a fake pynvml injected through `hardware._load_nvml`."""

from __future__ import annotations

import json
import subprocess
import sys

import pynvml
import pytest

from lora_tui.cli import main
from lora_tui.core.hardware import detect as hardware
from tests.helpers.fake_nvml import GIB, FakeGpu, FakeMig, FakeNvml


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """A fake NVML that `detect_hardware()` picks up; tests fill in its GPUs or errors."""
    fake = FakeNvml()
    monkeypatch.setattr(hardware, "_load_nvml", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def test_json_two_gpus(fake_nvml: FakeNvml, capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvml.gpus = [
        FakeGpu("NVIDIA GeForce RTX 4090", 25757220864, used=GIB, cc=(8, 9), util=97),
        FakeGpu("NVIDIA GeForce RTX 3070", 8589934592, cc=(8, 6)),
    ]
    assert main(["hw", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "cuda" and data["nvml_status"] == "ok"
    assert [(g["index"], g["name"], g["total_bytes"]) for g in data["gpus"]] == [
        (0, "NVIDIA GeForce RTX 4090", 25757220864),
        (1, "NVIDIA GeForce RTX 3070", 8589934592),
    ]
    assert data["gpus"][0]["free_bytes"] == 25757220864 - GIB and data["gpus"][0]["utilization_pct"] == 97
    assert data["gpus"][0]["compute_capability"] == [8, 9]
    assert data["usable_vram_bytes"] == 8589934592 and data["resource_tier"] == "standard"
    assert data["driver_version"] == "550.54.15" and data["cuda_driver_version"] == "12.4"
    assert data["cpu_cores"] >= 1 and data["ram_total_bytes"] > 0
    assert (fake_nvml.init_calls, fake_nvml.shutdown_calls) == (1, 1)


def test_human_table_shows_sizes_tier_and_mig(fake_nvml: FakeNvml, capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvml.gpus = [
        FakeGpu(
            "NVIDIA A100-SXM4-80GB",
            85899345920,
            cc=(8, 0),
            mig_mode=(1, 1),
            migs={0: FakeMig("NVIDIA A100-SXM4-80GB MIG 3g.40gb", 40 * GIB)},
        ),
        FakeGpu("NVIDIA A10", 23836033024),
    ]
    assert main(["hw"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA driver 550.54.15, CUDA 12.4; NVML: ok" in out
    lines = out.splitlines()
    a100 = next(line for line in lines if line.startswith("0 "))
    assert "85.9 GB (80.0 GiB)" in a100 and "8.0" in a100 and "on, 1 slice(s)" in a100
    assert any(line.strip().startswith("0.0") and "42.9 GB (40.0 GiB)" in line for line in lines)
    a10 = next(line for line in lines if line.startswith("1 "))
    assert "23.8 GB (22.2 GiB)" in a10 and a10.endswith("off")
    assert "Usable VRAM: 23.8 GB (22.2 GiB)" in out  # the A10 is smaller than the 40 GiB slice
    assert "Resource tier: high, > 16 GB VRAM: the guide's row uses r 32, alpha 64, batch 4 with 4 accumulation" in out
    assert "split by MIG into 1 slice(s)" in out
    assert out.count("Resource tier:") == 1


def test_low_tier_meaning(fake_nvml: FakeNvml, capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvml.gpus = [FakeGpu("NVIDIA GeForce GTX 1660", 6442450944, cc=(7, 5))]
    assert main(["hw"]) == 0
    out = capsys.readouterr().out
    assert "Resource tier: low, < 8 GB VRAM: the guide's row uses r 4, alpha 8, batch 1 with 16 accumulation" in out
    assert "without native bf16" in out


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (pynvml.NVMLError_LibraryNotFound, "NVML library not found (no NVIDIA driver installed)"),
        (pynvml.NVMLError_DriverNotLoaded, "NVIDIA driver not loaded"),
        (pynvml.NVMLError_NoPermission, "no permission to query the GPU"),
        (pynvml.NVMLError_GpuIsLost, "GPU is lost"),
    ],
)
def test_no_gpu_is_not_an_error(
    fake_nvml: FakeNvml, capsys: pytest.CaptureFixture[str], error: type[Exception], reason: str
) -> None:
    fake_nvml.init_error = error
    assert main(["hw"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert f"NVML: {reason}" in captured.out and "Training backend: cpu" in captured.out
    assert "Training falls back to the CPU" in captured.out and "Resource tier" not in captured.out
    assert main(["hw", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "cpu" and data["resource_tier"] is None and reason in data["nvml_status"]


def test_real_entry_point_on_this_machine() -> None:
    """The installed entry point, no fakes: this machine has no NVIDIA driver, so CPU, exit 0, no traceback."""
    out = subprocess.run([sys.executable, "-m", "lora_tui", "hw", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    data = json.loads(out.stdout)
    assert data["backend"] == "cpu" and data["nvml_status"] != "ok" and data["cpu_cores"] >= 1
