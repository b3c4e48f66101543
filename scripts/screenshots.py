"""Write SVG screenshots of the main screens to docs/screenshots/ (for the README), with fixed fake hardware.

Usage: .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ui")]

OUT = ROOT / "docs" / "screenshots"
SHOTS = (("hardware", 0), ("data", 1), ("task", 2), ("advisor", 3), ("review", 4))
"""(file name, ctrl+n presses from the start)."""


async def _settle(pilot) -> None:
    for _ in range(60):
        await pilot.pause(0.05)
        if all(w.is_finished for w in pilot.app.workers):
            break
    await pilot.pause(0.2)


async def wizard(tmp: Path) -> None:
    import ui_fakes

    from lora_tui.ui.app import make_app

    for name, steps in SHOTS:
        app = make_app(hardware_probe=ui_fakes.probe(24), gpu_query=ui_fakes.gpu_query(24), runs_root=Path("runs"),
                       gpu_interval=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(pilot)
            for _ in range(steps):
                await pilot.press("ctrl+n")
                await _settle(pilot)
            app.save_screenshot(str(OUT / f"{name}.svg"))


async def monitor(tmp: Path) -> None:
    import ui_fakes
    from test_snapshots import finished_run

    from lora_tui.ui.app import make_app

    run = finished_run(Path("runs"))
    app = make_app(hardware_probe=ui_fakes.probe(24), gpu_query=ui_fakes.gpu_query(24), runs_root=Path("runs"),
                   gpu_interval=0, start="runs", open_run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "monitor.svg"))


def main() -> None:
    """Write every screenshot."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        asyncio.run(wizard(Path(tmp)))
        asyncio.run(monitor(Path(tmp)))
    print("\n".join(str(p) for p in sorted(OUT.glob("*.svg"))))


if __name__ == "__main__":
    main()
