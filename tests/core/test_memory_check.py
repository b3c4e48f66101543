"""Estimated against measured memory as a person reads it (core/memory_check.py)."""

from __future__ import annotations

from lora_tui.core.memory_check import measured_peak, memory_line

GIB = 2**30


def test_cuda_line_has_allocated_reserved_ratio_and_the_first_steps() -> None:
    measured = {"device": "cuda", "peak_allocated_bytes": 3 * GIB, "peak_reserved_bytes": 4 * GIB,
                "first_steps": {"steps": 3, "peak_allocated_bytes": 2 * GIB}}
    assert memory_line({"total_bytes": 4 * GIB}, measured) == (
        "estimated 4.00 GiB, measured 3.00 GiB peak allocated (4.00 GiB reserved) (ratio 0.75); "
        "after 3 steps 2.00 GiB")


def test_cpu_line_says_what_was_measured() -> None:
    measured = {"device": "cpu", "peak_rss_growth_bytes": GIB // 2}
    assert memory_line({"total_bytes": GIB}, measured) == (
        "estimated 1.00 GiB, measured 0.50 GiB peak resident-set growth on the CPU (ratio 0.50)")
    assert measured_peak(measured) == GIB // 2


def test_missing_halves() -> None:
    assert memory_line(None, None) is None
    assert memory_line({"total_bytes": GIB}, None) == "estimated 1.00 GiB (nothing measured)"
    assert memory_line(None, {"peak_allocated_bytes": GIB}) == "no estimate, measured 1.00 GiB peak allocated"
    assert measured_peak({"peak_allocated_bytes": True}) is None  # a bool is no byte count
