"""Hardware detection with a faked NVML: 0, 1 and 2 GPUs, every error class, MIG, and the tier edges."""

from __future__ import annotations

import json
import subprocess
import sys

import pynvml
import pytest

from lora_tui.core.hardware import detect as hardware
from lora_tui.core.hardware.detect import GpuInfo, HardwareReport, detect_hardware, query_gpus, resource_tier_for
from tests.helpers.fake_nvml import GIB, FakeGpu, FakeMig, FakeNvml

NO_ENV: dict[str, str] = {}
"""An environment without CUDA_VISIBLE_DEVICES."""

# Totals exactly as NVML reports them for real cards (bytes).
RTX_3070_8GB = 8589934592
RTX_4060_TI_16GB = 17175674880
T4_16GB = 15828320256
A10_24GB = 23836033024
RTX_4090_24GB = 25757220864
A100_80GB = 85899345920
GTX_1660_6GB = 6442450944
RTX_4060_LAPTOP_8GB = 8188 * 1024**2  # 7.996 GiB
GTX_1070_8GB = 8119 * 1024**2  # 7.93 GiB
V100_16GB = 16945512448  # 15.78 GiB
RTX_3060_12GB = 12884901888


@pytest.mark.parametrize(
    ("total", "tier"),
    [
        (None, None),
        (GTX_1660_6GB, "low"),
        (int(7.6 * GIB), "standard"),  # the lowest an "8 GB" card reports
        (GTX_1070_8GB, "standard"),
        (RTX_4060_LAPTOP_8GB, "standard"),
        (RTX_3070_8GB, "standard"),
        (RTX_3060_12GB, "standard"),
        (T4_16GB, "standard"),
        (V100_16GB, "standard"),
        (RTX_4060_TI_16GB, "standard"),
        (16 * GIB, "standard"),  # the most a "16 GB" card reports
        (A10_24GB, "high"),
        (RTX_4090_24GB, "high"),
        (A100_80GB, "high"),
        (7_500_000_000 - 1, "low"),
        (7_500_000_000, "standard"),
        (17_500_000_000 - 1, "standard"),
        (17_500_000_000, "high"),
    ],
)
def test_resource_tier_for_real_nvml_totals(total: int | None, tier: str | None) -> None:
    assert resource_tier_for(total) == tier


def test_no_gpu_nvml_ok_falls_back_to_cpu() -> None:
    fake = FakeNvml([])
    report = detect_hardware(nvml=fake, env=NO_ENV)
    assert (report.backend, report.gpus, report.nvml_status) == ("cpu", (), "ok")
    assert report.usable_vram_bytes is None and report.resource_tier is None
    assert report.driver_version == "550.54.15" and report.cuda_driver_version == "12.4"
    assert "NVML found no NVIDIA GPU" in report.notes[0] and "CPU" in report.notes[0]
    assert (fake.init_calls, fake.shutdown_calls) == (1, 1)


def test_one_gpu_reports_every_field() -> None:
    fake = FakeNvml([FakeGpu("NVIDIA GeForce RTX 3070", RTX_3070_8GB, used=GIB, cc=(8, 6), util=42)])
    report = detect_hardware(nvml=fake, env=NO_ENV)
    assert report.backend == "cuda" and report.nvml_status == "ok"
    (gpu,) = report.gpus
    assert gpu == GpuInfo(
        index=0,
        name="NVIDIA GeForce RTX 3070",
        total_bytes=RTX_3070_8GB,
        free_bytes=RTX_3070_8GB - GIB,
        used_bytes=GIB,
        compute_capability=(8, 6),
        uuid="GPU-0000",
        is_mig=False,
        mig_devices=(),
        utilization_pct=42,
    )
    assert report.usable_vram_bytes == RTX_3070_8GB and report.resource_tier == "standard"
    assert report.notes[0].startswith("Resource tier: standard (8-16 GB VRAM)")
    assert "8.6 GB (8.0 GiB)" in report.notes[0]
    assert (fake.init_calls, fake.shutdown_calls) == (1, 1)


def test_two_gpus_of_mixed_size_take_the_tier_from_the_smaller() -> None:
    fake = FakeNvml([FakeGpu("NVIDIA A10", A10_24GB), FakeGpu("Tesla T4", T4_16GB, cc=(7, 5))])
    report = detect_hardware(nvml=fake, env=NO_ENV)
    assert [g.name for g in report.gpus] == ["NVIDIA A10", "Tesla T4"]
    assert report.usable_vram_bytes == T4_16GB and report.resource_tier == "standard"
    assert any("compute capability 7.5" in n and "fp16" in n for n in report.notes)
    assert not any("compute capability 8.6" in n for n in report.notes)


def test_busy_gpu_is_noted() -> None:
    report = detect_hardware(nvml=FakeNvml([FakeGpu("NVIDIA A10", A10_24GB, used=20 * GIB)]), env=NO_ENV)
    assert any("other processes hold 20.0 GiB of 22.2 GiB" in n for n in report.notes)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (pynvml.NVMLError_LibraryNotFound, "NVML library not found (no NVIDIA driver installed)"),
        (pynvml.NVMLError_DriverNotLoaded, "NVIDIA driver not loaded"),
        (pynvml.NVMLError_NoPermission, "no permission to query the GPU"),
        (pynvml.NVMLError_GpuIsLost, "GPU is lost"),
        (pynvml.NVMLError_NotSupported, "does not support"),
        (pynvml.NVMLError_Unknown, "unknown error"),
        (pynvml.NVMLError_LibRmVersionMismatch, "versions differ"),
        (pynvml.NVMLError_InsufficientResources, "NVML error 23"),  # no mapping: the code is still named
    ],
)
def test_every_init_error_becomes_a_readable_status_and_cpu(error: type[Exception], words: str) -> None:
    fake = FakeNvml([FakeGpu("NVIDIA A10", A10_24GB)], init_error=error)
    report = detect_hardware(nvml=fake, env=NO_ENV)
    assert report.backend == "cpu" and report.gpus == ()
    assert words in report.nvml_status
    assert report.nvml_status in report.notes[0]
    assert (fake.init_calls, fake.shutdown_calls) == (1, 0)  # no shutdown after a failed init


def test_os_error_loading_the_library_is_a_status() -> None:
    fake = FakeNvml(init_error=OSError("libnvidia-ml.so.1: wrong ELF class"))
    gpus, status = query_gpus(nvml=fake)
    assert gpus == () and status == "NVML library could not be loaded (libnvidia-ml.so.1: wrong ELF class)"


def test_missing_bindings_are_a_status(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pynvml() -> None:
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(hardware, "_load_nvml", no_pynvml)
    report = detect_hardware(env=NO_ENV)
    assert report.backend == "cpu"
    assert report.nvml_status == "NVML Python bindings not installed (pip install nvidia-ml-py)"


def test_count_error_after_init_still_shuts_down() -> None:
    fake = FakeNvml([FakeGpu("NVIDIA A10", A10_24GB)], count_error=pynvml.NVMLError_Unknown)
    gpus, status = query_gpus(nvml=fake)
    assert gpus == () and "unknown error" in status
    assert (fake.init_calls, fake.shutdown_calls) == (1, 1)


@pytest.mark.parametrize("failing", ["nvmlDeviceGetHandleByIndex", "nvmlDeviceGetName", "nvmlDeviceGetMemoryInfo"])
def test_one_failing_gpu_still_reports_the_others(failing: str) -> None:
    lost = FakeGpu("NVIDIA GeForce RTX 4090", RTX_4090_24GB, errors={failing: pynvml.NVMLError_GpuIsLost})
    fake = FakeNvml([FakeGpu("NVIDIA A10", A10_24GB), lost, FakeGpu("Tesla T4", T4_16GB)])
    report = detect_hardware(nvml=fake, env=NO_ENV)
    assert [g.index for g in report.gpus] == [0, 2]
    assert report.backend == "cuda" and report.resource_tier == "standard"
    assert report.nvml_status.startswith("GPU 1 could not be read: GPU is lost")
    assert any(n.startswith("Some GPUs are left out: GPU 1") for n in report.notes)
    assert fake.shutdown_calls == 1


def test_every_gpu_failing_falls_back_to_cpu_with_the_reason() -> None:
    broken = FakeGpu("NVIDIA A10", A10_24GB, errors={"nvmlDeviceGetMemoryInfo": pynvml.NVMLError_NoPermission})
    report = detect_hardware(nvml=FakeNvml([broken]), env=NO_ENV)
    assert report.backend == "cpu" and report.gpus == ()
    assert "GPU 0 could not be read: no permission" in report.notes[0]


def test_optional_queries_failing_leave_fields_empty() -> None:
    errors = {
        "nvmlDeviceGetUUID": pynvml.NVMLError_NotSupported,
        "nvmlDeviceGetCudaComputeCapability": pynvml.NVMLError_FunctionNotFound,
        "nvmlDeviceGetUtilizationRates": pynvml.NVMLError_GpuIsLost,
    }
    (gpu,), status = query_gpus(nvml=FakeNvml([FakeGpu("Old GPU", RTX_3070_8GB, errors=errors)]))
    assert status == "ok"
    assert (gpu.uuid, gpu.compute_capability, gpu.utilization_pct) == (None, None, None)


def test_bytes_from_old_pynvml_are_decoded() -> None:
    fake = FakeNvml([FakeGpu("x", RTX_3070_8GB)], driver=b"470.82.01")
    fake.gpus[0].name = b"Tesla V100-SXM2-16GB"  # type: ignore[assignment]
    report = detect_hardware(nvml=fake, env=NO_ENV)
    assert report.gpus[0].name == "Tesla V100-SXM2-16GB" and report.driver_version == "470.82.01"


def test_mig_slices_are_listed_and_the_smallest_sets_the_tier() -> None:
    a100 = FakeGpu(
        "NVIDIA A100-SXM4-80GB",
        A100_80GB,
        cc=(8, 0),
        mig_mode=(1, 1),
        migs={0: FakeMig("NVIDIA A100-SXM4-80GB MIG 3g.40gb", 40 * GIB), 3: FakeMig("MIG 1g.10gb", 9984 * 2**20)},
    )
    report = detect_hardware(nvml=FakeNvml([a100]), env=NO_ENV)
    (gpu,) = report.gpus
    assert gpu.is_mig and gpu.utilization_pct is None
    assert [(m.index, m.name, m.total_bytes, m.uuid) for m in gpu.mig_devices] == [
        (0, "NVIDIA A100-SXM4-80GB MIG 3g.40gb", 40 * GIB, "MIG-0-0"),
        (3, "MIG 1g.10gb", 9984 * 2**20, "MIG-0-3"),
    ]
    assert report.backend == "cuda"
    assert report.usable_vram_bytes == 9984 * 2**20 and report.resource_tier == "standard"
    assert any("split by MIG into 2 slice(s)" in n for n in report.notes)


def test_mig_on_without_instances_is_not_usable() -> None:
    a100 = FakeGpu("NVIDIA A100-SXM4-40GB", 40 * GIB, mig_mode=(1, 1), migs={})
    report = detect_hardware(nvml=FakeNvml([a100]), env=NO_ENV)
    assert report.gpus[0].is_mig and report.backend == "cpu" and report.resource_tier is None
    assert any("no MIG instances" in n for n in report.notes)


def test_mig_pending_only_is_not_mig() -> None:
    gpu = FakeGpu("NVIDIA A100-SXM4-40GB", 40 * GIB, mig_mode=(0, 1))
    report = detect_hardware(nvml=FakeNvml([gpu]), env=NO_ENV)
    assert not report.gpus[0].is_mig and report.usable_vram_bytes == 40 * GIB


@pytest.mark.parametrize(("value", "hidden"), [("", True), ("-1", True), ("-1,0", True), ("0", False), ("1,0", False)])
def test_cuda_visible_devices_hiding_every_gpu(value: str, hidden: bool) -> None:
    report = detect_hardware(nvml=FakeNvml([FakeGpu("NVIDIA A10", A10_24GB)]), env={"CUDA_VISIBLE_DEVICES": value})
    assert report.backend == ("cpu" if hidden else "cuda")
    assert len(report.gpus) == 1
    assert ("CUDA_VISIBLE_DEVICES hides every GPU" in report.notes[0]) is hidden


def test_to_dict_is_json_round_trip_stable() -> None:
    a100 = FakeGpu("A100", A100_80GB, mig_mode=(1, 1), migs={1: FakeMig("MIG 2g.20gb", 20 * GIB)})
    report = detect_hardware(nvml=FakeNvml([a100, FakeGpu("NVIDIA A10", A10_24GB)]), env=NO_ENV)
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["usable_vram_bytes"] == 20 * GIB and data["resource_tier"] == "high"
    assert data["gpus"][0]["compute_capability"] == [8, 6]
    assert data["gpus"][0]["mig_devices"][0]["name"] == "MIG 2g.20gb"
    expected_keys = {f for f in HardwareReport.__dataclass_fields__} | {"usable_vram_bytes", "resource_tier"}
    assert set(data) == expected_keys


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"index": -1}, "`index`"),
        ({"total_bytes": -5}, "`total_bytes`"),
        ({"utilization_pct": 101}, "`utilization_pct`"),
    ],
)
def test_gpu_info_validation_names_the_field(kwargs: dict[str, int], field_name: str) -> None:
    base = {"index": 0, "name": "g", "total_bytes": 1, "free_bytes": 1, "used_bytes": 0}
    with pytest.raises(ValueError, match=field_name):
        GpuInfo(**{**base, **kwargs})  # type: ignore[arg-type]


def test_report_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="`backend`"):
        HardwareReport("rocm", (), None, None, "ok", False, "cpu", 1, 1, 1)


def test_real_machine_without_gpu_is_cpu_with_readable_status() -> None:
    """This machine has no NVIDIA driver: the real pynvml must say so, not crash."""
    report = detect_hardware()
    assert report.backend == "cpu" and report.gpus == ()
    assert report.nvml_status != "ok" and "NVML" in report.nvml_status
    assert report.cpu_cores >= 1 and report.ram_total_bytes > 0
    assert 0 < report.ram_available_bytes <= report.ram_total_bytes
    assert report.cpu_name and report.mps_available is False


def test_detect_hardware_imports_no_torch() -> None:
    code = (
        "import sys, json; from lora_tui.core.hardware.detect import detect_hardware; detect_hardware(); "
        "print(json.dumps('torch' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False


def test_mps_backend_when_no_nvidia_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "mps_available", lambda: True)
    report = detect_hardware(nvml=FakeNvml(init_error=pynvml.NVMLError_LibraryNotFound), env=NO_ENV)
    assert report.backend == "mps" and report.mps_available is True
    assert report.usable_vram_bytes is None and report.resource_tier is None
    assert "Apple GPU (MPS)" in report.notes[0] and "--vram-gb" in report.notes[0]


def test_mps_is_not_probed_when_cuda_works(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run() -> bool:
        raise AssertionError("MPS probed on the CUDA path")

    monkeypatch.setattr(hardware, "mps_available", must_not_run)
    report = detect_hardware(nvml=FakeNvml([FakeGpu("NVIDIA A10", A10_24GB)]), env=NO_ENV)
    assert report.backend == "cuda" and report.mps_available is False


@pytest.mark.parametrize(
    ("system", "machine", "torch_found"),
    [("Linux", "x86_64", True), ("Darwin", "x86_64", True), ("Darwin", "arm64", False)],
)
def test_mps_check_decides_without_torch(
    monkeypatch: pytest.MonkeyPatch, system: str, machine: str, torch_found: bool
) -> None:
    from lora_tui.core.hardware import host

    monkeypatch.setattr(host.platform, "system", lambda: system)
    monkeypatch.setattr(host.platform, "machine", lambda: machine)
    monkeypatch.setattr(host.importlib.util, "find_spec", lambda name: object() if torch_found else None)
    assert host.mps_available() is False


def test_container_memory_limit_lowers_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    from lora_tui.core.hardware import host

    real_total, _ = host.ram_bytes()
    limit = real_total // 2
    monkeypatch.setattr(host, "cgroup_memory_limit", lambda: limit)
    total, available = host.ram_bytes()
    assert total == limit and 0 < available <= limit
