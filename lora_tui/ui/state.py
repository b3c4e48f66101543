"""The wizard's state: what the person set, what the screens learned, and the plan `core.resolve` makes of them.

Every screen reads and writes this one object, so going back and forward never loses an entry. The plan is never
assembled here: every change calls `resolve(given, inputs)`, the same function `lora-tui train` calls once, so
the wizard and the CLI give the same plan, sources and reasons for the same intent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.resolve import PATTERN, PlanInputs, ResolvedPlan, resolve
from lora_tui.errors import UserError

if TYPE_CHECKING:
    from lora_tui.core.dataset.report import DatasetReport
    from lora_tui.core.hardware.detect import HardwareReport
    from lora_tui.core.models.inventory import ModelInventory

ADVISED = ("lora_r", "lora_alpha", "lora_dropout", "learning_rate", "per_device_train_batch_size",
           "gradient_accumulation_steps", "num_train_epochs", "warmup_ratio", "weight_decay", "max_seq_length",
           "target_modules", "gradient_checkpointing", "load_in_4bit", "eval_split", "save_steps", "keep",
           "early_stopping", "distributed")
"""The settings the advisor recommends and a person may override (its Reset forgets these)."""


@dataclass
class WizardState:
    """Everything the wizard has gathered so far, and the plan resolved from it."""

    given: dict[str, Any] = field(default_factory=dict)
    """Plan fields the person set (and `PATTERN`, a chosen target pattern); a recommendation never overrides them."""
    hardware: HardwareReport | None = None
    """The HardwareReport, once detected."""
    data_report: DatasetReport | None = None
    """The DatasetReport of the chosen data, once inspected."""
    data_model: str | None = None
    """The model whose tokenizer measured `data_report` (a new model's plan needs the data measured again)."""
    inventory: ModelInventory | None = None
    """The chosen model's ModelInventory, once loaded."""
    style: str = "standard"
    """The alpha/r style the advisor uses: conservative, standard or aggressive."""
    runs_root: Path | None = None
    """Where a run directory goes when none is given."""
    resolved: ResolvedPlan = field(init=False)
    """The plan `resolve` made of the above; replaced on every change."""

    def __post_init__(self) -> None:
        self.resolved = resolve(self.given, self.inputs())

    # ---- what the screens read ------------------------------------------------------------------------------

    @property
    def plan(self) -> TrainingPlan:
        """The run being configured."""
        return self.resolved.plan

    @property
    def sources(self) -> dict[str, str]:
        """Where each plan value came from: given (set here), recommended, default."""
        return self.resolved.sources

    @property
    def reasons(self) -> dict[str, str]:
        """Why each value not set by the person has its value."""
        return self.resolved.reasons

    @property
    def target_pattern(self) -> str:
        """The guide's pattern the targets are on this model (minimal, standard, maximum), or custom."""
        return self.resolved.target_pattern

    @property
    def edited(self) -> set[str]:
        """Plan fields the person set by hand (a chosen pattern counts as setting the targets)."""
        return {"target_modules" if k == PATTERN else k for k in self.given}

    @property
    def data_path(self) -> Path:
        """The data file in use (the built-in sample when none was chosen)."""
        return Path(self.plan.data) if self.plan.data else SAMPLE_DATA_PATH

    @property
    def vram_bytes(self) -> int | None:
        """Usable VRAM of the detected hardware, None on CPU or before detection."""
        value = getattr(self.hardware, "usable_vram_bytes", None)
        return int(value) if value else None

    def inputs(self) -> PlanInputs:
        """What the plan is resolved from besides the given values."""
        return PlanInputs(data_report=self.data_report, vram_bytes=self.vram_bytes, inventory=self.inventory,
                          style=self.style, runs_root=self.runs_root)

    # ---- what the screens change ----------------------------------------------------------------------------

    def update(self, **changes: Any) -> TrainingPlan:
        """Set plan fields as given (None forgets one); raises UserError naming the field, leaving the state."""
        given = {**self.given, **changes}
        if "target_modules" in changes:
            given.pop(PATTERN, None)
        return self._resolve({k: v for k, v in given.items() if v is not None})

    def choose_pattern(self, pattern: str) -> TrainingPlan:
        """Choose one of the guide's target patterns; the resolver maps it onto this model's modules."""
        given = {k: v for k, v in self.given.items() if k != "target_modules"}
        return self._resolve({**given, PATTERN: pattern})

    def forget(self, *names: str) -> TrainingPlan:
        """Drop the person's values for these fields, so the recommendation (or default) applies again."""
        dropped = {"target_modules", PATTERN} if "target_modules" in names else set()
        return self._resolve({k: v for k, v in self.given.items() if k not in names and k not in dropped})

    def start_from(self, plan: TrainingPlan, *, only_changed: bool = False, keep_output: bool = False
                   ) -> TrainingPlan:
        """Take `plan`'s values as given: all of them (a run to try again), or with `only_changed` those that
        differ from the defaults (a plan a test or a run file set up); its output directory only with
        `keep_output`."""
        defaults = TrainingPlan().to_dict()
        given = {k: v for k, v in plan.to_dict().items()
                 if k != "output" and v is not None and not (only_changed and v == defaults[k])}
        if keep_output:
            given["output"] = plan.output
        return self._resolve(given)

    def set_inputs(self, **inputs: Any) -> TrainingPlan:
        """Replace hardware, data_report (and data_model), inventory or style, and resolve again."""
        for name, value in inputs.items():
            if name not in ("hardware", "data_report", "data_model", "inventory", "style"):
                raise TypeError(f"not an input: {name}")
            setattr(self, name, value)
        try:
            return self._resolve(self.given)
        except UserError:  # a chosen pattern with none of its modules in a new model: take the advice
            return self.forget("target_modules")

    def _resolve(self, given: dict[str, Any]) -> TrainingPlan:
        self.resolved = resolve(given, self.inputs())
        self.given = given
        return self.resolved.plan
