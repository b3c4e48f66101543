"""Training examples -> a tokenized datasets.Dataset (`input_ids`, `labels`) for TRL's SFTTrainer.

Every schema `lora-tui inspect` accepts is normalised by core.dataset.iter_examples (with the run's `columns`
mapping) and tokenized by core.dataset.encode, the code `inspect`, the wizard and `train --dry-run` measure
with: the same chat template, the same token ids, the same spans carrying the loss (labels are -100 elsewhere).
SFTTrainer takes the tokenized dataset as it is; it only truncates to max_length (keeping the start) and drops
examples left with no trained token.

A model without a chat template gets lora-tui's fallback template for chat data; it is set on the tokenizer, so
the adapter's saved tokenizer carries it and `adapters try` renders prompts the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_tui.core.dataset.encode import Encoder, Failed
from lora_tui.core.dataset.report import iter_examples
from lora_tui.core.dataset.shapes import shape_of
from lora_tui.core.dataset.template import ChatTemplate, fallback_template
from lora_tui.errors import UserError

LOSS_ON = {"messages": "assistant turns", "chat_prompt_completion": "completion",
           "prompt_completion": "completion", "text": "all tokens"}
"""What carries the loss for each shape (recorded in training_info.json's `data`)."""


def chat_template(tokenizer: Any) -> ChatTemplate:
    """The tokenizer's chat template with its special tokens; the fallback template (set on the tokenizer, so it
    is saved with the adapter) when it has none."""
    bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""
    source = tokenizer.chat_template
    if isinstance(source, dict):  # named templates
        source = source.get("default") or next(iter(source.values()), None)
    if not source:
        fallback = fallback_template(bos, eos)
        tokenizer.chat_template = fallback.source
        return fallback
    return ChatTemplate(source, bos, eos, "the model's chat template")


def backend(tokenizer: Any) -> Any:
    """The `tokenizers.Tokenizer` inside a transformers tokenizer (what core.dataset.encode encodes with)."""
    inner = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if inner is None:
        raise UserError(f"{getattr(tokenizer, 'name_or_path', 'the model')}: lora-tui needs a fast tokenizer "
                        "(tokenizer.json); this model only has a slow one")
    return inner


def encode_examples(path: str | Path, tokenizer: Any, columns: str | None = None
                    ) -> tuple[dict[str, list[list[int]]], dict[str, Any]]:
    """({"input_ids", "labels"} columns, stats) for every example of the data at `path`."""
    examples = list(iter_examples(path, columns))
    shapes = {shape_of(example) for _, example in examples}
    is_chat = bool(shapes & {"messages", "chat_prompt_completion"})
    template = chat_template(tokenizer) if is_chat else ChatTemplate("", tokenizer.bos_token or "",
                                                                      tokenizer.eos_token or "", "")
    ids: list[list[int]] = []
    labels: list[list[int]] = []
    trained = total = 0
    for item in Encoder(backend(tokenizer), template).encode(examples):
        if isinstance(item, Failed):
            raise UserError(f"{item.where}: {item.problem}")
        ids.append(item.ids)
        labels.append(item.labels())
        trained += item.trained_count
        total += item.length
    shape = next((s for s in LOSS_ON if s in shapes), "text")
    stats: dict[str, Any] = {"path": str(path), "examples": len(ids), "shape": shape, "columns": columns,
                             "loss_on": LOSS_ON[shape], "chat_template": template.name if is_chat else None,
                             "trained_token_share": round(trained / total, 4) if total else 0.0}
    return {"input_ids": ids, "labels": labels}, stats


def load_dataset_for_training(path: str | Path, tokenizer: Any, *, eval_split: float, seed: int,
                              columns: str | None = None, max_length: int | None = None
                              ) -> tuple[Any, Any | None, dict[str, Any]]:
    """(train dataset, eval dataset or None, stats) for the data at `path`, tokenized; each example cut to its
    first `max_length` tokens, as SFTTrainer would (padding-free batches are not cut by it)."""
    from datasets import Dataset

    from lora_tui.train import token_cache

    def tokenize() -> tuple[Any, dict[str, Any]]:
        rows, stats = encode_examples(path, tokenizer, columns)
        if max_length is not None:
            rows = {name: [seq[:max_length] for seq in column] for name, column in rows.items()}
        return Dataset.from_dict(rows), stats

    entry = token_cache.key(path, backend(tokenizer).to_str(), tokenizer.chat_template, tokenizer.bos_token or "",
                            tokenizer.eos_token or "", columns, max_length)
    dataset, stats, reused = token_cache.cached(entry, tokenize)
    if reused:
        print("lora-tui: tokenized data reused from the cache (same data files and tokenizer)", flush=True)
        if stats.get("chat_template"):
            chat_template(tokenizer)  # a tokenizer without a template gets the fallback, as encoding gave it
    stats.update(path=str(path), tokenized_from_cache=reused)
    if eval_split > 0 and len(dataset) >= 4:
        split = dataset.train_test_split(test_size=eval_split, seed=seed)
        stats.update(train_examples=len(split["train"]), eval_examples=len(split["test"]))
        return split["train"], split["test"], stats
    stats.update(train_examples=len(dataset), eval_examples=0)
    return dataset, None, stats
