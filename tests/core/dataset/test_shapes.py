"""core.dataset: refused layouts, explicit --columns mappings, shard directories and globs, and paths that are
not data files (a FIFO, a device), each with the exact message a person sees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lora_tui.core.dataset.mapping import parse_columns
from lora_tui.core.dataset.report import inspect_dataset, iter_examples
from lora_tui.errors import UserError
from tests.helpers.dataset_files import RECORDS, REFUSED, write_csv, write_jsonl, write_parquet


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_layouts_are_one_problem_saying_what_to_do(tmp_path: Path, name: str) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", REFUSED[name] * 3)
    report = inspect_dataset(path)
    assert (report.schema, report.examples, report.issue_count, report.shape) == (name, 0, 1, None)
    message = str(report.issues[0])
    assert message.startswith(f"{path}:1: ")
    if name == "preference data":
        assert "for DPO-style training, which lora-tui does not train" in message
        assert "--columns messages=chosen" in message
    else:
        assert "prompt-only data" in message and "not supervised fine-tuning data" in message
    with pytest.raises(UserError, match=f"{path}:1: "):
        list(iter_examples(path))


def test_preference_turns_train_with_columns_messages_chosen(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [REFUSED["preference data"][0]] * 2)
    report = inspect_dataset(path, columns="messages=chosen")
    assert report.ok and (report.schema, report.columns, report.examples) == ("--columns", "messages=chosen", 2)
    assert next(iter_examples(path, "messages=chosen"))[1]["messages"][-1]["content"] == "Hello!"


def test_columns_map_a_csv_with_other_names(tmp_path: Path) -> None:
    rows = [{"q": "2+2?", "a": "4", "sys": "Be brief.", "extra": "x"},
            {"q": "Hi", "a": "Hello", "sys": "", "extra": ""}]
    path = write_csv(tmp_path / "d.csv", rows)
    assert inspect_dataset(path).schema is None
    report = inspect_dataset(path, columns="prompt=q,response=a,system=sys")
    assert report.ok and report.columns == "prompt=q,response=a,system=sys" and report.shape == "messages"
    assert [ex["messages"] for _, ex in iter_examples(path, "prompt=q,response=a,system=sys")] == [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
         {"role": "assistant", "content": "4"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    ]


def test_columns_map_turns_and_text(tmp_path: Path) -> None:
    dialog = write_parquet(tmp_path / "d.parquet", [{"dialog": RECORDS["ShareGPT"][0]["conversations"], "id": 1}])
    report = inspect_dataset(dialog, columns="messages=dialog")
    assert report.ok and report.shape == "messages"
    assert next(iter_examples(dialog, "messages=dialog"))[1]["messages"][1] == {"role": "assistant",
                                                                               "content": "Hello!"}
    body = write_jsonl(tmp_path / "b.jsonl", [{"body": "some text", "n": 1}])
    assert next(iter_examples(body, "text=body"))[1] == {"text": "some text"}
    pc = write_jsonl(tmp_path / "pc.jsonl", [{"ask": [{"role": "user", "content": "q"}],
                                             "reply": [{"role": "assistant", "content": "a"}]}])
    assert inspect_dataset(pc, columns="prompt=ask,response=reply").shape == "chat_prompt_completion"


def test_a_mapping_naming_a_missing_field_names_it_and_the_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "reply": "r"}] * 3)
    report = inspect_dataset(path, columns="prompt=question,response=answer")
    assert [str(i) for i in report.issues] == [
        f"{path}:1: --columns prompt=question,response=answer: no field `answer` in the records; "
        "their fields: question, reply"
    ]
    assert report.examples == 0 and report.fields == ("question", "reply")
    later = write_jsonl(tmp_path / "l.jsonl", [{"question": "q", "answer": "a"}, {"question": "q"}])
    assert [str(i) for i in inspect_dataset(later, columns="prompt=question,response=answer").issues] == [
        f"{later}:2: no field `answer` (--columns prompt=question,response=answer); the record's fields: question"
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("prompt=q", "prompt needs a response field too"),
    ("prompt=q,response=a,messages=m", "map exactly one of messages, prompt (with response) or text"),
    ("answer=a", "unknown role 'answer'; roles: messages, prompt, input, response, system, text"),
    ("prompt=q,prompt=r,response=a", "prompt is mapped twice"),
    ("prompt", "'prompt' is not ROLE=FIELD"),
    ("text=t,system=s", "system cannot be combined with text"),
    ("prompt=,response=a", "'prompt=' is not ROLE=FIELD"),
])
def test_bad_mappings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UserError, match="^--columns ") as exc:
        parse_columns(text)
    assert message in str(exc.value)


def test_plan_takes_columns_and_refuses_bad_or_empty_ones() -> None:
    from lora_tui.core.plan import TrainingPlan

    assert TrainingPlan(columns="prompt=q,response=a").columns == "prompt=q,response=a"
    assert "--columns prompt=q,response=a" in TrainingPlan(columns="prompt=q,response=a").command_line()
    with pytest.raises(UserError, match=r"`columns` \(--columns\) must not be empty"):
        TrainingPlan(columns="")
    with pytest.raises(UserError, match="prompt needs a response field"):
        TrainingPlan(columns="prompt=q")
    assert TrainingPlan.parse_field("columns", " ") is None


def _shards(folder: Path, chunks: list[list[dict]], fmt: str = "parquet") -> Path:
    folder.mkdir(parents=True)
    for i, chunk in enumerate(chunks):
        name = f"train-{i:05d}-of-{len(chunks):05d}.{fmt}"
        (write_parquet if fmt == "parquet" else write_jsonl)(folder / name, chunk)
    return folder


def test_a_directory_of_shards_is_one_dataset_with_locations_in_each_file(tmp_path: Path) -> None:
    data = _shards(tmp_path / "repo" / "data", [RECORDS["Dolly"], RECORDS["Dolly"][:2], RECORDS["Dolly"][:1]])
    write_parquet(data / "test-00000-of-00001.parquet", RECORDS["Dolly"])
    (tmp_path / "repo" / "README.md").write_text("# a dataset card")
    report = inspect_dataset(tmp_path / "repo")
    assert report.ok and (report.file_format, report.schema, report.examples) == ("parquet", "Dolly", 6)
    assert any("using `train` (splits: test, train)" in n for n in report.notes)
    assert any("3 parquet files, read in name order" in n for n in report.notes)
    bad = _shards(tmp_path / "bad", [RECORDS["Dolly"], [*RECORDS["Dolly"][:1], {"instruction": "i", "context": "",
                                                                               "response": None}]], fmt="jsonl")
    assert [str(i) for i in inspect_dataset(bad).issues] == [
        f"{bad / 'train-00001-of-00002.jsonl'}:2: null content: `response` is null"
    ]


def test_a_glob_names_files_of_one_format(tmp_path: Path) -> None:
    for i in range(3):
        write_jsonl(tmp_path / f"part{i}.jsonl", RECORDS["question/answer"])
    report = inspect_dataset(str(tmp_path / "part*.jsonl"))
    assert report.ok and report.examples == 9 and report.schema == "question/answer"
    with pytest.raises(UserError, match="no files match"):
        inspect_dataset(str(tmp_path / "nothing*.jsonl"))


def test_mixed_formats_and_schemas_name_the_first_file_that_differs(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", RECORDS["alpaca"])
    write_csv(tmp_path / "b.csv", RECORDS["alpaca"])
    with pytest.raises(UserError) as exc:
        inspect_dataset(tmp_path)
    assert str(exc.value) == (f"{tmp_path / 'b.csv'}: csv file among jsonl files (first: {tmp_path / 'a.jsonl'}); "
                              "the files of one dataset must share one format")
    (tmp_path / "b.csv").unlink()
    write_jsonl(tmp_path / "b.jsonl", RECORDS["alpaca"])
    write_jsonl(tmp_path / "c.jsonl", RECORDS["ShareGPT"])
    with pytest.raises(UserError) as exc:
        inspect_dataset(str(tmp_path / "*.jsonl"))
    assert str(exc.value) == (f"{tmp_path / 'c.jsonl'}:1: this file holds ShareGPT data but {tmp_path / 'a.jsonl'} "
                              "holds alpaca data; the files of one dataset must share one schema")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UserError) as exc:
        inspect_dataset(fifo)  # opening it would block forever
    assert str(exc.value) == f"{fifo}: a FIFO (named pipe), not a data file; pass a regular file or a dataset directory"
    with pytest.raises(UserError, match="FIFO"):
        inspect_dataset(str(tmp_path / "*.jsonl"))


def test_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^/dev/zero: a character device, not a data file"):
        inspect_dataset("/dev/zero")
    link = tmp_path / "zero.jsonl"
    link.symlink_to("/dev/zero")
    with pytest.raises(UserError, match="a character device"):
        list(iter_examples(link))


def test_a_json_string_of_turns_in_a_mapped_csv_column(tmp_path: Path) -> None:
    turns = json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    path = write_csv(tmp_path / "d.csv", [{"dialog": turns, "id": 1}])
    assert next(iter_examples(path, "messages=dialog"))[1]["messages"][1]["content"] == "a"
