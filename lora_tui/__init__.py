"""lora-tui: from a GPU and a dataset to a trained LoRA adapter, with every choice explained."""

from __future__ import annotations

__version__ = "0.1.0"
