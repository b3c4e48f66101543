"""core.dataset on hostile input: text that is not text, absurd nesting, corrupt Parquet, unreadable paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lora_tui.core.dataset import readers as dataset_readers
from lora_tui.core.dataset.report import inspect_dataset, iter_examples
from lora_tui.errors import UserError

SURROGATE = ("invalid text: the escape \\ud800 is half of a UTF-16 surrogate pair, not a character "
             "(tokenizers refuse it); fix or remove it")
DEEP = "invalid JSON: nested too deeply to read (thousands of levels of [ or {)"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("d.jsonl", '{"text": "ok"}\n{"text": "bad \\ud800 half"}\n', f":2: {SURROGATE}"),
    ("d.jsonl", '{"text": "ok"}\n{"text": "x", "meta": ["\\uD800"]}\n', f":2: {SURROGATE}"),
    ("d.json", '[{"text": "ok"},\n {"text": "bad \\ud800"}]', f":2: {SURROGATE}"),
    ("d.jsonl", '{"text": "ok"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n", f":2: {DEEP}"),
    ("d.json", "[" * 100_000, f":1: {DEEP}"),
    ("d.json", '[{"text": "ok"}, ' + "[" * 100_000 + "]" * 100_000 + "]", f":1: {DEEP}"),
    ("d.json", '{"data": ' + "[" * 100_000 + "}", f":1: {DEEP}"),
], ids=["jsonl-surrogate", "jsonl-surrogate-in-extra-field", "json-surrogate", "jsonl-deep", "json-deep-array",
        "json-deep-record", "json-deep-object"])
def test_records_that_are_not_text_are_problems(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    report = inspect_dataset(path)
    assert [str(i) for i in report.issues] == [f"{path}{message}"]
    with pytest.raises(UserError, match="nested too deeply|surrogate"):
        list(iter_examples(path))


def test_escaped_surrogate_pairs_and_backslashes_are_text(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "emoji \\ud83d\\ude00"}\n{"text": "a literal \\\\ud800"}\n', encoding="utf-8")
    report = inspect_dataset(path)
    assert report.ok and report.examples == 2
    assert [ex["text"] for _, ex in iter_examples(path)] == ["emoji \U0001f600", "a literal \\ud800"]


def test_corrupt_parquet_row_group_is_a_problem_at_its_row(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_readers, "ARROW_BATCH_ROWS", 10)
    path = tmp_path / "d.parquet"
    rows = [{"text": f"example {i} " * 10} for i in range(40)]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=20, compression="snappy")
    column = pq.ParquetFile(path).metadata.row_group(1).column(0)
    data = bytearray(path.read_bytes())
    start = (column.dictionary_page_offset or column.data_page_offset) + 30
    data[start : start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    report = inspect_dataset(path)
    assert report.examples == 20 and report.issue_count == 1
    assert str(report.issues[0]).startswith(
        f"{path}:row 21: corrupt Parquet data: the rows from here on cannot be read (")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_unreadable_path_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    target = tmp_path / ("d.jsonl" if kind == "file" else "saved")
    if kind == "file":
        target.write_text('{"text": "a"}\n')
        real_open = Path.open

        def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == target:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", refuse)
    else:
        target.mkdir()

        def refuse_dir(path: Any) -> Any:
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(dataset_readers.os, "scandir", refuse_dir)
    message = f"{target}: cannot read it (Permission denied); check its permissions"
    with pytest.raises(UserError) as exc:
        inspect_dataset(target)
    assert str(exc.value) == message
    with pytest.raises(UserError):
        list(iter_examples(target))
