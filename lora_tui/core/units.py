"""Byte units and the ways lora-tui prints sizes, defined once.

Two unit systems are in play on purpose. GPU memory, RAM and the memory estimate are binary (GiB: what CUDA,
PyTorch and nvidia-smi report); card labels, the guide's resource tiers and file sizes shown by `adapters` are
decimal (GB: how vendors and file managers count). Each formatter below says which it uses; they differ in
output on purpose, so keep the one whose strings the README and the tests show.
"""

from __future__ import annotations

KB = 1000
"""Bytes in a (decimal) kilobyte."""
MB = 1000**2
"""Bytes in a (decimal) megabyte."""
GB = 1000**3
"""Bytes in a (decimal) gigabyte: card labels, the guide's resource table and `--vram-gb`."""
KIB = 1024
"""Bytes in a kibibyte."""
MIB = 1024**2
"""Bytes in a mebibyte."""
GIB = 1024**3
"""Bytes in a gibibyte: how CUDA, PyTorch and nvidia-smi report memory."""


def fmt_bytes(value: float | None) -> str:
    """Binary, one decimal, the largest unit that fits: `7.8 GiB`, `512.0 MiB`, `12.0 KiB`, `144 B`; `-` when
    unknown. The TUI's sizes and `inspect`'s file size."""
    if value is None:
        return "-"
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{int(value)} B"


def fmt_gib(n: float, digits: int = 2) -> str:
    """Always GiB, `digits` decimals: `9.87 GiB` (memory estimates), `22.2 GiB` with digits=1 (hardware notes)."""
    return f"{n / GIB:.{digits}f} GiB"


def fmt_gb_gib(n: float) -> str:
    """Decimal GB as cards are labelled, then GiB as tools report: `85.9 GB (80.0 GiB)` (`hw`, tier notes)."""
    return f"{n / GB:.1f} GB ({n / GIB:.1f} GiB)"


def fmt_gib_or_mb(n: float) -> str:
    """GiB with two decimals from one GiB, else decimal MB with one: `1.86 GiB`, `208.7 MB` (`plan`'s parts)."""
    return fmt_gib(n) if n >= GIB else f"{n / MB:.1f} MB"


def fmt_gib_or_mib(n: float) -> str:
    """GiB with two decimals from one GiB, else MiB with one: `2.00 GiB`, `512.0 MiB` (merge messages)."""
    return fmt_gib(n) if n >= GIB else f"{n / MIB:.1f} MiB"


def fmt_decimal_bytes(n: float) -> str:
    """Decimal, the largest unit below 1000 up to GB: `999 B`, `613.3 KB`, `52.2 MB`, `1.5 GB` (adapter files)."""
    for unit, size in (("GB", GB), ("MB", MB), ("KB", KB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"
