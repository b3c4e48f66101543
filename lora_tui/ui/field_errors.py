"""A core error message as the TUI shows it: naming the setting's field, never a `lora-tui train` flag.

Core's messages name both (``\\`eval_split\\` (--eval-split) must be ...``) because the CLI reads them too; inside
the TUI the person has a field to change, not a command line, so the flags are replaced by field names.
"""

from __future__ import annotations

import re
from functools import cache

from lora_tui.core.plan import TrainingPlan, flag_for

_FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")


@cache
def _fields_by_flag() -> dict[str, str]:
    return {flag_for(name): name for name in TrainingPlan.field_names()}


_PAIR = re.compile(r"`([a-z0-9_]+)` ?[(（](--[a-z0-9-]+)[)）]")
"""A "`field` (--flag)" pair, as English and the translations write it (ASCII or full-width brackets)."""


def field_message(text: str) -> str:
    """`text` (in any language) with each plan flag as its field name (a "`field` (--flag)" pair becomes
    "`field`")."""
    fields = _fields_by_flag()
    text = _PAIR.sub(lambda m: f"`{m.group(1)}`" if fields.get(m.group(2)) == m.group(1) else m.group(0), text)
    return _FLAG.sub(lambda m: fields.get(m.group(0), m.group(0)), text)
