"""Where a recommended value comes from: a typed source kind and the exact place, for every reason.

A reason names one of these kinds and never cites the guide for a value the guide does not state. The kinds:
a guide table row (the task, data-size, resource, pattern and alpha tables), a worked example of the guide (with
its section), the guide's training script (its stated defaults), one of the guide's troubleshooting remedies,
current LoRA practice (the `practice` advice style, presets/practice.toml), and lora-tui's own default or rule
(measured data, the memory estimate, a model preset), said as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from lora_tui.i18n import N_, pgettext

ADVICE = ("guide", "practice")
"""The advice styles: `guide` (the guide's tables, exactly; the default) and `practice` (current LoRA practice)."""

ADVICE_WORDS = {"guide": N_("the guide"), "practice": N_("common LoRA practice")}
"""How a reason names each advice style (English; `_()` shows it)."""


class SourceKind(str, Enum):
    """The kind of source a recommended value comes from."""

    GUIDE_TABLE = "guide table"
    """A row of one of the guide's tables (task presets, data size, resources, target patterns, alpha styles)."""
    GUIDE_EXAMPLE = "guide worked example"
    """One of the guide's practical examples (its command line)."""
    GUIDE_SCRIPT = "guide training script"
    """A default the guide states for its training script."""
    GUIDE_REMEDY = "guide troubleshooting"
    """A remedy of the guide's troubleshooting section."""
    PRACTICE = "common LoRA practice"
    """Current LoRA practice (Unsloth, LLaMA-Factory, TRL, QLoRA), not the guide."""
    LORA_TUI = "lora-tui"
    """lora-tui's own default or rule (the guide does not state the value)."""
    YOURS = "your choice"
    """An option the person chose (e.g. --load-in-4bit)."""

    @property
    def words(self) -> str:
        """The kind as a person reads it (the value itself, which JSON holds, in English)."""
        return pgettext("source kind", self.value)


TOML_KINDS = {"script": SourceKind.GUIDE_SCRIPT, "remedy": SourceKind.GUIDE_REMEDY, "lora-tui": SourceKind.LORA_TUI,
              "guide": SourceKind.GUIDE_TABLE, "example": SourceKind.GUIDE_EXAMPLE,
              "practice": SourceKind.PRACTICE}
"""The `kind` words of the preset files."""


@dataclass(frozen=True)
class Citation:
    """The source of one recommended value."""

    kind: SourceKind
    """What kind of source it is."""
    where: str
    """The exact place: the table and row, the example and its section, the rule."""

    @property
    def is_guide(self) -> bool:
        """Whether the guide itself states the value."""
        return self.kind in (SourceKind.GUIDE_TABLE, SourceKind.GUIDE_EXAMPLE, SourceKind.GUIDE_SCRIPT,
                             SourceKind.GUIDE_REMEDY)

    def to_dict(self) -> dict[str, str]:
        """JSON form: kind and where."""
        return {"kind": self.kind.value, "where": self.where}
