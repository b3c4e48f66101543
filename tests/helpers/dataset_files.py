"""Helpers that write small data files of every supported format and schema for the dataset tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

TOOL_CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
"""An OpenAI-style tool call, as chat datasets with tool use hold them."""

RECORDS: dict[str, list[dict[str, Any]]] = {
    # chat `messages` (HuggingFaceH4/ultrachat_200k; tool use as in OpenAI-format function-calling sets)
    "messages": [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            {"role": "tool", "content": "sunny, 21 C"},
            {"role": "assistant", "content": "Sunny, 21 C."},
        ]},
        {"messages": [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "やあ"}]},
    ],
    # ShareGPT `conversations` (teknium/OpenHermes-2.5; LLaMA-Factory's function_call/observation turns)
    "ShareGPT": [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
        {"conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Weather in Paris?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Paris"}}'},
            {"from": "observation", "value": "sunny, 21 C"},
            {"from": "gpt", "value": "Sunny, 21 C."},
        ]},
        {"conversations": [{"from": "user", "value": "こんにちは"}, {"from": "model", "value": "やあ"}]},
    ],
    # TRL's conversational prompt-completion (trl-lib datasets)
    "TRL conversational prompt-completion": [
        {"prompt": [{"role": "user", "content": "The sky is"}], "completion": [{"role": "assistant",
                                                                               "content": "blue."}]},
        {"prompt": [{"role": "system", "content": "Count."}, {"role": "user", "content": "1, 2, 3,"}],
         "completion": [{"role": "assistant", "content": "4"}]},
        {"prompt": [{"role": "user", "content": "日本の首都は"}], "completion": [{"role": "assistant",
                                                                              "content": "東京です。"}]},
    ],
    # TRL's standard prompt-completion (trl-lib/tldr)
    "prompt/completion": [
        {"prompt": "The sky is", "completion": " blue."},
        {"prompt": "1, 2, 3,", "completion": " 4"},
        {"prompt": "日本の首都は", "completion": "東京です。"},
    ],
    # alpaca (tatsu-lab/alpaca: instruction, input, output and a pre-rendered text)
    "alpaca": [
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "text": "### Instruction: ..."},
        {"instruction": "Say hi.", "input": "", "output": "Hi!", "text": "### Instruction: ..."},
        {"instruction": "翻訳して", "input": "cat", "output": "猫", "text": "### Instruction: ..."},
    ],
    # Dolly (databricks/databricks-dolly-15k)
    "Dolly": [
        {"instruction": "When did the war end?", "context": "The war ended in 1945.", "response": "In 1945.",
         "category": "closed_qa"},
        {"instruction": "Name a fruit.", "context": "", "response": "Apple.", "category": "brainstorming"},
        {"instruction": "要約して", "context": "長い文章。", "response": "短い文章。", "category": "summarization"},
    ],
    # question/answer (the usual CSV of questions and answers)
    "question/answer": [
        {"question": "What is 2+2?", "answer": "4"},
        {"question": "Capital of France?", "answer": "Paris."},
        {"question": "日本の首都は？", "answer": "東京。"},
    ],
    # question/response with a system_prompt column (Open-Orca/OpenOrca)
    "question/response": [
        {"id": "flan.1", "system_prompt": "You are an AI assistant.", "question": "2+2?", "response": "4"},
        {"id": "flan.2", "system_prompt": "", "question": "Capital of France?", "response": "Paris."},
        {"id": "flan.3", "system_prompt": "Answer in Japanese.", "question": "Capital?", "response": "東京。"},
    ],
    # query/response (meta-math/MetaMathQA)
    "query/response": [
        {"query": "What is 3*4?", "response": "3*4 = 12. The answer is: 12", "type": "GSM_Rephrased"},
        {"query": "What is 10-7?", "response": "The answer is: 3", "type": "MATH_AnsAug"},
        {"query": "12/4?", "response": "The answer is: 3", "type": "GSM_SV"},
    ],
    # prompt/response with a system column
    "prompt/response": [
        {"system": "Be brief.", "prompt": "Hi", "response": "Hello!"},
        {"system": "", "prompt": "2+2?", "response": "4"},
        {"system": "Answer in Japanese.", "prompt": "Hello", "response": "こんにちは"},
    ],
    # input/output
    "input/output": [
        {"input": "Reverse: abc", "output": "cba"},
        {"input": "Upper: abc", "output": "ABC"},
        {"input": "数字: 三", "output": "3"},
    ],
    # plain text (timdettmers/openassistant-guanaco)
    "text": [{"text": "### Human: Hi### Assistant: Hello!"}, {"text": "Another line."}, {"text": "三行目。"}],
}
"""Three valid records of each schema `lora-tui inspect` recognises, in the shape its public datasets publish."""

REFUSED: dict[str, list[dict[str, Any]]] = {
    # preference data (trl-lib/ultrafeedback_binarized: chosen/rejected turns; Anthropic/hh-rlhf: strings)
    "preference data": [
        {"prompt": "Hi", "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
         "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],
         "score_chosen": 8.0, "score_rejected": 2.0},
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: No."},
    ],
    # TRL's conversational prompt-only (for GRPO and other RL-style trainers)
    "conversational prompt-only data": [
        {"prompt": [{"role": "user", "content": "Solve 2+2."}]},
        {"prompt": [{"role": "user", "content": "Solve 3+3."}]},
    ],
}
"""Records of layouts that are recognised only to be refused (not supervised fine-tuning data)."""

SHAPE_OF = {"TRL conversational prompt-completion": "chat_prompt_completion", "prompt/completion":
            "prompt_completion", "text": "text"}
"""The shape each schema trains as when it is not `messages` (chat turns)."""


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """One JSON value per line."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_json(path: Path, records: list[Any], *, wrap: str | None = None) -> Path:
    """A pretty-printed JSON array, or an object {wrap: [...]}."""
    data: Any = {"version": 1, wrap: records} if wrap else records
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def write_csv(path: Path, records: list[dict[str, Any]], delimiter: str = ",") -> Path:
    """A header row plus one row per record; list values are JSON-encoded cells."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(columns)
        for r in records:
            writer.writerow([json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
                             for v in (r.get(c, "") for c in columns)])
    return path


def write_parquet(path: Path, records: list[dict[str, Any]], row_group_size: int | None = None) -> Path:
    """A Parquet file written by pyarrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=row_group_size)
    return path


def write_arrow_dir(path: Path, records: list[dict[str, Any]], shards: int = 1) -> Path:
    """The layout `datasets.Dataset.save_to_disk` writes: Arrow IPC stream shards, state.json, dataset_info.json."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    path.mkdir(parents=True)
    table = pa.Table.from_pylist(records)
    per = -(-len(records) // shards)
    names = []
    for i in range(shards):
        name = f"data-{i:05d}-of-{shards:05d}.arrow"
        names.append(name)
        part = table.slice(i * per, per)
        with ipc.new_stream(path / name, part.schema) as writer:
            writer.write_table(part, max_chunksize=2)
    (path / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names]}))
    (path / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return path


def write_format(fmt: str, tmp: Path, records: list[dict[str, Any]]) -> Path:
    """Write `records` in format `fmt` (jsonl, ndjson, json, json_object, csv, tsv, parquet, arrow)."""
    if fmt in ("jsonl", "ndjson"):
        return write_jsonl(tmp / f"data.{fmt}", records)
    if fmt == "json":
        return write_json(tmp / "data.json", records)
    if fmt == "json_object":
        return write_json(tmp / "data.json", records, wrap="data")
    if fmt in ("csv", "tsv"):
        return write_csv(tmp / f"data.{fmt}", records, "\t" if fmt == "tsv" else ",")
    if fmt == "parquet":
        return write_parquet(tmp / "data.parquet", records)
    return write_arrow_dir(tmp / "saved", records, shards=2)


CHAT_SPECIAL = ["<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
"""The demo chat template's markers: special tokens of `word_tokenizer`."""


def word_tokenizer(folder: Path, *, template: str | None = "demo", words: str = "a b c d e f w") -> Path:
    """A word-level tokenizer.json in `folder` over `words` (space-separated; one token per word or punctuation
    run, the chat markers special tokens), with a chat template: the demo model's (`"demo"`), the one given, or
    none (None). Returns the tokenizer.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from lora_tui.train.demo import CHAT_TEMPLATE

    vocab = {token: i for i, token in enumerate(["[UNK]", *CHAT_SPECIAL, *words.split()])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(CHAT_SPECIAL)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": {"content": "</s>"}}))
    if template is not None:
        text = CHAT_TEMPLATE if template == "demo" else template
        (folder / "chat_template.jinja").write_text(text, encoding="utf-8")
    return folder / "tokenizer.json"


def chat_model_dir(folder: Path, words: str) -> Path:
    """A model directory with a word-level tokenizer over `words` and the demo chat template: enough to measure
    and preview data through a chat template, with no weights."""
    return word_tokenizer(folder, words=words).parent
