"""The wizard's state: one TrainingPlan plus what the screens learned on the way, kept by the App.

Every screen reads and writes this one object, so going back and forward never loses an entry, and the review
screen's command line is always the plan the person sees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan

TARGET_PATTERNS: dict[str, tuple[str, ...]] = {
    "minimal": ("q_proj", "v_proj"),
    "standard": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "maximum": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}
"""The guide's three target-module patterns (minimal: memory first; standard: recommended; maximum: quality)."""


@dataclass
class WizardState:
    """Everything the wizard has gathered so far."""

    plan: TrainingPlan = field(default_factory=TrainingPlan)
    """The run being configured; replaced (validated) on every change."""
    sources: dict[str, str] = field(default_factory=dict)
    """Where each plan value came from: given (typed here), recommended, default."""
    hardware: Any | None = None
    """The HardwareReport, once detected."""
    data_report: Any | None = None
    """The DatasetReport of the chosen data, once inspected."""
    inventory: Any | None = None
    """The chosen model's ModelInventory, once loaded."""
    target_pattern: str = "standard"
    """minimal, standard, maximum or custom."""
    style: str = "standard"
    """The alpha/r style the advisor uses: conservative, standard or aggressive."""
    edited: set[str] = field(default_factory=set)
    """Plan fields the person set by hand; a new recommendation leaves them alone."""

    def __post_init__(self) -> None:
        if self.target_pattern not in (*TARGET_PATTERNS, "custom"):
            raise ValueError("`target_pattern` must be minimal, standard, maximum or custom")

    @property
    def data_path(self) -> Path:
        """The data file in use (the built-in sample when none was chosen)."""
        return Path(self.plan.data) if self.plan.data else SAMPLE_DATA_PATH

    @property
    def vram_bytes(self) -> int | None:
        """Usable VRAM of the detected hardware, None on CPU or before detection."""
        value = getattr(self.hardware, "usable_vram_bytes", None)
        return int(value) if value else None

    def update(self, source: str = "given", **changes: Any) -> TrainingPlan:
        """Replace the plan with `changes` applied (raises UserError naming the field when invalid)."""
        self.plan = dataclasses.replace(self.plan, **changes)
        for key in changes:
            self.sources[key] = source
            if source == "given":
                self.edited.add(key)
        return self.plan

    def apply_recommendation(self, values: dict[str, Any]) -> TrainingPlan:
        """Take the advisor's values for every field the person has not set by hand."""
        known = set(TrainingPlan.field_names())
        changes = {k: v for k, v in values.items() if k in known and k not in self.edited}
        if "target_modules" in changes:
            self.target_pattern = pattern_of(changes["target_modules"])
        return self.update("recommended", **changes) if changes else self.plan


def free_run_dir(root: Path, stem: str) -> Path:
    """`root/stem`, or `root/stem-2`, `-3`… : the first that does not exist or is empty."""
    for n in range(1, 10_000):
        candidate = root / (stem if n == 1 else f"{stem}-{n}")
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
    raise RuntimeError(f"no free run directory under {root}")


def pattern_of(targets: list[str] | tuple[str, ...]) -> str:
    """The guide's pattern name these targets are (order ignored), or `custom`."""
    for name, names in TARGET_PATTERNS.items():
        if set(names) == set(targets):
            return name
    return "custom"


def local_tokenizer(model: str) -> Path | None:
    """The tokenizer.json of `model` when it is on this machine, else None (never downloads).

    `demo` is the demo model's directory in the cache once built; a local directory is used as it is; a preset
    name or hub id is looked up in the Hugging Face cache.
    """
    from lora_tui.core.dataset.tokens import find_tokenizer_file
    from lora_tui.core.models.modules import preset
    from lora_tui.errors import UserError

    name = model.strip()
    if not name:
        return None
    meta = None if name.lower() == "demo" or Path(name).expanduser().exists() else preset(name)
    try:
        return find_tokenizer_file(meta["hub_id"] if meta else name)
    except UserError:
        return None
