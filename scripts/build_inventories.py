"""Regenerate the preset inventories (lora_tui/presets/models/*.json) from the configs stored in them.

Each preset file keeps the config.json content it was built from; this script builds every model on the meta
device (no weights, no download) with the installed transformers, writes the inventory back into the file, and
compares the total parameter count with the published figure stored next to it.

    .venv/bin/python scripts/build_inventories.py [NAME ...]

Exit status 1 when a total differs from its published figure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lora_tui.core.models._build import build_inventory_dict
from lora_tui.core.models.modules import MODELS_DIR


def rebuild(path: Path) -> tuple[str, int, int | None]:
    """Rebuild one preset file in place; returns (name, built total, published total)."""
    meta = json.loads(path.read_text(encoding="utf-8"))
    inventory = build_inventory_dict(meta["config"], meta["name"])
    if meta.get("inventory") != inventory:  # unchanged files keep their hand formatting (demo.json's `recommend`)
        meta["inventory"] = inventory
        path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    published = meta.get("published_params")
    if published is not None and meta.get("published_params_untied"):
        # the published figure counts a tied LM head twice (see the file's `published_note`)
        published -= inventory["vocab_size"] * inventory["hidden_size"]
    return meta["name"], int(inventory["total_params"]), published


def main(argv: list[str]) -> int:
    """Rebuild the named presets (all when none are named) and report totals against published figures."""
    wanted = {a.lower() for a in argv}
    mismatches = 0
    for path in sorted(MODELS_DIR.glob("*.json")):
        if wanted and path.stem not in wanted:
            continue
        name, total, published = rebuild(path)
        if published is None:
            verdict = "no published figure"
        elif total == published:
            verdict = "matches published"
        else:
            verdict = f"DIFFERS from published {published:,}"
            mismatches += 1
        print(f"{name:28s} {total:>15,d}  {verdict}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
