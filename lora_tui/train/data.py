"""Training examples -> a datasets.Dataset in one of the shapes TRL's SFTTrainer trains directly.

Every shape `lora-tui inspect` accepts is normalised by core.dataset.iter_examples to {"messages"},
{"prompt", "completion"} or {"text"}. A file of one shape is passed through as is (SFTTrainer applies the chat
template, computes the loss on completions for prompt/completion data). A file mixing shapes is turned into
one: prompt/completion pairs become user/assistant chats; if plain text is mixed with chats, the chats are
rendered to text with the tokenizer's chat template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_tui.core.dataset.report import iter_examples


def _shape(record: dict[str, Any]) -> str:
    if "messages" in record:
        return "messages"
    if "prompt" in record:
        return "prompt_completion"
    return "text"


def _as_chat(record: dict[str, Any]) -> dict[str, Any]:
    if "messages" in record:
        return {"messages": record["messages"]}
    return {"messages": [{"role": "user", "content": str(record["prompt"])},
                         {"role": "assistant", "content": str(record["completion"])}]}


def normalise_records(records: list[dict[str, Any]], tokenizer: Any) -> tuple[list[dict[str, Any]], str]:
    """Records of a single shape, and that shape's name."""
    shapes = {_shape(r) for r in records}
    if len(shapes) == 1:
        shape = shapes.pop()
        keys = {"messages": ("messages",), "prompt_completion": ("prompt", "completion"), "text": ("text",)}[shape]
        return [{k: r[k] for k in keys} for r in records], shape
    if "text" not in shapes:
        return [_as_chat(r) for r in records], "messages"
    out = []
    for r in records:
        if _shape(r) == "text":
            out.append({"text": r["text"]})
        else:
            out.append({"text": tokenizer.apply_chat_template(_as_chat(r)["messages"], tokenize=False)})
    return out, "text"


def load_dataset_for_training(path: str | Path, tokenizer: Any, *, eval_split: float,
                              seed: int) -> tuple[Any, Any | None, dict[str, Any]]:
    """(train dataset, eval dataset or None, stats) for the data file at `path`."""
    from datasets import Dataset

    records = [example for _, example in iter_examples(path)]
    rows, shape = normalise_records(records, tokenizer)
    dataset = Dataset.from_list(rows)
    stats: dict[str, Any] = {"path": str(path), "examples": len(rows), "shape": shape}
    if eval_split > 0 and len(rows) >= 4:
        split = dataset.train_test_split(test_size=eval_split, seed=seed)
        stats.update(train_examples=len(split["train"]), eval_examples=len(split["test"]))
        return split["train"], split["test"], stats
    stats.update(train_examples=len(rows), eval_examples=0)
    return dataset, None, stats
