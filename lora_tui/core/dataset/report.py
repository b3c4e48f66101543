"""Streaming inspection and validation of training data: format, shape, exact counts, problems with file:line.

Formats (see `dataset_readers`): JSONL/NDJSON, a JSON array (or an object with one list field, e.g.
{"data": [...]}; at most 256 MB, larger files should be JSONL), CSV/TSV with a header row, Parquet, and a
directory written by `datasets.Dataset.save_to_disk` (a DatasetDict directory: its `train` split).
Shapes (see `dataset_shapes`): messages, sharegpt, alpaca, prompt_completion, text. The file's shape is the
most common one among its first `DETECT_RECORDS` recognisable records; a record of another shape is an error.

Every record is validated; `examples` counts the valid ones exactly, while the file is streamed (memory stays
flat however long a JSONL file is). Problems are `DatasetIssue`s shown as `data.jsonl:3: message` (text
formats: the physical line where the record starts) or `data.parquet:row 12: message` (Parquet and Arrow,
rows 1-based).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_tui.core import paths
from lora_tui.core.dataset.readers import RawRecord, Source, open_source
from lora_tui.core.dataset.shapes import (
    SHAPES,
    RecordError,
    classify,
    describe_unknown,
    normalise,
    render_plain,
)
from lora_tui.core.dataset.tokens import TokenCounter, TokenStats, find_tokenizer_file
from lora_tui.core.tables import describe_size_tier
from lora_tui.core.tables import size_tier as _table_size_tier
from lora_tui.errors import UserError

__all__ = [
    "SHAPES",
    "SIZE_TIERS",
    "DatasetIssue",
    "DatasetReport",
    "TokenStats",
    "inspect_dataset",
    "iter_examples",
    "sample_dataset_path",
    "size_tier",
]

DETECT_RECORDS = 20
"""How many recognisable records at the start of a file decide its shape (majority, ties to the first)."""

DETECT_BUFFER = 1000
"""Most records held back while the shape is still undecided (bounds memory on files of unknown records)."""

DEFAULT_MAX_SEQ_LENGTH = 1024
"""Sequence length token counts are compared with when none is given (TrainingPlan's default)."""

SIZE_TIERS = ("small", "medium", "large")
"""The guide's data-size tiers; `lora_tui.core.tables.describe_size_tier` says what each means."""


def size_tier(examples: int) -> str:
    """The guide's data-size tier: "small" below 1000, "medium" for 1000..10000 inclusive, "large" above.

    The bounds live in presets/guide.toml; this is `lora_tui.core.tables.size_tier`.
    """
    if examples < 0:
        raise ValueError("`examples` must be >= 0")
    return _table_size_tier(examples)


def sample_dataset_path() -> Path:
    """The built-in sample dataset (short Japanese and English chats in the messages shape)."""
    return paths.SAMPLE_DATA_PATH


@dataclass(frozen=True)
class DatasetIssue:
    """One problem in a data file, with where it is."""

    path: str
    """The file (or directory) as the user named it."""
    line: int | None
    """1-based physical line where the record starts (text formats), else None."""
    row: int | None
    """1-based row (Parquet and Arrow), else None."""
    message: str
    """What is wrong, in one line."""

    def __post_init__(self) -> None:
        if self.line is not None and self.line < 1:
            raise ValueError("`line` must be >= 1")
        if self.row is not None and self.row < 1:
            raise ValueError("`row` must be >= 1")

    @property
    def location(self) -> str:
        """`path:line`, `path:row N`, or the path alone for a whole-file problem."""
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.row is not None:
            return f"{self.path}:row {self.row}"
        return self.path

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True)
class DatasetReport:
    """What `inspect_dataset` found in a data file."""

    path: str
    """The file (or directory) as the user named it."""
    file_format: str
    """jsonl, json, csv, tsv, parquet or arrow."""
    shape: str | None
    """The record shape (a key of SHAPES), or None when no record was recognisable."""
    examples: int
    """Valid examples, counted exactly."""
    size_tier: str | None
    """The guide's data-size tier of `examples` (small/medium/large); None when there are no examples."""
    issues: tuple[DatasetIssue, ...]
    """The first problems found (at most `max_issues`)."""
    issue_count: int
    """All problems found, including those not kept in `issues`."""
    token_stats: TokenStats | None
    """Token lengths, when a local tokenizer was given; else None."""
    notes: tuple[str, ...]
    """Remarks on how the data was read and measured."""
    bytes: int
    """Size on disk in bytes."""

    def __post_init__(self) -> None:
        if self.examples < 0:
            raise ValueError("`examples` must be >= 0")
        if self.issue_count < len(self.issues):
            raise ValueError("`issue_count` must be >= len(issues)")
        if self.shape is not None and self.shape not in SHAPES:
            raise ValueError(f"`shape` must be one of {', '.join(SHAPES)}")

    @property
    def ok(self) -> bool:
        """True when the file has no problems at all."""
        return self.issue_count == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`examples`, `format`, `shape`, `size_tier`, `errors`, `error_count`, ...)."""
        return {
            "path": self.path,
            "format": self.file_format,
            "shape": self.shape,
            "examples": self.examples,
            "size_tier": self.size_tier,
            "size_tier_meaning": describe_size_tier(self.size_tier) if self.size_tier else None,
            "bytes": self.bytes,
            "ok": self.ok,
            "errors": [str(issue) for issue in self.issues],
            "error_count": self.issue_count,
            "token_stats": self.token_stats.to_dict() if self.token_stats else None,
            "notes": list(self.notes),
        }


class _Scanner:
    """Validates a source's records in order, deciding the shape from the first recognisable ones.

    Yields (raw record, normalised example, None) for a valid record and (raw record, None, problem) otherwise.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.shape: str | None = None

    def __iter__(self) -> Iterator[tuple[RawRecord, dict[str, Any] | None, str | None]]:
        records = iter(self.source.records)
        held: list[RawRecord] = []
        votes: Counter[str] = Counter()
        for raw in records:
            held.append(raw)
            shape = classify(raw.value) if raw.problem is None else None
            if shape:
                votes[shape] += 1
            if sum(votes.values()) >= DETECT_RECORDS or len(held) >= DETECT_BUFFER:
                break
        self.shape = votes.most_common(1)[0][0] if votes else None
        for raw in held:
            yield self._check(raw)
        del held
        check = self._check
        for raw in records:
            yield check(raw)

    def _check(self, raw: RawRecord) -> tuple[RawRecord, dict[str, Any] | None, str | None]:
        """Validate one raw record against the file's shape."""
        if raw.problem is not None:
            return raw, None, raw.problem
        if self.shape is None:
            return raw, None, describe_unknown(raw.value)
        try:
            return raw, normalise(raw.value, self.shape), None
        except RecordError as exc:
            return raw, None, str(exc)


def inspect_dataset(
    path: str | Path,
    *,
    tokenizer: str | Path | None = None,
    max_seq_length: int | None = None,
    max_issues: int = 50,
) -> DatasetReport:
    """Stream through a data file, validate every record and measure it.

    `tokenizer` is a directory with tokenizer.json, a tokenizer.json file, or a hub id already in the local
    cache (never downloaded). Raises UserError for a missing path, an unsupported format or a tokenizer that
    is not available; problems inside the file are returned as issues, not raised.
    """
    if max_issues < 0:
        raise UserError(f"--max-errors must be >= 0, got {max_issues}")
    seq_len = DEFAULT_MAX_SEQ_LENGTH if max_seq_length is None else max_seq_length
    if seq_len < 1:
        raise UserError(f"--max-seq-length must be at least 1, got {seq_len}")
    counter = None
    if tokenizer is not None:
        counter = TokenCounter(find_tokenizer_file(tokenizer), str(tokenizer))
    label = str(path)
    source = open_source(Path(path))
    scanner = _Scanner(source)
    examples, issue_count = 0, 0
    issues: list[DatasetIssue] = []
    for raw, example, problem in scanner:
        if problem is not None:
            issue_count += 1
            if len(issues) < max_issues:
                issues.append(DatasetIssue(label, raw.line, raw.row, problem))
        else:
            examples += 1
            if counter is not None:
                counter.add(render_plain(example or {}))
    if examples == 0 and issue_count == 0:
        issue_count, issues = 1, [DatasetIssue(label, None, None, "no examples: the file holds no records")]
    notes = list(source.notes)
    stats = counter.stats(seq_len) if counter is not None else None
    notes.extend(_token_notes(counter is not None))
    return DatasetReport(
        path=label,
        file_format=source.format,
        shape=scanner.shape,
        examples=examples,
        size_tier=size_tier(examples) if examples else None,
        issues=tuple(issues),
        issue_count=issue_count,
        token_stats=stats,
        notes=tuple(notes),
        bytes=source.bytes,
    )



def inspect_for_model(path: str | Path, model: str, *, max_seq_length: int | None = None,
                      max_issues: int = 50) -> DatasetReport:
    """`inspect_dataset` with `model`'s tokenizer when it is on this machine (token lengths measured), else
    without: what the wizard's Data step and `lora-tui train` both plan from."""
    from lora_tui.core.dataset.tokens import local_tokenizer

    return inspect_dataset(path, tokenizer=local_tokenizer(model), max_seq_length=max_seq_length,
                           max_issues=max_issues)


def _token_notes(measured: bool) -> list[str]:
    """What the reader should know about the token statistics (or their absence)."""
    if not measured:
        return ["token statistics need a local tokenizer: pass --tokenizer DIR (a directory with "
                "tokenizer.json)"]
    return [
        "token counts use a plain 'role: content' rendering, not the model's chat template (that needs "
        "transformers); training sequences are a few tokens per turn longer"
    ]


def iter_examples(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (location, normalised example) for every record; UserError at the first invalid one.

    Normalised: {"messages": [...]} for messages/sharegpt/alpaca, {"prompt", "completion"} or {"text"}.
    """
    source = open_source(Path(path))
    produced = 0
    for raw, example, problem in _Scanner(source):
        where = DatasetIssue(str(path), raw.line, raw.row, problem or "")
        if problem is not None:
            raise UserError(f"{where}\n(run `lora-tui inspect {path}` to list every problem)")
        assert example is not None
        produced += 1
        yield where.location, example
    if produced == 0:
        raise UserError(f"{path}: no examples: the file holds no records")
