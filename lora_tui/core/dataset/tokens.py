"""Token-length statistics for a dataset, with a tokenizer that is already on this machine.

The `tokenizers` library is imported lazily (it is small next to transformers). Examples are rendered as plain
`role: content` lines rather than through the model's chat template, which needs transformers and jinja; real
training sequences are a few template tokens per turn longer.
"""

from __future__ import annotations

import math
import os
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_tui.core.paths import cache_dir
from lora_tui.errors import UserError

ENCODE_BATCH = 256
"""Examples encoded per `encode_batch` call."""


@dataclass(frozen=True)
class TokenStats:
    """Token lengths of a dataset's examples under one tokenizer."""

    tokenizer: str
    """Where the tokenizer came from (a directory or tokenizer.json path)."""
    count: int
    """Examples measured."""
    median: int
    """Lower median length in tokens."""
    p95: int
    """95th percentile length in tokens (nearest rank)."""
    max: int
    """Longest example in tokens."""
    mean: float
    """Mean length in tokens."""
    over_max: int
    """Examples longer than `max_seq_length` (they would be truncated)."""
    max_seq_length: int
    """The sequence length the examples were compared with, in tokens."""

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("`count` must be >= 0")
        if self.max_seq_length < 1:
            raise ValueError("`max_seq_length` must be >= 1")
        if not 0 <= self.over_max <= self.count:
            raise ValueError("`over_max` must be between 0 and `count`")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "tokenizer": self.tokenizer,
            "count": self.count,
            "median": self.median,
            "p95": self.p95,
            "max": self.max,
            "mean": round(self.mean, 2),
            "over_max": self.over_max,
            "max_seq_length": self.max_seq_length,
        }


def find_tokenizer_file(spec: str | Path) -> Path:
    """The tokenizer.json of a directory, a file path, `demo` (once built), or a hub id in the local HF cache."""
    if str(spec).strip().lower() == "demo":
        demo = cache_dir() / "demo-model" / "tokenizer.json"
        if demo.is_file():
            return demo
        raise UserError("--tokenizer demo: the demo model is not built yet; `lora-tui train --model demo` "
                        "builds it")
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidate = path / "tokenizer.json"
        if candidate.is_file():
            return candidate
        raise UserError(f"--tokenizer {spec}: no tokenizer.json in this directory; pass a model directory "
                        "that has one")
    cached = _hub_cache_tokenizer(str(spec))
    if cached is not None:
        return cached
    raise UserError(f"--tokenizer {spec}: not a local directory and not in the Hugging Face cache; "
                    "download the model once or pass a directory containing tokenizer.json")


def local_tokenizer(model: str) -> Path | None:
    """The tokenizer.json of `model` when it is on this machine, else None (never downloads).

    `demo` is the demo model's directory in the cache once built; a local directory is used as it is; a preset
    name or hub id is looked up in the Hugging Face cache.
    """
    from lora_tui.core.models.modules import preset

    name = model.strip()
    if not name:
        return None
    meta = None if name.lower() == "demo" or Path(name).expanduser().exists() else preset(name)
    try:
        return find_tokenizer_file(meta["hub_id"] if meta else name)
    except UserError:
        return None


def _hub_cache_tokenizer(repo_id: str) -> Path | None:
    """tokenizer.json of `repo_id` in the hub cache ($HF_HUB_CACHE, else $HF_HOME/hub)."""
    if repo_id.count("/") != 1:
        return None
    hub = os.environ.get("HF_HUB_CACHE")
    if not hub:
        home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
        hub = str(Path(home) / "hub")
    snapshots = Path(hub) / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted(snapshots.glob("*/tokenizer.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


class TokenCounter:
    """Collects token lengths batch by batch (4 bytes per example, never the texts)."""

    def __init__(self, tokenizer_file: Path, label: str) -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(os.fspath(tokenizer_file))
        except Exception as exc:  # the library raises a bare Exception on a malformed file
            raise UserError(f"{tokenizer_file}: cannot load this tokenizer: {exc}") from None
        self._label = label
        self._pending: list[str] = []
        self._lengths = array("I")

    def add(self, text: str) -> None:
        """Queue one rendered example."""
        self._pending.append(text)
        if len(self._pending) >= ENCODE_BATCH:
            self._flush()

    def _flush(self) -> None:
        """Encode the queued texts (special tokens included, as training adds them)."""
        if self._pending:
            encodings = self._tok.encode_batch(self._pending, add_special_tokens=True)
            self._lengths.extend(len(e.ids) for e in encodings)
            self._pending.clear()

    def stats(self, max_seq_length: int) -> TokenStats | None:
        """The statistics so far (None when no example was measured)."""
        self._flush()
        return summarise(self._lengths, self._label, max_seq_length)


def summarise(lengths: Iterable[int], label: str, max_seq_length: int) -> TokenStats | None:
    """Median (lower), p95 (nearest rank), max, mean and how many exceed `max_seq_length`."""
    ordered = sorted(lengths)
    n = len(ordered)
    if n == 0:
        return None
    return TokenStats(
        tokenizer=label,
        count=n,
        median=ordered[(n - 1) // 2],
        p95=ordered[max(0, math.ceil(0.95 * n) - 1)],
        max=ordered[-1],
        mean=sum(ordered) / n,
        over_max=sum(1 for x in ordered if x > max_seq_length),
        max_seq_length=max_seq_length,
    )
