"""Helpers that write small data files of every supported format for the dataset tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

RECORDS: dict[str, list[dict[str, Any]]] = {
    "messages": [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ]},
        {"messages": [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "やあ"}]},
    ],
    "sharegpt": [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
        {"conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "user", "value": "2+2?"},
            {"from": "assistant", "value": "4"},
        ]},
        {"conversations": [{"from": "human", "value": "こんにちは"}, {"from": "gpt", "value": "やあ"}]},
    ],
    "alpaca": [
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},
        {"instruction": "翻訳して", "input": "cat", "output": "猫"},
    ],
    "prompt_completion": [
        {"prompt": "The sky is", "completion": " blue."},
        {"prompt": "1, 2, 3,", "completion": " 4"},
        {"prompt": "日本の首都は", "completion": "東京です。"},
    ],
    "text": [{"text": "One line of text."}, {"text": "Another line."}, {"text": "三行目。"}],
}
"""Three valid records of each shape."""


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
