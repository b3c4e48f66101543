"""The tokenized training data, cached by content: a resume, a retry after out-of-memory or a sweep's next run
tokenizes nothing that an earlier run already did.

The key is a SHA-256 of everything the token ids and labels depend on: the bytes of every data file the path
names (a file, whatever its name; a directory's files; a glob's matches), the tokenizer (its whole tokenizers
JSON, chat template, BOS/EOS), the column mapping, the length examples are cut to, and `FORMAT`. An entry is a
`datasets` save of the tokenized examples beside the stats that go into training_info.json, written into a
temporary directory and renamed, so a killed run leaves no half entry; the `KEEP` most recently used entries
are kept.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = 1
"""Bumped whenever what an entry holds, or how examples are encoded, changes."""
KEEP = 8
"""Entries kept; the least recently used beyond them are removed."""
STATS_FILE = "lora_tui_stats.json"


def cache_root() -> Path:
    """`CACHE/tokenized` (the cache root of core.paths)."""
    from lora_tui.core.paths import cache_dir

    return cache_dir() / "tokenized"


def data_files(path: str | Path) -> list[Path]:
    """The regular files a data path names, in a stable order."""
    spec = str(path)
    p = Path(spec).expanduser()
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
    if not p.exists() and set("*?[") & set(spec):
        return sorted(Path(f) for f in glob.glob(os.path.expanduser(spec), recursive=True) if Path(f).is_file())
    return [p]


def key(path: str | Path, tokenizer_json: str, template: Any, bos: str, eos: str, columns: str | None,
        max_length: int | None) -> str:
    """The content key of one tokenization."""
    digest = hashlib.sha256(json.dumps([FORMAT, template, bos, eos, columns, max_length]).encode())
    digest.update(hashlib.sha256(tokenizer_json.encode()).digest())
    root = Path(str(path)).expanduser()
    for file in data_files(path):
        # within a directory the names order the shards; a single file's suffix names its format
        digest.update(str(file.relative_to(root) if root.is_dir() else "".join(file.suffixes)).encode() + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def cached(entry_key: str, make: Callable[[], tuple[Any, dict[str, Any]]]) -> tuple[Any, dict[str, Any], bool]:
    """(dataset, stats, True) from the cache, else `make()`'s, stored: (dataset, stats, False)."""
    from datasets import load_from_disk

    root = cache_root()
    entry = root / entry_key
    stats_file = entry / STATS_FILE
    if stats_file.is_file():
        try:
            stats = json.loads(stats_file.read_text(encoding="utf-8"))
            dataset = load_from_disk(str(entry))
            os.utime(entry)  # recently used
            return dataset, stats, True
        except (OSError, ValueError):
            shutil.rmtree(entry, ignore_errors=True)  # damaged: made again below
    dataset, stats = make()
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry_key}.", dir=root))
        dataset.save_to_disk(str(tmp))
        (tmp / STATS_FILE).write_text(json.dumps(stats), encoding="utf-8")
        os.replace(tmp, entry)
        _prune(root)
    except OSError:  # a full or read-only cache, or another run that stored it first: nothing is lost
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return dataset, stats, False


def _prune(root: Path) -> None:
    entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
