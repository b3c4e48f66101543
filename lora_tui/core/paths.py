"""Where lora-tui keeps its files: a cache (demo model, model inventories) and the default output root."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lora_tui.errors import UserError
from lora_tui.i18n import _

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The installed `lora_tui` package directory."""

PRESETS_DIR = PACKAGE_DIR / "presets"
"""The guide's tables and the model presets, as TOML/JSON data files."""

SAMPLE_DATA_PATH = PACKAGE_DIR / "data" / "sample_chat.jsonl"
"""The built-in sample dataset (short Japanese and English chats), the default `--data`."""


def cache_dir() -> Path:
    """Cache root: `$LORA_TUI_CACHE`, else `$XDG_CACHE_HOME/lora-tui`, else `~/.cache/lora-tui`."""
    env = os.environ.get("LORA_TUI_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lora-tui"


def output_root() -> Path:
    """Where new runs go by default and where run/adapter listings look: `$LORA_TUI_RUNS`, else `./runs`."""
    env = os.environ.get("LORA_TUI_RUNS")
    return Path(env).expanduser() if env else Path.cwd() / "runs"


def free_run_dir(root: Path, stem: str) -> Path:
    """`root/stem`, or `root/stem-2`, `-3`…: the first that does not exist or is an empty directory (UserError when
    all 9,999 are taken)."""
    for n in range(1, _FREE_NAMES + 1):
        candidate = root / (stem if n == 1 else f"{stem}-{n}")
        if not candidate.exists() or (candidate.is_dir() and not any(candidate.iterdir())):
            return candidate
    raise UserError(_("{root}: no free run directory ({stem} to {stem}-{last} are all taken); choose another "
                      "--output").format(root=root, stem=stem, last=_FREE_NAMES))


_FREE_NAMES = 9_999
"""How many names (`stem`, `stem-2` … `stem-9999`) `free_run_dir` tries."""


def run_slug(model: str) -> str:
    """A directory-name form of a model name: `Qwen/Qwen3-8B` -> `Qwen3-8B`, `demo` -> `demo`."""
    name = Path(model.strip()).name or model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"


def default_output(model: str, root: Path | None = None) -> Path:
    """Where a run of `model` goes when no output is given: the first free `ROOT/MODEL`, `MODEL-2`, …"""
    return free_run_dir(root if root is not None else output_root(), run_slug(model))


def retry_output(output: str, root: Path) -> Path:
    """A free directory for another try of the run in `output`: `NAME-retry`, `NAME-retry-2`, …"""
    stem = Path(output).name.rsplit("-retry", 1)[0] + "-retry"
    return free_run_dir(root, stem)


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """A temporary directory beside `target` to build into; when the block ends normally it replaces `target`
    (a rename, so a reader sees the old directory or the new one, never half of one); on an exception it is
    removed and `target` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
