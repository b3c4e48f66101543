"""The first examples of a dataset as training sees them: rendered with the chat template, the trained spans marked.

Like axolotl's `preprocess --debug`, but as text: each example is cut into segments of the rendered text, each
segment either trained on (it carries the loss) or context. Special tokens that the tokenizer adds but the text
does not hold (a BOS of plain-text data) appear as their own segments. Past max_seq_length, what training cuts is
marked as such. `lora-tui inspect --show N` prints them, the TUI's Data step highlights them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from lora_tui.core.dataset.encode import Encoded, Failed
from lora_tui.core.dataset.files import open_source
from lora_tui.core.dataset.mapping import ColumnMap, parse_columns
from lora_tui.core.dataset.scan import Scanner, location
from lora_tui.core.dataset.shapes import shape_of
from lora_tui.core.dataset.tokens import TokenCounter, find_tokenizer_file

MAX_PREVIEW = 50
"""Most examples a preview shows."""


@dataclass(frozen=True)
class Segment:
    """A run of the rendered text that is either trained on or not."""

    text: str
    """The characters (or a special token's text)."""
    trained: bool
    """True when its tokens carry the loss."""
    cut: bool = False
    """True when it lies past max_seq_length (training never sees it)."""


@dataclass(frozen=True)
class PreviewExample:
    """One example as training sees it."""

    where: str
    """`file:line` of the record."""
    segments: tuple[Segment, ...]
    """The rendered example, in order."""
    tokens: int
    """Its length in tokens."""
    trained_tokens: int
    """How many of them carry the loss."""
    problem: str | None = None
    """Why it could not be rendered, else None."""


def preview(path: str | Path, tokenizer: str | Path, count: int, *, columns: str | ColumnMap | None = None,
            max_seq_length: int | None = None) -> tuple[list[PreviewExample], str]:
    """(the first `count` valid examples rendered as training sees them, the chat template's name: '' when
    none was used, plain text)."""
    mapping = parse_columns(columns) if isinstance(columns, str) else columns
    counter = TokenCounter(find_tokenizer_file(tokenizer), str(tokenizer))
    label = str(path)
    shapes: set[str] = set()

    def valid() -> Iterator[tuple[Any, dict[str, Any]]]:
        for raw, example, _ in Scanner(open_source(path), label, mapping):
            if example is not None:
                shapes.add(shape_of(example))
                yield raw, example

    out: list[PreviewExample] = []
    encoder = counter.encoder(keep_offsets=True)
    for item in encoder.encode(islice(valid(), max(0, min(count, MAX_PREVIEW)))):
        where = location(label, item.where)
        if isinstance(item, Failed):
            out.append(PreviewExample(where, (), 0, 0, item.problem))
            continue
        out.append(PreviewExample(where, tuple(_segments(item, counter.tokenizer, max_seq_length)),
                                  item.length, item.trained_count))
    chat = bool(shapes & {"messages", "chat_prompt_completion"})
    return out, counter.template.name if chat else ""


def _segments(item: Encoded, tokenizer: Any, max_seq_length: int | None) -> Iterator[Segment]:
    """The text as segments of consecutive tokens with the same trained/cut flags; text between tokens that no
    token holds (whitespace a pre-tokenizer dropped) is context."""
    trained = bytearray(item.length)
    ids = item.ids
    for start, end in item.trained:
        trained[start:end] = b"\x01" * (end - start)
    text, pos = item.text, 0
    pieces: list[tuple[str, bool, bool]] = []
    cut = False
    for i, (start, end) in enumerate(item.offsets):
        cut = max_seq_length is not None and i >= max_seq_length
        if start > pos:
            pieces.append((text[pos:start], False, cut))
            pos = start
        piece = text[pos:end] if end > pos else "" if end > start else (tokenizer.id_to_token(ids[i]) or "")
        pos = max(pos, end)
        pieces.append((piece, bool(trained[i]), cut))
    if pos < len(text):
        pieces.append((text[pos:], False, cut))
    run: list[str] = []
    flags: tuple[bool, bool] | None = None
    for piece, *now in pieces:
        if flags is not None and tuple(now) != flags and run:
            yield Segment("".join(run), *flags)
            run = []
        flags = (now[0], now[1])
        run.append(piece)
    if run and flags is not None:
        yield Segment("".join(run), *flags)
