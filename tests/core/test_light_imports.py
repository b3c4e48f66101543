"""lora_tui.core must stay importable without any UI or ML framework (ARCHITECTURE rule 1)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import lora_tui.core

HEAVY = ("textual", "torch", "transformers", "peft", "datasets", "trl", "accelerate")
CORE_MODULES = sorted(
    f"lora_tui.core.{m.name}" for m in pkgutil.iter_modules(lora_tui.core.__path__) if not m.name.startswith("_")
)


def test_core_has_modules() -> None:
    assert "lora_tui.core.plan" in CORE_MODULES and "lora_tui.core.runs" in CORE_MODULES


def _loaded_heavy(module: str) -> list[str]:
    code = (
        f"import json, sys, importlib; importlib.import_module({module!r}); "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_each_core_module_imports_nothing_heavy() -> None:
    offenders = {m: heavy for m in CORE_MODULES if (heavy := _loaded_heavy(m))}
    assert offenders == {}


def test_cli_parser_imports_nothing_heavy() -> None:
    assert _loaded_heavy("lora_tui.cli") == []
    code = (
        "import json, sys; from lora_tui.cli import build_parser; build_parser(); "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
