"""lora-tui: from a GPU and a dataset to a trained LoRA adapter, with every choice explained."""

from __future__ import annotations

__version__ = "0.1.0"

import logging as _logging

# bitsandbytes (imported by PEFT whenever it is installed) warns at import on CPUs with AVX512-BF16 that an optional
# `kernels` package is missing, and falls back to its own CPU kernels; nothing a person can act on.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
