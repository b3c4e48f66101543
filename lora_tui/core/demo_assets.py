"""Where the demo's tokenizer and model are on this machine, and starting their background build.

Light on purpose (paths and a subprocess): the TUI calls `start_prebuild` as it opens, and the Data screen and
`inspect` ask `demo_tokenizer_file` whether the demo's tokens can be measured yet. The build itself is
`lora_tui.train.prebuild`, run as its own low-priority process so the TUI never waits for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lora_tui.core.paths import cache_dir as default_cache

DEMO_MODEL_DIR = "demo-model"
"""The demo model's directory under the cache root (lora_tui.train.demo builds it)."""
DEMO_TOKENIZER_DIR = "demo-tokenizer"
"""The demo tokenizer built ahead of the model, under the cache root."""
PREBUILD_LOG = "prebuild.log"
"""The background build's output, under the cache root."""
BUILD_TIMEOUT_S = 120.0
"""How long a caller waits for the demo tokenizer to be built (it takes seconds; a loaded machine, more)."""
PREBUILD_ENV = "LORA_TUI_PREBUILD"
"""Set to 0 to never start the background build when the TUI opens (the tests do); the demo tokenizer is still
built when something needs it (`build_demo_tokenizer`)."""

_started: subprocess.Popen[bytes] | None = None
"""The build this process started, so a second call does not start another."""


def demo_tokenizer_file(cache: Path | None = None) -> Path | None:
    """tokenizer.json of the built demo model, else of the demo tokenizer built ahead of it, else None."""
    root = cache or default_cache()
    for name in (DEMO_MODEL_DIR, DEMO_TOKENIZER_DIR):
        candidate = root / name / "tokenizer.json"
        if candidate.is_file():
            return candidate
    return None


def build_demo_tokenizer(cache: Path | None = None, *, timeout: float = BUILD_TIMEOUT_S) -> Path | None:
    """The demo tokenizer, built now in a child process when it is not on this machine yet (about a second of
    BPE training, plus the child's imports); None when the build fails or takes longer than `timeout`."""
    root = cache or default_cache()
    found = demo_tokenizer_file(root)
    if found is not None:
        return found
    args = [sys.executable, "-m", "lora_tui.train.prebuild", "--tokenizer-only", "--cache-dir", str(root)]
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(root / PREBUILD_LOG, "ab") as log:
            subprocess.run(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return demo_tokenizer_file(root)


def prebuild_enabled() -> bool:
    """False when $LORA_TUI_PREBUILD is 0 (or false/no/off)."""
    return os.environ.get(PREBUILD_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def prebuild_running() -> bool:
    """True while the build this process started is still going."""
    return _started is not None and _started.poll() is None


def start_prebuild(*, tokenizer_only: bool = False, cache: Path | None = None) -> bool:
    """Start building the demo tokenizer and model in the background, unless disabled, already started by this
    process, or both are built. Returns True when a build is (now) running."""
    global _started
    root = cache or default_cache()
    if not prebuild_enabled():
        return False
    if prebuild_running():
        return True
    model_built = (root / DEMO_MODEL_DIR / "model.safetensors").is_file()
    if demo_tokenizer_file(root) is not None and (tokenizer_only or model_built):
        return False
    args = [sys.executable, "-m", "lora_tui.train.prebuild", "--cache-dir", str(root)]
    if tokenizer_only:
        args.append("--tokenizer-only")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(root / PREBUILD_LOG, "ab") as log:
            _started = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        start_new_session=True)
    except OSError:
        return False
    return True
