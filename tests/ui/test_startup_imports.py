"""The TUI's start-up path never imports the training stack (the brief's rule; the monitor reads run files)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "datasets", "trl", "accelerate")

SCRIPT = f"""
import asyncio, json, sys
from lora_tui.ui.app import make_app

async def main():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(4):  # through the wizard to Review, as a first-time user does
            await pilot.pause(0.3)
            await app.workers.wait_for_complete()
            await pilot.press("ctrl+n")
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        screen = type(app.screen).__name__
    print(json.dumps({{"screen": screen, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))

asyncio.run(main())
"""


def test_wizard_to_review_imports_no_training_stack(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["screen"] == "ReviewScreen"  # it really went through the wizard
