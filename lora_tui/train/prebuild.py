"""Build the demo's tokenizer (about a second) and then its model (about 90 s on 2 cores) ahead of use.

`python -m lora_tui.train.prebuild` is what the TUI starts in the background when it opens
(`lora_tui.core.demo_assets.start_prebuild`), so the Data screen measures the sample's tokens on the first visit
and the first demo run finds its model ready. `--tokenizer-only` stops after the tokenizer.

The tokenizer goes to `<cache>/demo-tokenizer`, built by the same deterministic `demo.build_tokenizer` the demo
model's build uses, so its files equal the model's (a test checks); a built demo model's own tokenizer is
preferred once it exists. Both builds happen in a temporary directory renamed into place under a file lock, so
any number of racing processes end with one complete copy.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lora_tui.core.demo_assets import DEMO_TOKENIZER_DIR, demo_tokenizer_file
from lora_tui.core.models.modules import demo_config
from lora_tui.core.paths import cache_dir as default_cache
from lora_tui.core.paths import staged_dir
from lora_tui.train import demo

NICE = 10
"""Scheduling niceness of the background build: the TUI in front of it keeps the CPU when it needs it."""


def ensure_demo_tokenizer(cache_dir: Path | None = None) -> Path:
    """The demo tokenizer's tokenizer.json, built on first use (the demo model's own when that is built)."""
    cache = cache_dir or default_cache()
    found = demo_tokenizer_file(cache)
    if found is not None:
        return found
    target = cache / DEMO_TOKENIZER_DIR
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{DEMO_TOKENIZER_DIR}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = demo_tokenizer_file(cache)
        if found is not None:
            return found
        with staged_dir(target) as tmp:
            demo.build_tokenizer(int(demo_config()["vocab_size"])).save_pretrained(tmp)
    return target / "tokenizer.json"


def main(argv: Sequence[str] | None = None) -> int:
    """Build the tokenizer, then (unless --tokenizer-only) the demo model; 0 when done, 1 on a failure."""
    parser = argparse.ArgumentParser(prog="python -m lora_tui.train.prebuild", description=__doc__)
    parser.add_argument("--tokenizer-only", action="store_true", help="stop after the demo tokenizer")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache root (default: lora-tui's)")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError):
        os.nice(NICE)
    try:
        ensure_demo_tokenizer(args.cache_dir)
        if not args.tokenizer_only:
            demo.ensure_demo_model(args.cache_dir)
    except Exception as exc:  # a background build: its one line goes to the log the TUI names
        print(f"lora-tui prebuild: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
