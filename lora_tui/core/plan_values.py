"""How a plan's values are read and written as text: a person's yes/no, a value as a flag shows it, TOML."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from lora_tui.i18n import N_

_KIND_WORDS = {"int": N_("a whole number"), "float": N_("a number"), "bool": N_("yes or no"),
               "list": N_("a list of names")}
"""How each field kind is named in an error (catalogue messages: `_()` shows them)."""


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise ValueError(text)


def _shown(value: Any) -> str:
    """A value as an error message quotes it (huge numbers shortened)."""
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_value(value: Any) -> str:
    """A setting's value as a person writes it: 5e-5 not 5e-05, 3 not 3.0, lists comma-joined."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6:
            return str(int(value))
        if abs(value) < 1e-3:
            mantissa, exponent = f"{value:.3e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return re.sub(r"e([+-])0(\d)", r"e\1\2", f"{value:g}")
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
