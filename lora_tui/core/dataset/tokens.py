"""Token-length statistics for a dataset, with the model's tokenizer when it is already on this machine.

Examples are rendered with the model's chat template and tokenized by core.dataset.encode, the code the training
process tokenizes with, so the lengths, the examples over max_seq_length and the share of tokens that carry the
loss are the training run's. The `tokenizers` library is imported lazily (it is small next to transformers).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import os
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_tui.core.dataset.encode import Encoded, Encoder
from lora_tui.core.demo_assets import PREBUILD_LOG, build_demo_tokenizer
from lora_tui.core.hub import HubError, fetch_tokenizer, fetched_tokenizer_dir
from lora_tui.core.paths import cache_dir
from lora_tui.errors import UserError
from lora_tui.i18n import _


@dataclass(frozen=True)
class TokenStats:
    """Token lengths of a dataset's examples, rendered and tokenized exactly as training does."""

    tokenizer: str
    """Where the tokenizer came from (a directory, a tokenizer.json path, a hub id)."""
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
    """Examples longer than `max_seq_length` (training keeps their start and cuts the rest)."""
    max_seq_length: int
    """The sequence length the examples were compared with, in tokens."""
    trained_token_share: float = 1.0
    """Share of all tokens that carry the loss (the assistant's turns, the completion; all of plain text)."""
    first_over: str | None = None
    """`file:line` of the first example longer than `max_seq_length`, None when none is."""
    template: str = ""
    """The chat template the examples were rendered with ('' when none was needed: plain text)."""
    sorted_lengths: array[int] = field(default_factory=lambda: array("I"), compare=False, repr=False)
    """Every example's length, sorted (4 bytes each), for `at`."""
    longest_so_far: tuple[tuple[int, str], ...] = field(default=(), compare=False, repr=False)
    """(length, location) of each example longer than every one before it, in file order, for `at`."""

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("`count` must be >= 0")
        if self.max_seq_length < 1:
            raise ValueError("`max_seq_length` must be >= 1")
        if not 0 <= self.over_max <= self.count:
            raise ValueError("`over_max` must be between 0 and `count`")
        if not 0 <= self.trained_token_share <= 1:
            raise ValueError("`trained_token_share` must be in [0, 1]")

    def over(self, length: int) -> int:
        """How many examples are longer than `length` tokens."""
        if not self.sorted_lengths:
            return self.over_max if length == self.max_seq_length else 0
        return len(self.sorted_lengths) - bisect.bisect_right(self.sorted_lengths, length)

    def first_longer(self, length: int) -> str | None:
        """Location of the first example (in file order) longer than `length` tokens."""
        for n, where in self.longest_so_far:
            if n > length:
                return where
        return None

    def at(self, max_seq_length: int) -> TokenStats:
        """The same statistics compared with another sequence length."""
        if max_seq_length == self.max_seq_length:
            return self
        return dataclasses.replace(self, max_seq_length=max_seq_length, over_max=self.over(max_seq_length),
                                   first_over=self.first_longer(max_seq_length))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "tokenizer": self.tokenizer,
            "template": self.template,
            "count": self.count,
            "median": self.median,
            "p95": self.p95,
            "max": self.max,
            "mean": round(self.mean, 2),
            "over_max": self.over_max,
            "first_over": self.first_over,
            "max_seq_length": self.max_seq_length,
            "trained_token_share": round(self.trained_token_share, 4),
        }


def find_tokenizer_file(spec: str | Path) -> Path:
    """The tokenizer.json of a directory, a file path, `demo` (once built), or a hub id in the local HF cache."""
    if str(spec).strip().lower() == "demo":
        demo = build_demo_tokenizer()
        if demo is not None:
            return demo
        raise UserError(_("--tokenizer demo: building the demo tokenizer failed; see {log} or run "
                          "`python -m lora_tui.train.prebuild --tokenizer-only`").format(
                              log=cache_dir() / PREBUILD_LOG))
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidate = path / "tokenizer.json"
        if candidate.is_file():
            return candidate
        raise UserError(_("--tokenizer {spec}: no tokenizer.json in this directory; pass a model directory that "
                          "has one").format(spec=spec))
    cached = _hub_cache_tokenizer(str(spec))
    if cached is not None:
        return cached
    if str(spec).count("/") == 1:
        fetched = fetched_tokenizer_dir(str(spec)) / "tokenizer.json"
        if fetched.is_file():
            return fetched
    raise UserError(_("--tokenizer {spec}: not a local directory and not in the Hugging Face cache; pass "
                      "--fetch-tokenizer (a few MB), download the model once, or pass a directory containing "
                      "tokenizer.json").format(spec=spec))


def hub_repo(model: str) -> str | None:
    """The hub repository whose tokenizer `model` trains with (a preset's hub id, or the hub id itself); None for
    `demo` and local paths."""
    from lora_tui.core.models.modules import preset

    name = model.strip()
    if not name or name.lower() == "demo" or Path(name).expanduser().exists():
        return None
    meta = preset(name)
    if meta is not None:
        return str(meta["hub_id"])
    return name if name.count("/") == 1 and not name.startswith((".", "/", "~")) else None


def get_tokenizer(model: str) -> Path:
    """`model`'s tokenizer.json: the local one, else fetched from the hub (its tokenizer files only, a few MB).
    UserError saying why when neither works."""
    found = local_tokenizer(model)
    if found is not None:
        return found
    repo = hub_repo(model)
    if repo is None:
        raise UserError(_("{model}: no tokenizer.json there; choose a model directory that has one").format(
            model=model))
    try:
        return fetch_tokenizer(repo)
    except HubError as exc:
        raise UserError(_("{repo}: could not fetch its tokenizer: {error}").format(repo=repo, error=exc)) from None


def local_tokenizer(model: str) -> Path | None:
    """The tokenizer.json of `model` when it is on this machine, else None (never downloads).

    `demo` is the demo model's tokenizer, built on first need (a second; `core.demo_assets`); a local directory
    is used as it is; a preset name or hub id is looked up in the Hugging Face cache.
    """
    name = model.strip()
    if not name:
        return None
    try:
        return find_tokenizer_file(hub_repo(name) or name)
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
    """Measures encoded examples: their lengths (4 bytes each, never the texts), trained tokens, longest ones."""

    def __init__(self, tokenizer_file: Path, label: str) -> None:
        from lora_tui.core.dataset.template import load_template

        self.tokenizer = load_tokenizer(tokenizer_file)
        self.template = load_template(tokenizer_file)
        self.label = label
        self.used_template = False
        """Whether any example was rendered with the chat template (chat data)."""
        self._lengths = array("I")
        self._trained = 0
        self._longest: list[tuple[int, str]] = []

    def encoder(self, *, keep_offsets: bool = False) -> Encoder:
        """An Encoder with this tokenizer and template."""
        return Encoder(self.tokenizer, self.template, keep_offsets=keep_offsets)

    def add(self, encoded: Encoded, where: str | Callable[[], str]) -> None:
        """Count one encoded example found at `where` (a location, or a function making it when needed)."""
        n = encoded.length
        self._lengths.append(n)
        self._trained += encoded.trained_count
        if not self._longest or n > self._longest[-1][0]:
            self._longest.append((n, where if isinstance(where, str) else where()))

    def stats(self, max_seq_length: int) -> TokenStats | None:
        """The statistics so far (None when no example was measured)."""
        lengths = array("I", sorted(self._lengths))
        n = len(lengths)
        if n == 0:
            return None
        total = sum(lengths)
        stats = TokenStats(
            tokenizer=self.label, count=n, median=lengths[(n - 1) // 2],
            p95=lengths[max(0, math.ceil(0.95 * n) - 1)], max=lengths[-1], mean=total / n, over_max=0,
            max_seq_length=max_seq_length, trained_token_share=self._trained / total if total else 0.0,
            template=self.template.name if self.used_template else "", sorted_lengths=lengths,
            longest_so_far=tuple(self._longest))
        return dataclasses.replace(stats, over_max=stats.over(max_seq_length),
                                   first_over=stats.first_longer(max_seq_length))


def load_tokenizer(tokenizer_file: Path) -> Any:
    """A `tokenizers.Tokenizer` from a tokenizer.json; UserError when it cannot be read."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(os.fspath(tokenizer_file))
    except Exception as exc:  # the library raises a bare Exception on a malformed file
        raise UserError(_("{file}: cannot load this tokenizer: {error}").format(
            file=tokenizer_file, error=exc)) from None


def summarise(lengths: Iterable[int], label: str, max_seq_length: int) -> TokenStats | None:
    """Median (lower), p95 (nearest rank), max, mean and how many exceed `max_seq_length` of bare lengths."""
    ordered = array("I", sorted(lengths))
    n = len(ordered)
    if n == 0:
        return None
    stats = TokenStats(tokenizer=label, count=n, median=ordered[(n - 1) // 2],
                       p95=ordered[max(0, math.ceil(0.95 * n) - 1)], max=ordered[-1], mean=sum(ordered) / n,
                       over_max=0, max_seq_length=max_seq_length, sorted_lengths=ordered)
    return dataclasses.replace(stats, over_max=stats.over(max_seq_length))
