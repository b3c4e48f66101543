"""The TUI's settings file: what the person chose in the app and wants kept (the language, for now).

`$XDG_CONFIG_HOME/lora-tui/settings.toml`, else `~/.config/lora-tui/settings.toml`. A missing or unreadable file
is no settings; a write that fails is told to the caller, which says so and goes on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SETTINGS_NAME = "settings.toml"
"""The file name inside the config directory."""


def settings_path() -> Path:
    """Where the settings file is (it may not exist)."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "lora-tui" / SETTINGS_NAME


def load_settings(path: Path | None = None) -> dict[str, Any]:
    """The settings, or {} when there is no readable file."""
    try:
        with open(path or settings_path(), "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def remembered_language(path: Path | None = None) -> str | None:
    """The language chosen in the TUI last time, if any."""
    value = load_settings(path).get("language")
    return value if isinstance(value, str) else None


def save_language(lang: str, path: Path | None = None) -> Path:
    """Remember the language (other settings kept); OSError when the file cannot be written."""
    target = path or settings_path()
    settings = {**load_settings(target), "language": lang}
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {_toml_value(value)}" for key, value in settings.items() if _toml_value(value) is not None]
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def _toml_value(value: Any) -> str | None:
    """A scalar as TOML (the settings hold only strings, numbers and booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None
