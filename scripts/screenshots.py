"""Write SVG screenshots of the main screens to docs/screenshots/ (for the README), with fixed fake hardware.

The app runs in the repository root with its runs and cache (LORA_TUI_CACHE) in build/screenshots/ (ignored
by git, removed afterwards), so every path shown is relative and the same on every machine. When the demo
model is already built in your cache, it is linked in, so the screens show what a person sees after the first
run (token statistics of the sample data, the demo model available offline); otherwise a fresh machine.

`--lang ja` writes the same screens in Japanese to docs/screenshots/ja/ (the README's Japanese screenshots).

Usage: .venv/bin/python scripts/screenshots.py [--lang ja]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

OUT = ROOT / "docs" / "screenshots"
SHOTS = (("hardware", 0), ("data", 1), ("task", 2), ("advisor", 3), ("review", 4))
"""(file name, ctrl+n presses from the start)."""


async def _settle(pilot) -> None:
    from tests.helpers import waits

    await waits.settle(pilot)


async def wizard() -> None:
    from lora_tui.ui.app import make_app
    from tests.helpers import ui_fakes

    for name, steps in SHOTS:
        app = make_app(hardware_probe=ui_fakes.probe(24), gpu_query=ui_fakes.gpu_query(24), runs_root=WORK / "runs",
                       gpu_interval=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await _settle(pilot)
            for _ in range(steps):
                await pilot.press("ctrl+n")
                await _settle(pilot)
            app.save_screenshot(str(OUT / f"{name}.svg"))


async def monitor() -> None:
    from lora_tui.ui.app import make_app
    from tests.helpers import ui_fakes
    from tests.ui.test_snapshots import finished_run

    run = finished_run(WORK / "runs")
    app = make_app(hardware_probe=ui_fakes.probe(24), gpu_query=ui_fakes.gpu_query(24), runs_root=WORK / "runs",
                   gpu_interval=0, start="runs", open_run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        await pilot.wait_for_scheduled_animations()
        app.save_screenshot(str(OUT / "monitor.svg"))


WORK = Path("build") / "screenshots"
"""Runs root and cache of the screenshot session, relative to the repository root."""


def neutral_cache() -> None:
    """Point LORA_TUI_CACHE at WORK/cache, linking in an already built demo model."""
    from lora_tui.core.paths import cache_dir

    built = cache_dir() / "demo-model"
    cache = WORK / "cache"
    os.environ["LORA_TUI_CACHE"] = str(cache)
    cache.mkdir(parents=True)
    if (built / "tokenizer.json").is_file():
        (cache / "demo-model").symlink_to(built.resolve(), target_is_directory=True)


def main() -> None:
    """Write every screenshot, in English or (`--lang ja`) in Japanese."""
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=("en", "ja"), default="en")
    lang = parser.parse_args().lang
    if lang != "en":
        OUT = OUT / lang
    from lora_tui import i18n

    i18n.set_language(lang)
    OUT.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    shutil.rmtree(WORK, ignore_errors=True)
    try:
        neutral_cache()
        os.environ["XDG_CONFIG_HOME"] = str(WORK / "config")  # the user's settings file is neither read nor written
        asyncio.run(wizard())
        asyncio.run(monitor())
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print("\n".join(str(p) for p in sorted(OUT.glob("*.svg"))))


if __name__ == "__main__":
    main()
