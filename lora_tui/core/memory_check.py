"""The memory estimate made before a run against what the run measured, as one line a person reads.

The training process records `measured` in training_info.json (`memory.measured`) and status.json (`memory`):
on CUDA the allocator's peak allocated and reserved bytes (for the whole run and after the first steps); on the
CPU the peak resident-set growth since just before the model was loaded, which is labelled as such, since the
estimate describes GPU memory (its CPU form has no CUDA context). The monitor, `runs show` and `adapters show`
print `memory_line`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lora_tui.core.units import fmt_gib
from lora_tui.i18n import _


def measured_peak(measured: Mapping[str, Any] | None) -> int | None:
    """The figure compared with the estimate: CUDA peak allocated bytes, else the CPU's peak RSS growth."""
    if not measured:
        return None
    for key in ("peak_allocated_bytes", "peak_rss_growth_bytes"):
        value = measured.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def memory_line(estimate: Mapping[str, Any] | None, measured: Mapping[str, Any] | None) -> str | None:
    """`estimated X, measured Y peak allocated (ratio R)`, `estimated X (nothing measured)`, or None when neither is
    known.

    CPU runs say `measured Y peak resident-set growth on the CPU`; reserved memory is added on CUDA, and the
    first steps' peak when the run went on beyond them.
    """
    raw = (estimate or {}).get("total_bytes")
    total = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0 else 0.0
    has_total = total > 0
    peak = measured_peak(measured)
    if not has_total and peak is None:
        return None
    estimated = _("estimated {size}").format(size=fmt_gib(int(total))) if has_total else _("no estimate")
    if peak is None:
        return _("{estimate} (nothing measured)").format(estimate=estimated)
    measured = measured or {}
    if "peak_allocated_bytes" in measured:
        reserved = measured.get("peak_reserved_bytes")
        text = _("measured {size} peak allocated ({reserved} reserved)").format(
            size=fmt_gib(peak), reserved=fmt_gib(reserved)) if isinstance(reserved, int) else \
            _("measured {size} peak allocated").format(size=fmt_gib(peak))
    else:
        text = _("measured {size} peak resident-set growth on the CPU").format(size=fmt_gib(peak))
    if has_total:
        text = _("{measured} (ratio {ratio})").format(measured=text, ratio=f"{peak / total:.2f}")
    first = measured.get("first_steps")
    first_peak = measured_peak(first) if isinstance(first, Mapping) else None
    if first_peak is not None and isinstance(first, Mapping) and first_peak != peak:
        text = _("{measured}; after {steps} steps {size}").format(measured=text, steps=first.get("steps", "?"),
                                                                 size=fmt_gib(first_peak))
    return _("{estimate}, {measured}").format(estimate=estimated, measured=text)
