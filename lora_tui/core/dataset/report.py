"""Streaming inspection and validation of training data: format, schema, exact counts, token lengths, problems.

Data (see `files`): a JSONL/NDJSON, JSON, CSV/TSV or Parquet file, a directory of such files of one format
(hub shards), a glob, or a `datasets` save_to_disk directory. Schemas (see `mapping`): chat `messages`,
ShareGPT `conversations`, TRL's conversational prompt-completion, instruction data under the common column
names (alpaca, Dolly, question/answer, ...), prompt/completion text and plain `text`; anything else with an
explicit `--columns` mapping. Every record is validated and normalised (see `shapes`) while the file is
streamed (memory stays flat however long it is); `examples` counts the valid ones exactly.

With the model's tokenizer on this machine, every example is rendered with its chat template and tokenized
exactly as training will (see `encode`): median, p95 and max lengths, how many exceed max_seq_length, and the
share of tokens that carry the loss. Problems are `DatasetIssue`s shown as `data.jsonl:3: message` (the
physical line where the record starts) or `data.parquet:row 12: message` (Parquet and Arrow, rows 1-based).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lora_tui.core import paths
from lora_tui.core.dataset.encode import Failed
from lora_tui.core.dataset.files import open_source
from lora_tui.core.dataset.mapping import ColumnMap, parse_columns
from lora_tui.core.dataset.readers import RawRecord, Source
from lora_tui.core.dataset.scan import DETECT_RECORDS, Scanner, location
from lora_tui.core.dataset.shapes import SHAPES, shape_of
from lora_tui.core.dataset.template import FALLBACK_TEMPLATE
from lora_tui.core.dataset.tokens import TokenCounter, TokenStats, find_tokenizer_file
from lora_tui.core.progress import ProgressTracker, Report
from lora_tui.core.tables import describe_size_tier
from lora_tui.core.tables import size_tier as _table_size_tier
from lora_tui.errors import UserError
from lora_tui.i18n import N_, Phrase, _, english, ngettext

__all__ = [
    "DETECT_RECORDS",
    "SHAPES",
    "SIZE_TIERS",
    "DatasetIssue",
    "DatasetReport",
    "TokenStats",
    "inspect_dataset",
    "inspect_for_model",
    "iter_examples",
    "sample_dataset_path",
    "size_tier",
]

DEFAULT_MAX_SEQ_LENGTH = 1024
"""Sequence length token counts are compared with when none is given (TrainingPlan's default)."""

SIZE_TIERS = ("small", "medium", "large")
"""The guide's data-size tiers; `lora_tui.core.tables.describe_size_tier` says what each means."""

STOP_CHECK_EVERY = 256
"""Records between two checks of `inspect_dataset`'s `stop` (a cancelled inspection ends this soon)."""


NO_TOKENIZER_NOTE = N_("token statistics need the model's tokenizer on this machine")
"""The note of a report measured without a tokenizer (the CLI adds which flags give it one)."""

NO_RECORDS = N_("no examples: the file holds no records")
"""The problem of a data file without a single record."""

PROGRESS_INTERVAL_S = 0.1
"""Shortest time between two progress events of an inspection."""


class InspectionCancelled(Exception):
    """`inspect_dataset` was asked to stop (its `stop` returned True)."""


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
    """What is wrong, in one line (a `Phrase`: English, shown in the current language)."""

    def __post_init__(self) -> None:
        if self.line is not None and self.line < 1:
            raise ValueError("`line` must be >= 1")
        if self.row is not None and self.row < 1:
            raise ValueError("`row` must be >= 1")

    @property
    def location(self) -> str:
        """`path:line`, `path:row N`, or the path alone for a whole-file problem (in the current language)."""
        if self.line is not None:
            return f"{self.path}:{self.line}"
        if self.row is not None:
            return _("{path}:row {row}").format(path=self.path, row=self.row)
        return self.path

    def __str__(self) -> str:
        """`location: message` in the current language (JSON output and run files take it in English)."""
        return f"{self.location}: {self.message}"


@dataclass(frozen=True)
class DatasetReport:
    """What `inspect_dataset` found in a data file."""

    path: str
    """The file (or directory) as the user named it."""
    file_format: str
    """jsonl, json, csv, tsv, parquet or arrow."""
    shape: str | None
    """What the examples train as (a key of SHAPES), or None when no record was valid."""
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
    """Remarks on how the data was read and measured (English `Phrase`s and msgids: `_()` shows them)."""
    bytes: int
    """Size on disk in bytes."""
    schema: str | None = None
    """The schema the records were read with (messages, ShareGPT, alpaca, ..., --columns), or None."""
    columns: str | None = None
    """Which field fed each part (`prompt=instruction,input=input,response=output`), or None."""
    fields: tuple[str, ...] = ()
    """The first record's field names (what a `--columns` mapping can name)."""

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

    def at(self, max_seq_length: int) -> DatasetReport:
        """The report with its token statistics compared with another sequence length."""
        if self.token_stats is None or self.token_stats.max_seq_length == max_seq_length:
            return self
        return replace(self, token_stats=self.token_stats.at(max_seq_length))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`examples`, `format`, `schema`, `columns`, `shape`, `errors`, `token_stats`, ...), in
        English whatever the language shown."""
        with english():
            errors = [str(issue) for issue in self.issues]
        return {
            "path": self.path,
            "format": self.file_format,
            "schema": self.schema,
            "columns": self.columns,
            "fields": list(self.fields),
            "shape": self.shape,
            "examples": self.examples,
            "size_tier": self.size_tier,
            "size_tier_meaning": describe_size_tier(self.size_tier) if self.size_tier else None,
            "bytes": self.bytes,
            "ok": self.ok,
            "errors": errors,
            "error_count": self.issue_count,
            "token_stats": self.token_stats.to_dict() if self.token_stats else None,
            "notes": list(self.notes),
        }


def _columns(columns: str | ColumnMap | None) -> ColumnMap | None:
    return parse_columns(columns) if isinstance(columns, str) else columns


def inspect_dataset(
    path: str | Path,
    *,
    tokenizer: str | Path | None = None,
    max_seq_length: int | None = None,
    max_issues: int = 50,
    columns: str | ColumnMap | None = None,
    stop: Callable[[], bool] | None = None,
    progress: Report | None = None,
) -> DatasetReport:
    """Stream through a data path, validate every record and measure it.

    `tokenizer` is a directory with tokenizer.json, a tokenizer.json file, or a hub id already in the local
    cache (never downloaded). `columns` maps fields to roles for data in no known schema. `stop` is polled every
    few hundred records; InspectionCancelled when it returns True. `progress` is told how far the reading is
    (`core.progress.Progress` events: bytes of the file for line-based formats, else elapsed time). Raises
    UserError for a missing path, an unsupported format or a tokenizer that is not available; problems inside the
    file are issues, not raised.
    """
    if max_issues < 0:
        raise UserError(_("--max-errors must be >= 0, got {value}").format(value=max_issues))
    seq_len = DEFAULT_MAX_SEQ_LENGTH if max_seq_length is None else max_seq_length
    if seq_len < 1:
        raise UserError(_("--max-seq-length must be at least 1, got {value}").format(value=seq_len))
    mapping = _columns(columns)
    counter = TokenCounter(find_tokenizer_file(tokenizer), str(tokenizer)) if tokenizer is not None else None
    label = str(path)
    source = open_source(path)
    scanner = Scanner(source, label, mapping)
    tally = _Tally(label, max_issues)
    tracker = _tracker(progress, source, tokenizing=counter is not None)
    examples = tally.valid(scanner, stop, tracker, source)
    if counter is None:
        for _example in examples:
            pass
    else:
        for item in counter.encoder().encode(examples):
            raw = item.where
            if isinstance(item, Failed):
                tally.examples -= 1
                tally.issue(raw, item.problem)
                continue
            counter.add(item, functools.partial(location, label, raw))
    if tally.examples == 0 and tally.count == 0:
        tally.count, tally.issues = 1, [DatasetIssue(label, None, None, Phrase(NO_RECORDS))]
    if tracker is not None:
        tracker.advance(done=source.bytes if source.cursor is not None else tally.examples)
        tracker.finish()
    shape = _one_shape(tally.shapes)
    if counter is not None:
        counter.used_template = shape in ("messages", "chat_prompt_completion")
    stats = counter.stats(seq_len) if counter is not None else None
    notes = [*source.notes, *_token_notes(counter, shape)]
    shown = scanner.schema.shown(scanner.keys) if scanner.schema is not None else None
    return DatasetReport(
        path=label, file_format=source.format, shape=shape, examples=tally.examples,
        size_tier=size_tier(tally.examples) if tally.examples else None, issues=tuple(tally.issues),
        issue_count=tally.count, token_stats=stats, notes=tuple(notes), bytes=source.bytes,
        schema=scanner.schema.name if scanner.schema is not None else scanner.refusal.name if scanner.refusal
        else None, columns=str(shown) if shown is not None else None, fields=scanner.fields,
    )


def _tracker(progress: Report | None, source: Source, *, tokenizing: bool) -> ProgressTracker | None:
    """The progress of reading `source` (bytes when its reader tells its position, else records)."""
    if progress is None:
        return None
    tracker = ProgressTracker(progress, heartbeat=0, min_interval=PROGRESS_INTERVAL_S)
    stage = _("reading and tokenizing the data") if tokenizing else _("reading the data")
    if source.cursor is not None:
        tracker.stage(stage, total=source.bytes, unit="bytes")
    else:
        tracker.stage(stage, unit=N_("records"))
    return tracker


def _one_shape(shapes: set[str]) -> str | None:
    """The shape the examples train as (the chat one when a mapping mixes plain and chat prompts)."""
    for shape in SHAPES:
        if shape in shapes:
            return shape
    return None


class _Tally:
    """Counts valid examples and problems while the scanner streams; keeps the first `max_issues`."""

    def __init__(self, label: str, max_issues: int) -> None:
        self.label = label
        self.max_issues = max_issues
        self.examples = 0
        self.count = 0
        self.issues: list[DatasetIssue] = []
        self.shapes: set[str] = set()

    def issue(self, raw: RawRecord, problem: str) -> None:
        self.count += 1
        if len(self.issues) < self.max_issues:
            self.issues.append(DatasetIssue(raw.file or self.label, raw.line, raw.row, problem))

    def valid(self, scanner: Scanner, stop: Callable[[], bool] | None, tracker: ProgressTracker | None = None,
              source: Source | None = None) -> Iterator[tuple[RawRecord, dict[str, Any]]]:
        """The valid examples (tagged with their raw record); problems are counted on the way, and every
        STOP_CHECK_EVERY records `stop` is asked and `tracker` told how far the reading is."""
        seen = 0
        shapes = self.shapes
        cursor = source.cursor if source is not None else None
        for raw, example, problem in scanner:
            seen += 1
            if seen % STOP_CHECK_EVERY == 0:
                if stop is not None and stop():
                    raise InspectionCancelled
                if tracker is not None:
                    tracker.advance(done=cursor.position() if cursor is not None else seen)
            if problem is not None:
                self.issue(raw, problem)
                continue
            assert example is not None
            self.examples += 1
            shapes.add(shape_of(example))
            yield RawRecord(raw.line, raw.row, None, None, raw.file), example  # its location, not its value


def inspect_for_model(path: str | Path, model: str, *, max_seq_length: int | None = None, max_issues: int = 50,
                      columns: str | ColumnMap | None = None, stop: Callable[[], bool] | None = None,
                      progress: Report | None = None) -> DatasetReport:
    """`inspect_dataset` with `model`'s tokenizer when it is on this machine (token lengths measured through its
    chat template), else without: what `inspect --model`, the wizard's Data step and `lora-tui train` plan from."""
    from lora_tui.core.dataset.tokens import local_tokenizer

    return inspect_dataset(path, tokenizer=local_tokenizer(model), max_seq_length=max_seq_length,
                           max_issues=max_issues, columns=columns, stop=stop, progress=progress)


def _token_notes(counter: TokenCounter | None, shape: str | None) -> list[str]:
    """What the reader should know about the token statistics (or their absence)."""
    if counter is None:
        return [NO_TOKENIZER_NOTE]
    if shape in ("messages", "chat_prompt_completion") and counter.template.source == FALLBACK_TEMPLATE:
        return [N_("the model has no chat template: chat examples are rendered with lora-tui's fallback template "
                   "(### User: / ### Assistant: headers, as the preview shows); training uses the same one and "
                   "saves it with the adapter's tokenizer")]
    return []


def iter_examples(path: str | Path, columns: str | ColumnMap | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (location, normalised example) for every record; UserError at the first invalid one.

    Normalised: {"messages": [...]}, {"prompt": [...], "completion": [...]}, {"prompt", "completion"} strings or
    {"text"} (see core.dataset.shapes).
    """
    label = str(path)
    produced = 0
    for raw, example, problem in Scanner(open_source(path), label, _columns(columns)):
        where = location(label, raw)
        if problem is not None:
            raise UserError(_("{where}: {problem}\n(run `lora-tui inspect {path}` to list every problem)").format(
                where=where, problem=problem, path=path))
        assert example is not None
        produced += 1
        yield where, example
    if produced == 0:
        raise UserError(_("{path}: {problem}").format(path=path, problem=_(NO_RECORDS)))


def truncation_warning(report: DatasetReport) -> str | None:
    """The warning for examples longer than the token statistics' max_seq_length (their end is cut), or None."""
    stats = report.token_stats
    if stats is None or stats.over_max == 0:
        return None
    return ngettext("{over} of {count} example is longer than max_seq_length {length} tokens (the longest: {max}; "
                    "first: {first}); training keeps the first {length} tokens of each and cuts the rest: raise "
                    "--max-seq-length to keep them whole",
                    "{over} of {count} examples are longer than max_seq_length {length} tokens (the longest: {max}; "
                    "first: {first}); training keeps the first {length} tokens of each and cuts the rest: raise "
                    "--max-seq-length to keep them whole", stats.over_max).format(
        over=f"{stats.over_max:,}", count=f"{stats.count:,}", length=f"{stats.max_seq_length:,}",
        max=f"{stats.max:,}", first=stats.first_over)
