"""`python -m lora_tui` is the same program as `lora-tui`."""

from __future__ import annotations

from lora_tui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
