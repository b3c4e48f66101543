"""Where lora-tui keeps its files: a cache (demo model, model inventories) and the default output root."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The installed `lora_tui` package directory."""

PRESETS_DIR = PACKAGE_DIR / "presets"
"""The guide's tables and the model presets, as TOML/JSON data files."""

SAMPLE_DATA_PATH = PACKAGE_DIR / "data" / "sample_chat.jsonl"
"""The built-in sample dataset (short Japanese and English chats), the default `--data`."""


def cache_dir() -> Path:
    """Cache root: `$LORA_TUI_CACHE`, else `$XDG_CACHE_HOME/lora-tui`, else `~/.cache/lora-tui`."""
    env = os.environ.get("LORA_TUI_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lora-tui"


def output_root() -> Path:
    """Where new runs go by default and where run/adapter listings look: `$LORA_TUI_RUNS`, else `./runs`."""
    env = os.environ.get("LORA_TUI_RUNS")
    return Path(env).expanduser() if env else Path.cwd() / "runs"
