"""What the machine has to train on: NVIDIA GPUs through NVML, Apple MPS, or the CPU, as plain dataclasses.

Nothing here raises because a driver is missing. Every NVML failure (no library, driver not loaded, no
permission, a lost GPU, ...) becomes a readable `nvml_status` and a fallback to MPS or the CPU. pynvml is
imported inside the query, and torch only on Apple silicon, only to ask whether MPS works.

Resource tier (the guide's "resource constraint" table: < 8 GB, 8-16 GB, > 16 GB of VRAM). GB here is decimal,
as vendors label cards and as presets/guide.toml counts it. NVML reports less than the label (the driver and
ECC reserve some) and in bytes: an "8 GB" card 7.6-8.0 GiB (8.2-8.6 GB), a "16 GB" T4 14.7 GiB (15.8 GB), an
RTX 4060 Ti 16 GB 15.996 GiB (17.18 GB). Neither plain reading puts cards in their class (17.18 GB > 16;
7.6 GiB < 8), so the edges sit between classes: an 8 GB card counts from 7.5 GB, and "above 16 GB" starts at
17.5 GB, past the largest 16 GB card (16 GiB = 17.18 GB). These are also presets/guide.toml's resource bounds.
The tier comes from the smallest usable device, because a run must fit on whichever one it lands on; with MIG
enabled a process sees one slice, so slices count instead of the card.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lora_tui.core.hardware.host import cpu_cores, cpu_name, cuda_hidden, mps_available, ram_bytes
from lora_tui.core.hardware.notes import hardware_notes
from lora_tui.i18n import N_, Phrase, english

BACKENDS = ("cuda", "mps", "cpu")
"""Where training can run: NVIDIA GPU, Apple GPU, or the CPU."""

_MIG_ENABLED = 1
"""NVML_DEVICE_MIG_ENABLE: the current-mode value nvmlDeviceGetMigMode reports when MIG is on."""

_NVML_REASONS: dict[int, str] = {
    1: N_("NVML was not initialised (an internal error in lora-tui)"),
    3: N_("the GPU or driver does not support this NVML query"),
    4: N_("no permission to query the GPU (check access to /dev/nvidia* or run as a user in the video group)"),
    6: N_("the GPU was not found (it may have been removed or hidden)"),
    8: N_("the GPU lacks external power (check its power cables)"),
    9: N_("NVIDIA driver not loaded (the kernel module is missing or failed to load; try nvidia-smi)"),
    10: N_("the GPU did not answer in time"),
    11: N_("the GPU has an interrupt problem (check the driver log with dmesg)"),
    12: N_("NVML library not found (no NVIDIA driver installed)"),
    13: N_("the NVIDIA driver is too old for this query"),
    14: N_("the GPU's infoROM is corrupted (the card needs service)"),
    15: N_("GPU is lost: it stopped responding and needs a reset or a reboot"),
    16: N_("the GPU needs a reset or a reboot"),
    17: N_("the operating system blocked the request"),
    18: N_("the NVIDIA driver and its library versions differ (reboot after a driver update)"),
    20: N_("NVML ran out of memory"),
    999: N_("NVML reported an unknown error (try nvidia-smi)"),
}
"""NVML error codes (pynvml's NVML_ERROR_*) mapped to what they mean for a person (English; shown translated)."""


@dataclass(frozen=True)
class MigDevice:
    """One MIG slice of a GPU: what a process placed on it can use."""

    index: int
    """MIG device index within its parent GPU."""
    name: str
    """NVML name, which carries the profile, e.g. `NVIDIA A100-SXM4-40GB MIG 1g.5gb`."""
    total_bytes: int
    """Memory of the slice, in bytes."""
    free_bytes: int
    """Memory of the slice not in use, in bytes."""
    uuid: str | None = None
    """MIG UUID (`MIG-...`), the form CUDA_VISIBLE_DEVICES takes; None where NVML does not give it."""

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError("`index` must be >= 0")
        if self.total_bytes < 0 or self.free_bytes < 0:
            raise ValueError("`total_bytes` and `free_bytes` must be >= 0")


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML reports it."""

    index: int
    """NVML device index (PCI bus order; CUDA's order can differ unless CUDA_DEVICE_ORDER=PCI_BUS_ID)."""
    name: str
    """Product name, e.g. `NVIDIA GeForce RTX 4090`."""
    total_bytes: int
    """Total device memory, in bytes (already less than the marketed size)."""
    free_bytes: int
    """Device memory not allocated by any process, in bytes."""
    used_bytes: int
    """Device memory allocated (by processes and the driver), in bytes."""
    compute_capability: tuple[int, int] | None = None
    """CUDA compute capability (major, minor); 8.0 and up has native bf16. None where NVML does not say."""
    uuid: str | None = None
    """GPU UUID (`GPU-...`); None where NVML does not give it."""
    is_mig: bool = False
    """MIG mode is enabled on this GPU: processes see its MIG slices, not the whole card."""
    mig_devices: tuple[MigDevice, ...] = ()
    """The MIG slices that exist (empty when MIG is off, or on with no instances created)."""
    utilization_pct: int | None = None
    """GPU busy percentage over NVML's last sample period; None where NVML does not give it (e.g. MIG)."""

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError("`index` must be >= 0")
        for name in ("total_bytes", "free_bytes", "used_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0")
        if self.utilization_pct is not None and not 0 <= self.utilization_pct <= 100:
            raise ValueError("`utilization_pct` must be in [0, 100]")

    @property
    def usable_totals(self) -> tuple[int, ...]:
        """Memory of each unit a training process can be given: the card, or each MIG slice."""
        if self.is_mig:
            return tuple(m.total_bytes for m in self.mig_devices)
        return (self.total_bytes,)


@dataclass(frozen=True)
class HardwareReport:
    """Everything lora-tui knows about the machine's training hardware."""

    backend: str
    """Where training will run: `cuda`, `mps` or `cpu`."""
    gpus: tuple[GpuInfo, ...]
    """NVIDIA GPUs NVML could read (empty without NVML)."""
    driver_version: str | None
    """NVIDIA driver version, e.g. `550.54.15`; None without NVML."""
    cuda_driver_version: str | None
    """Newest CUDA version the driver supports, e.g. `12.4`; None without NVML."""
    nvml_status: str
    """`ok` when NVML answered for every GPU, else the reason in plain words (a `Phrase`: English, shown in the
    current language)."""
    mps_available: bool
    """Apple's Metal (MPS) backend works here."""
    cpu_name: str
    """CPU model name, or the architecture when the name is unknown."""
    cpu_cores: int
    """Logical CPUs this process may run on."""
    ram_total_bytes: int
    """System memory (or the container's limit, if lower), in bytes."""
    ram_available_bytes: int
    """Memory available to new processes without swapping, in bytes."""
    notes: tuple[str, ...] = field(default=())
    """Plain-language explanations of what was found and what it means for training, in the language of the
    detection (`notes.hardware_notes` makes them again in the current one)."""
    cuda_hidden: bool = False
    """CUDA_VISIBLE_DEVICES hides every GPU (what the notes say CUDA sees)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"`backend` must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.cpu_cores < 1:
            raise ValueError("`cpu_cores` must be >= 1")
        if self.ram_total_bytes < 0 or self.ram_available_bytes < 0:
            raise ValueError("`ram_total_bytes` and `ram_available_bytes` must be >= 0")

    @property
    def usable_vram_bytes(self) -> int | None:
        """Memory of the smallest usable CUDA device (MIG: the smallest slice); None when not on CUDA."""
        if self.backend != "cuda":
            return None
        totals = [t for gpu in self.gpus for t in gpu.usable_totals]
        return min(totals) if totals else None

    @property
    def resource_tier(self) -> str | None:
        """The guide's resource tier (`low`, `standard`, `high`) from usable VRAM; None without a GPU."""
        return resource_tier_for(self.usable_vram_bytes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: the fields (tuples as lists) plus `usable_vram_bytes` and `resource_tier`; the notes
        in English whatever the language shown."""
        data = _jsonable(asdict(self))
        if self.notes:
            with english():
                data["notes"] = list(hardware_notes(self))
        data["usable_vram_bytes"] = self.usable_vram_bytes
        data["resource_tier"] = self.resource_tier
        return data


def _jsonable(value: Any) -> Any:
    """Tuples to lists, recursively, so a report survives a JSON round trip unchanged."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def resource_tier_for(vram_bytes: int | None) -> str | None:
    """The guide's tier for a device of `vram_bytes` as NVML reports it; None for no device.

    `low` below 7.5 GB, `high` from 17.5 GB, `standard` between (see the module docstring for why). The bounds
    live in presets/guide.toml; this is `lora_tui.core.tables.resource_tier`.
    """
    from lora_tui.core.tables import resource_tier

    return resource_tier(vram_bytes)


# --- NVML -------------------------------------------------------------------------------------------------


def _load_nvml() -> Any:
    """Import and return the pynvml module (from nvidia-ml-py). Tests replace this hook with a fake."""
    import pynvml

    return pynvml


def nvml_reason(exc: BaseException) -> str:
    """A readable reason for an NVML error (any NVMLError subclass, or the OSError of a failed load)."""
    code = getattr(exc, "value", None)
    if isinstance(code, int) and code in _NVML_REASONS:
        return Phrase(_NVML_REASONS[code])
    if isinstance(exc, OSError):
        return Phrase("NVML library could not be loaded ({error})", error=str(exc))
    try:
        text = str(exc)
    except Exception:  # pynvml's __str__ calls into the library, which may itself be broken
        text = ""
    return Phrase("NVML error {code}: {error}", code=code, error=text) if text else Phrase("NVML error {code}",
                                                                                           code=code)


def _text(value: Any) -> str:
    """NVML strings are bytes in old pynvml releases and str in new ones."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class _NvmlResult:
    """What one NVML session returned."""

    gpus: tuple[GpuInfo, ...]
    """GPUs read successfully."""
    status: str
    """`ok`, or why NVML (or some GPU) could not be read."""
    driver_version: str | None = None
    """Driver version string."""
    cuda_driver_version: str | None = None
    """CUDA version the driver supports, as `major.minor`."""


def _optional(nvml: Any, fn_name: str, *args: Any) -> Any:
    """Call an NVML query that some GPUs or drivers lack; None when it fails or the binding is missing."""
    fn = getattr(nvml, fn_name, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except nvml.NVMLError:
        return None


def _read_mig_devices(nvml: Any, handle: Any) -> tuple[MigDevice, ...]:
    """The MIG slices that exist on a MIG-enabled GPU (empty slots and unreadable slices are skipped)."""
    slots = _optional(nvml, "nvmlDeviceGetMaxMigDeviceCount", handle) or 0
    slices: list[MigDevice] = []
    for slot in range(int(slots)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            memory = nvml.nvmlDeviceGetMemoryInfo(mig)
            name = _text(nvml.nvmlDeviceGetName(mig))
        except nvml.NVMLError:  # NOT_FOUND: no instance in this slot
            continue
        uuid = _optional(nvml, "nvmlDeviceGetUUID", mig)
        slices.append(
            MigDevice(
                index=slot,
                name=name,
                total_bytes=int(memory.total),
                free_bytes=int(memory.free),
                uuid=_text(uuid) if uuid is not None else None,
            )
        )
    return tuple(slices)


def _read_gpu(nvml: Any, index: int) -> GpuInfo:
    """One GPU's facts. Name and memory are required (NVMLError propagates); the rest are optional."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(nvml.nvmlDeviceGetName(handle))
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    capability = _optional(nvml, "nvmlDeviceGetCudaComputeCapability", handle)
    uuid = _optional(nvml, "nvmlDeviceGetUUID", handle)
    mig_mode = _optional(nvml, "nvmlDeviceGetMigMode", handle)
    is_mig = bool(mig_mode) and int(mig_mode[0]) == _MIG_ENABLED
    rates = _optional(nvml, "nvmlDeviceGetUtilizationRates", handle)
    return GpuInfo(
        index=index,
        name=name,
        total_bytes=int(memory.total),
        free_bytes=int(memory.free),
        used_bytes=int(memory.used),
        compute_capability=(int(capability[0]), int(capability[1])) if capability else None,
        uuid=_text(uuid) if uuid is not None else None,
        is_mig=is_mig,
        mig_devices=_read_mig_devices(nvml, handle) if is_mig else (),
        utilization_pct=int(rates.gpu) if rates is not None else None,
    )


def _cuda_version_text(version: Any) -> str | None:
    """NVML's CUDA driver version integer (12040) as `12.4`."""
    if not isinstance(version, int) or version <= 0:
        return None
    return f"{version // 1000}.{(version % 1000) // 10}"


def _query_nvml(nvml: Any | None) -> _NvmlResult:
    """One NVML session: init, read every GPU (one failing does not hide the others), always shut down."""
    if nvml is None:
        try:
            nvml = _load_nvml()
        except ImportError:
            return _NvmlResult((), Phrase("NVML Python bindings not installed (pip install nvidia-ml-py)"))
    try:
        nvml.nvmlInit()
    except (nvml.NVMLError, OSError) as exc:
        return _NvmlResult((), nvml_reason(exc))
    try:
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            return _NvmlResult((), nvml_reason(exc))
        gpus: list[GpuInfo] = []
        failures: list[str] = []
        for index in range(count):
            try:
                gpus.append(_read_gpu(nvml, index))
            except nvml.NVMLError as exc:
                failures.append(Phrase("GPU {index} could not be read: {reason}", index=index, reason=nvml_reason(exc)))
        driver = _optional(nvml, "nvmlSystemGetDriverVersion")
        return _NvmlResult(
            gpus=tuple(gpus),
            status=_joined(failures) if failures else "ok",
            driver_version=_text(driver) if driver is not None else None,
            cuda_driver_version=_cuda_version_text(_optional(nvml, "nvmlSystemGetCudaDriverVersion")),
        )
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass


def _joined(reasons: list[str]) -> str:
    """`first; second; ...` of several reasons, kept a Phrase."""
    out = reasons[0]
    for reason in reasons[1:]:
        out = Phrase("{first}; {second}", first=out, second=reason)
    return out


def query_gpus(nvml: Any | None = None) -> tuple[tuple[GpuInfo, ...], str]:
    """The GPUs NVML can read now and NVML's status (`ok` or a reason): the TUI's live refresh.

    `nvml` is a pynvml-like module (tests pass a fake); None imports pynvml through `_load_nvml`.
    """
    result = _query_nvml(nvml)
    return result.gpus, result.status


# --- the report -------------------------------------------------------------------------------------------


def detect_hardware(nvml: Any | None = None, env: Mapping[str, str] | None = None) -> HardwareReport:
    """Probe the machine: NVML GPUs, else MPS, else CPU. Never raises for a missing or broken driver.

    `nvml` is a pynvml-like module (tests pass a fake); None imports pynvml through `_load_nvml`.
    `env` defaults to os.environ (only CUDA_VISIBLE_DEVICES is read).
    """
    env = os.environ if env is None else env
    result = _query_nvml(nvml)
    hidden = cuda_hidden(env)
    usable = any(gpu.usable_totals for gpu in result.gpus) and not hidden
    mps = False if usable else mps_available()
    ram_total, ram_available = ram_bytes()
    report = HardwareReport(
        backend="cuda" if usable else "mps" if mps else "cpu",
        gpus=result.gpus,
        driver_version=result.driver_version,
        cuda_driver_version=result.cuda_driver_version,
        nvml_status=result.status,
        mps_available=mps,
        cpu_name=cpu_name(),
        cpu_cores=cpu_cores(),
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        cuda_hidden=hidden,
    )
    return replace(report, notes=hardware_notes(report))
