"""lora_tui.core.units: the exact strings each size formatter prints, at and around its unit boundaries."""

from __future__ import annotations

import pytest

from lora_tui.core.units import (
    GB,
    GIB,
    KB,
    KIB,
    MB,
    MIB,
    fmt_bytes,
    fmt_decimal_bytes,
    fmt_gb_gib,
    fmt_gib,
    fmt_gib_or_mb,
    fmt_gib_or_mib,
)


def test_constants() -> None:
    assert (KB, MB, GB) == (1000, 1_000_000, 1_000_000_000)
    assert (KIB, MIB, GIB) == (1024, 1_048_576, 1_073_741_824)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (144, "144 B"),
        (KIB - 1, "1023 B"),
        (KIB, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (MIB - 1, "1024.0 KiB"),
        (MIB, "1.0 MiB"),
        (512 * MIB, "512.0 MiB"),
        (GIB - 1, "1024.0 MiB"),
        (GIB, "1.0 GiB"),
        (int(7.8 * GIB), "7.8 GiB"),
        (2048 * GIB, "2048.0 GiB"),
        (-2 * GIB, "-2.0 GiB"),
    ],
)
def test_fmt_bytes(value: int | None, text: str) -> None:
    assert fmt_bytes(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (KB, "1.0 KB"),
        (613_300, "613.3 KB"),
        (MB - 1, "1000.0 KB"),
        (MB, "1.0 MB"),
        (52_200_000, "52.2 MB"),
        (GB, "1.0 GB"),
        (1500 * GB, "1500.0 GB"),
    ],
)
def test_fmt_decimal_bytes(value: int, text: str) -> None:
    assert fmt_decimal_bytes(value) == text


def test_fmt_gib_digits() -> None:
    assert fmt_gib(GIB) == "1.00 GiB"
    assert fmt_gib(GIB // 2) == "0.50 GiB"
    assert fmt_gib(0.75 * GIB) == "0.75 GiB"
    assert fmt_gib(int(22.2 * GIB), 1) == "22.2 GiB"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (80 * GIB, "85.9 GB (80.0 GiB)"),
        (23_836_033_024, "23.8 GB (22.2 GiB)"),  # an A10 as NVML reports it
        (8 * GIB, "8.6 GB (8.0 GiB)"),
        (0, "0.0 GB (0.0 GiB)"),
    ],
)
def test_fmt_gb_gib(value: int, text: str) -> None:
    assert fmt_gb_gib(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (208_700_000, "208.7 MB"),
        (GIB - 1, "1073.7 MB"),  # decimal MB right up to one GiB
        (GIB, "1.00 GiB"),
        (int(1.86 * GIB), "1.86 GiB"),
    ],
)
def test_fmt_gib_or_mb(value: int, text: str) -> None:
    assert fmt_gib_or_mb(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0.0 MiB"),
        (512 * MIB, "512.0 MiB"),
        (GIB - 1, "1024.0 MiB"),
        (GIB, "1.00 GiB"),
        (2 * GIB, "2.00 GiB"),
    ],
)
def test_fmt_gib_or_mib(value: int, text: str) -> None:
    assert fmt_gib_or_mib(value) == text


def test_units_is_light() -> None:
    """A leaf module: importing it pulls in no other lora_tui module."""
    import subprocess
    import sys

    code = "import sys, lora_tui.core.units; print(sorted(m for m in sys.modules if m.startswith('lora_tui.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['lora_tui.core', 'lora_tui.core.units']"
