"""Formatting numbers for people: bytes (from `lora_tui.core.units`), parameter counts, learning rates, shares."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from lora_tui.core.plan import fmt_value as core_fmt_value
from lora_tui.core.units import fmt_bytes

__all__ = ["as_dict", "display_path", "fmt_bytes", "fmt_count", "fmt_metric", "fmt_value"]
"""`fmt_bytes` is `lora_tui.core.units.fmt_bytes`, re-exported for the screens."""


def fmt_count(value: int | float | None) -> str:
    """`1,327,104`; `-` when unknown."""
    return "-" if value is None else f"{int(value):,}"


def fmt_value(value: Any) -> str:
    """A setting as a person types it (1e-4, 5e-5, 3, comma-joined lists, on/off): `core.plan.fmt_value`, so the
    screens, the command line and the advisor's reasons agree."""
    return core_fmt_value(value)


def fmt_metric(value: float | None) -> str:
    """A logged metric (loss, learning rate, grad norm) to three significant digits: 2.31, 9.88e-5."""
    if value is None or not math.isfinite(value):
        return "-"
    return fmt_value(float(f"{value:.3g}"))


def as_dict(obj: Any) -> dict[str, Any]:
    """A report-like object as a dict (to_dict(), a dataclass, a mapping or attributes)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def display_path(path: str | Path) -> str:
    """A path as a person wants to read it: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
