"""Normalised examples -> token ids and the spans that carry the loss: the one tokenization training uses.

`lora-tui inspect`, the wizard and `lora-tui train` measure examples with this module, and the training process
(lora_tui.train.data) tokenizes its dataset with it too (passing the transformers tokenizer's own `tokenizers`
backend), so the lengths and trained spans reported are exactly the ones trained on:

- chat (`messages`): the chat template's text, encoded without added special tokens (the template writes them);
  the loss is on the assistant's turns: the `{% generation %}` blocks when the template marks them, else each
  assistant turn found by rendering the conversation up to it (its text and end-of-turn), else its content;
- conversational prompt-completion: the template's text of prompt + completion; the loss is on what follows
  the prompt rendered with the generation prompt (TRL's completion mask);
- prompt/completion text: prompt + completion + EOS, special tokens added; the loss is on the completion;
- text: text + EOS, special tokens added; the loss is on every token.

Rendering is Python (Jinja) and encoding is the tokenizer's batch encode in Rust, which releases the GIL: one
batch is encoded on a helper thread while the next is rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

from lora_tui.core.dataset.shapes import shape_of
from lora_tui.core.dataset.template import ChatTemplate, TemplateError

ENCODE_BATCH = 512
"""Examples encoded per batch (one batch encodes while the next renders)."""

IGNORE_INDEX = -100
"""The label of a token that carries no loss (what PyTorch's cross-entropy ignores)."""


@dataclass(slots=True)
class Encoded:
    """One example as training sees it."""

    where: Any
    """The caller's tag for the example (its location)."""
    encoding: Any
    """The tokenizer's `Encoding` of the whole example (before truncation to max_seq_length)."""
    length: int
    """Its length in tokens."""
    trained: tuple[tuple[int, int], ...]
    """Token index ranges [start, end) that carry the loss."""
    text: str = ""
    """The rendered text that was encoded."""
    offsets: tuple[tuple[int, int], ...] = ()
    """Each token's character span in `text` (kept only when asked for, for previews)."""

    @property
    def ids(self) -> list[int]:
        """Token ids of the whole example."""
        return list(self.encoding.ids)

    @property
    def trained_count(self) -> int:
        """Tokens that carry the loss."""
        return sum(end - start for start, end in self.trained)

    def labels(self) -> list[int]:
        """Training labels: the token id where the loss is computed, IGNORE_INDEX elsewhere."""
        ids = self.encoding.ids
        labels = [IGNORE_INDEX] * len(ids)
        for start, end in self.trained:
            labels[start:end] = ids[start:end]
        return labels


@dataclass(frozen=True)
class Failed:
    """An example the template could not render."""

    where: Any
    """The caller's tag for the example."""
    problem: str
    """Why, in one line."""


class _Rendered(NamedTuple):
    """An example ready to encode."""

    where: Any
    """The caller's tag."""
    text: str
    """The text to encode."""
    spans: tuple[tuple[int, int], ...] | None
    """Character spans that carry the loss; None: every token."""
    special: bool
    """Whether the tokenizer adds its special tokens (plain text) or the template wrote them (chat)."""


class Encoder:
    """Renders and tokenizes normalised examples with one tokenizer (a `tokenizers.Tokenizer`) and template."""

    def __init__(self, tokenizer: Any, template: ChatTemplate, *, keep_offsets: bool = False) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.keep_offsets = keep_offsets

    def render(self, where: Any, example: dict[str, Any]) -> _Rendered:
        """The text to encode, the character spans that carry the loss, and whether special tokens are added."""
        shape = shape_of(example)
        eos = self.template.eos_token
        if shape == "messages":
            text, spans = self._chat(example["messages"], example.get("tools"))
            return _Rendered(where, text, tuple(spans), False)
        if shape == "chat_prompt_completion":
            prompt, _ = self.template.render(example["prompt"], add_generation_prompt=True)
            text, _ = self.template.render(example["prompt"] + example["completion"])
            start = len(prompt) if text.startswith(prompt) else _common_prefix(prompt, text)
            return _Rendered(where, text, ((start, len(text)),), False)
        if shape == "prompt_completion":
            prompt, completion = example["prompt"], example["completion"]
            text = prompt + (completion if completion.endswith(eos) else completion + eos)
            return _Rendered(where, text, ((len(prompt), len(text)),), True)
        text = example["text"]
        return _Rendered(where, text if text.endswith(eos) else text + eos, None, True)

    def _chat(self, messages: list[dict[str, Any]], tools: list[Any] | None) -> tuple[str, list[tuple[int, int]]]:
        """A conversation's text and the assistant's character spans."""
        text, spans = self.template.render(messages, tools=tools)
        if spans or self.template.marks_generation:
            return text, spans
        found: list[tuple[int, int]] = []
        cursor = 0
        for k, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            span = self._turn_span(messages, k, text, tools)
            if span is None or span[0] < cursor:
                span = _content_span(text, message.get("content") or "", cursor, self.template.eos_token)
            if span is not None:
                found.append(span)
                cursor = span[1]
        return text, found

    def _turn_span(self, messages: list[dict[str, Any]], k: int, text: str,
                   tools: list[Any] | None) -> tuple[int, int] | None:
        """Assistant turn k as the text between the conversation rendered up to it (with the generation prompt)
        and rendered through it, when both are prefixes of the whole text."""
        try:
            before, _ = self.template.render(messages[:k], add_generation_prompt=True, tools=tools)
            through = text if k == len(messages) - 1 else self.template.render(messages[:k + 1], tools=tools)[0]
        except TemplateError:
            return None
        if text.startswith(through) and through.startswith(before) and len(through) > len(before):
            return len(before), len(through)
        return None

    def encode(self, items: Iterable[tuple[Any, dict[str, Any]]]) -> Iterator[Encoded | Failed]:
        """Encode (tag, example) pairs in order, a batch encoding on a helper thread while the next renders."""
        batch: list[_Rendered] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lora-tui-encode") as pool:
            running: tuple[list[_Rendered], Future[Any]] | None = None
            for where, example in items:
                try:
                    batch.append(self.render(where, example))
                except TemplateError as exc:
                    yield Failed(where, exc.message)
                    continue
                if len(batch) >= ENCODE_BATCH:
                    if running is not None:
                        yield from self._collect(*running)
                    running = (batch, pool.submit(self._encode_batch, batch))
                    batch = []
            if running is not None:
                yield from self._collect(*running)
        if batch:
            yield from self._collect(batch, None)

    def _encode_batch(self, batch: list[_Rendered]) -> list[Any]:
        """The tokenizer's batch encode (one call per special-tokens setting in the batch)."""
        special = [r.special for r in batch]
        if all(special) or not any(special):
            return list(self.tokenizer.encode_batch([r.text for r in batch], add_special_tokens=special[0]))
        out: list[Any] = [None] * len(batch)
        for flag in (True, False):
            idx = [i for i, s in enumerate(special) if s is flag]
            for i, enc in zip(idx, self.tokenizer.encode_batch([batch[i].text for i in idx],
                                                                add_special_tokens=flag), strict=True):
                out[i] = enc
        return out

    def _collect(self, batch: list[_Rendered], future: Future[Any] | None) -> Iterator[Encoded]:
        encodings = future.result() if future is not None else self._encode_batch(batch)
        keep = self.keep_offsets
        for rendered, enc in zip(batch, encodings, strict=True):
            n = len(enc)
            yield Encoded(rendered.where, enc, n, _token_ranges(enc, rendered.spans, n), rendered.text,
                          tuple(enc.offsets) if keep else ())


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two strings."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _content_span(text: str, content: str, cursor: int, eos: str) -> tuple[int, int] | None:
    """Where an assistant turn's content is in the text (from `cursor`), with the EOS token that follows it."""
    content = content.strip()
    if not content:
        return None
    at = text.find(content, cursor)
    if at < 0:
        return None
    end = at + len(content)
    if eos and text.startswith(eos, end):
        end += len(eos)
    return at, end


def _token_ranges(enc: Any, spans: tuple[tuple[int, int], ...] | None, n: int) -> tuple[tuple[int, int], ...]:
    """Character spans -> token index ranges, as transformers maps generation spans to its assistant mask (the
    token holding a span's first character to the token holding its last); None: every token."""
    if spans is None:
        return ((0, n),) if n else ()
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if end <= start:
            continue
        first = _char_token(enc, start, end, 1)
        last = _char_token(enc, end - 1, start - 1, -1)
        if first is None or last is None or last < first:
            continue
        if out and first < out[-1][1]:
            first = out[-1][1]
            if last + 1 <= first:
                continue
        out.append((first, last + 1))
    return tuple(out)


def _char_token(enc: Any, pos: int, stop: int, step: int) -> int | None:
    """The token holding character `pos`, or the nearest one towards `stop` (characters a normalizer dropped
    belong to no token)."""
    while pos != stop:
        token = enc.char_to_token(pos)
        if token is not None:
            return int(token)
        pos += step
    return None
