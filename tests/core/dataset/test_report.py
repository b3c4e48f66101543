"""core.dataset: every format x shape, every kind of problem with its exact location, counts, tiers, tokens."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from lora_tui.core.dataset import readers as dataset_readers
from lora_tui.core.dataset.report import (
    DatasetIssue,
    inspect_dataset,
    iter_examples,
    sample_dataset_path,
    size_tier,
)
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.errors import UserError
from tests.helpers.dataset_files import (
    RECORDS,
    SHAPE_OF,
    TOOL_CALL,
    write_arrow_dir,
    write_format,
    write_jsonl,
    write_parquet,
)

FORMATS = ["jsonl", "ndjson", "json", "json_object", "csv", "tsv", "parquet", "arrow"]
FORMAT_NAMES = {"ndjson": "jsonl", "json_object": "json"}


@pytest.mark.parametrize("schema", sorted(RECORDS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_file_every_format_and_schema(tmp_path: Path, fmt: str, schema: str) -> None:
    path = write_format(fmt, tmp_path, RECORDS[schema])
    report = inspect_dataset(path)
    assert report.issues == () and report.ok
    assert (report.file_format, report.schema, report.examples) == (FORMAT_NAMES.get(fmt, fmt), schema, 3)
    assert report.shape == SHAPE_OF.get(schema, "messages")
    assert report.size_tier == "small"
    assert report.bytes == sum(f.stat().st_size for f in [path, *path.rglob("*")] if f.is_file())
    examples = list(iter_examples(path))
    assert len(examples) == 3
    if fmt == "json_object":
        assert "records read from the top-level field 'data'" in report.notes


NORMALISED = {
    "messages": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
    "ShareGPT": {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
    "alpaca": {"messages": [{"role": "user", "content": "Add the numbers.\n\n2 and 3"},
                            {"role": "assistant", "content": "5"}]},
    "Dolly": {"messages": [{"role": "user", "content": "When did the war end?\n\nThe war ended in 1945."},
                           {"role": "assistant", "content": "In 1945."}]},
    "question/answer": {"messages": [{"role": "user", "content": "What is 2+2?"},
                                     {"role": "assistant", "content": "4"}]},
    "question/response": {"messages": [{"role": "system", "content": "You are an AI assistant."},
                                       {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
    "query/response": {"messages": [{"role": "user", "content": "What is 3*4?"},
                                    {"role": "assistant", "content": "3*4 = 12. The answer is: 12"}]},
    "prompt/response": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                     {"role": "assistant", "content": "Hello!"}]},
    "input/output": {"messages": [{"role": "user", "content": "Reverse: abc"},
                                  {"role": "assistant", "content": "cba"}]},
    "TRL conversational prompt-completion": {"prompt": [{"role": "user", "content": "The sky is"}],
                                             "completion": [{"role": "assistant", "content": "blue."}]},
    "prompt/completion": {"prompt": "The sky is", "completion": " blue."},
    "text": {"text": "### Human: Hi### Assistant: Hello!"},
}


@pytest.mark.parametrize("schema", sorted(NORMALISED))
def test_iter_examples_normalises_each_schema(tmp_path: Path, schema: str) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", RECORDS[schema])
    location, first = next(iter_examples(path))
    assert location == f"{path}:1"
    assert first == NORMALISED[schema]


def test_every_schema_has_records_and_a_normalised_form() -> None:
    from lora_tui.core.dataset.mapping import SCHEMA_NAMES

    assert set(RECORDS) == set(SCHEMA_NAMES) == set(NORMALISED)


def test_tool_calls_are_kept_and_null_content_allowed(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", RECORDS["messages"])
    turns = list(iter_examples(path))[1][1]["messages"]
    assert turns[2] == {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]}
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "tool", "assistant"]
    sharegpt = list(iter_examples(write_jsonl(tmp_path / "s.jsonl", RECORDS["ShareGPT"])))
    assert [t["role"] for t in sharegpt[1][1]["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert [t["role"] for t in sharegpt[2][1]["messages"]] == ["user", "assistant"]  # from: model


def test_iter_examples_locations_for_rows_and_alpaca_without_input(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "d.parquet", [{"instruction": "Hi", "output": "Hello"}] * 2)
    assert list(iter_examples(path)) == [
        (f"{path}:row {n}", {"messages": [{"role": "user", "content": "Hi"},
                                          {"role": "assistant", "content": "Hello"}]})
        for n in (1, 2)
    ]


def test_iter_examples_stops_at_first_problem(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "a"}, {"text": None}, {"text": 3}])
    it = iter_examples(path)
    assert next(it)[0] == f"{path}:1"
    with pytest.raises(UserError, match=r"d\.jsonl:2: null content: `text` is null"):
        next(it)


def test_bom_crlf_and_blank_lines_are_fine(tmp_path: Path) -> None:
    lines = [json.dumps({"text": t}) for t in ("a", "b", "c")]
    body = "\ufeff" + lines[0] + "\r\n\r\n   \r\n" + lines[1] + "\r\n\n" + lines[2]
    path = tmp_path / "d.jsonl"
    path.write_bytes(body.encode("utf-8"))
    report = inspect_dataset(path)
    assert (report.examples, report.issue_count) == (3, 0)
    assert [loc for loc, _ in iter_examples(path)] == [f"{path}:1", f"{path}:4", f"{path}:6"]


def test_csv_with_bom_crlf_blank_lines_and_multiline_cell(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes('\ufeffprompt,completion\r\n"a\r\nb",c\r\n\r\nd,e\r\n'.encode())
    assert [loc for loc, _ in iter_examples(path)] == [f"{path}:2", f"{path}:5"]
    assert inspect_dataset(path).examples == 2


MSG_OK = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}

JSONL_ERRORS: list[tuple[str, str]] = [
    ('{"messages": [{"role": "user", "content": "q"}', "invalid JSON: Expecting ',' delimiter (column 47)"),
    ('{"messages": [{"role": "bot", "content": "q"}, {"role": "assistant", "content": "a"}]}',
     "unknown role 'bot' in messages[0]; allowed roles: system, user, assistant, tool"),
    ('{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}',
     "missing field `content` in messages[0]"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null}]}',
     "null content: `content` in messages[1] is null"),
    ('{"messages": []}', "empty conversation: `messages` has no turns"),
    ('{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}',
     "no assistant turn to learn from in `messages` (roles present: system, user)"),
    ('{"instruction": "i", "output": "o"}', "record looks like alpaca data but the file holds messages data"),
    ('{"question": "q"}', "no known schema in the fields (question); map them with --columns, e.g. --columns "
     "prompt=question,response=answer[,system=sys], messages=dialog or text=body"),
    ("[1, 2]", "record is a list, expected a JSON object"),
    ('"just a string"', "record is a string, expected a JSON object"),
    ('{"messages": "hello"}', "`messages` must be a list of turns, got a string"),
    ('{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]}',
     "`content` in messages[0] must be a string, got a number"),
]


@pytest.mark.parametrize(("bad_line", "message"), JSONL_ERRORS)
def test_each_record_error_names_line_and_problem(tmp_path: Path, bad_line: str, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(MSG_OK) + "\n" + json.dumps(MSG_OK) + "\n" + bad_line + "\n" + json.dumps(MSG_OK))
    report = inspect_dataset(path)
    assert [str(i) for i in report.issues] == [f"{path}:3: {message}"]
    assert (report.shape, report.examples, report.issue_count, report.ok) == ("messages", 3, 1, False)


SHAPE_ERRORS: list[tuple[str, list[Any], str]] = [
    ("ShareGPT", [{"conversations": [{"from": "robot", "value": "x"}]}],
     "unknown role 'robot' (`from`) in conversations[0]; allowed: system, human, user, gpt, bot, model, chatgpt, "
     "assistant, function_call, function, observation, tool"),
    ("ShareGPT", [{"conversations": [{"from": "human", "value": "x"}]}],
     "no assistant turn to learn from in `conversations` (roles present: user)"),
    ("alpaca", [{"instruction": "i"}], "missing field `output`"),
    ("alpaca", [{"instruction": "i", "output": None}], "null content: `output` is null"),
    ("alpaca", [{"instruction": "i", "input": 3, "output": "o"}], "`input` must be a string (or empty), got a number"),
    ("Dolly", [{"instruction": "i", "context": "", "response": " "}],
     "no assistant turn to learn from: `response` is empty"),
    ("question/answer", [{"question": "q", "answer": 4}], "`answer` must be a string, got a number"),
    ("prompt/completion", [{"prompt": "p"}], "missing field `completion`"),
    ("TRL conversational prompt-completion", [{"prompt": [{"role": "user", "content": "q"}], "completion": []}],
     "empty conversation: `completion` has no turns"),
    ("messages", [{"messages": [{"role": "assistant", "content": None, "tool_calls": {"name": "f"}}]}],
     "`tool_calls` in messages[0] must be a list of objects, got an object"),
    ("text", [{"text": ""}], "empty `text`: nothing to learn from"),
]


@pytest.mark.parametrize(("schema", "bad", "message"), SHAPE_ERRORS)
def test_schema_specific_errors(tmp_path: Path, schema: str, bad: list[Any], message: str) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [*RECORDS[schema], *bad])
    report = inspect_dataset(path)
    assert report.schema == schema
    assert [str(i) for i in report.issues] == [f"{path}:4: {message}"]


def test_shape_is_the_majority_of_the_first_records(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [RECORDS["alpaca"][0], *RECORDS["messages"], *RECORDS["messages"]])
    report = inspect_dataset(path)
    assert report.shape == "messages" and report.examples == 6
    assert [str(i) for i in report.issues] == [
        f"{path}:1: record looks like alpaca data but the file holds messages data"
    ]


def test_no_recognisable_record_is_one_problem_naming_the_fields_and_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "1", "a": "x"}, {"b": 2}, {"q": "2", "a": "y"}])
    report = inspect_dataset(path)
    assert report.shape is None and report.schema is None and report.size_tier is None and report.examples == 0
    assert report.fields == ("q", "a")
    assert [str(i) for i in report.issues] == [
        f"{path}:1: no known schema in the fields (a, q); map them with --columns, e.g. --columns "
        "prompt=question,response=answer[,system=sys], messages=dialog or text=body"
    ]


FILE_PROBLEMS: list[tuple[str, bytes, str]] = [
    ("d.jsonl", b"\x00\x01\x02binary\x00", "not a text file: binary data (NUL bytes) near the start; expected UTF-8 "
     "text"),
    ("d.jsonl", b"\x1f\x8b\x08\x00rest", "not a text file: it is gzip-compressed; decompress it first"),
    ("d.jsonl", "{}".encode("utf-16"), "not UTF-8: the file is UTF-16 encoded; save it as UTF-8"),
    ("d.csv", b"PAR1\x00\x00", "not a text file: it looks like a Parquet file; give it a .parquet extension"),
    ("d.json", b"\x00\x00\x00", "not a text file: binary data (NUL bytes) near the start; expected UTF-8 text"),
    ("d.jsonl", b"", "no examples: the file holds no records"),
    ("d.jsonl", b"\n\r\n  \n", "no examples: the file holds no records"),
]


@pytest.mark.parametrize(("name", "content", "message"), FILE_PROBLEMS)
def test_whole_file_problems(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = inspect_dataset(path)
    assert [str(i) for i in report.issues] == [f"{path}: {message}"]
    assert report.examples == 0 and not report.ok


def test_undecodable_bytes_name_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps(MSG_OK).encode() + '\n{"text": "日本caf'.encode() + b'\xe9"}\n'
                     + json.dumps(MSG_OK).encode())
    report = inspect_dataset(path)
    assert [str(i) for i in report.issues] == [
        f"{path}:2: undecodable bytes: byte 0xe9 at column 16 is not UTF-8; save the file as UTF-8"
    ]
    assert report.examples == 2


def test_json_array_errors_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[\n  {"text": "a"},\n  {"text": null},\n  {"text": "b"}\n]')
    assert [str(i) for i in inspect_dataset(path).issues] == [f"{path}:3: null content: `text` is null"]
    path.write_text('[\n  {"text": "a"},\n  {"text": "b",}\n]')
    report = inspect_dataset(path)
    assert [str(i) for i in report.issues] == [
        f"{path}:3: invalid JSON: Expecting property name enclosed in double quotes (column 16)"
    ]
    assert report.examples == 1
    path.write_text('{"a": [], "b": []}')
    assert "list fields found: a, b" in str(inspect_dataset(path).issues[0])
    path.write_bytes(b'[{"text": "ok"},\n{"text": "\xff"}]')
    assert str(inspect_dataset(path).issues[0]) == (
        f"{path}:2: undecodable bytes: byte 0xff at column 11 is not UTF-8; save the file as UTF-8"
    )


def test_misnamed_json_and_jsonl_get_a_hint(tmp_path: Path) -> None:
    lines = write_jsonl(tmp_path / "lines.json", RECORDS["text"])
    assert [str(i) for i in inspect_dataset(lines).issues] == [
        f"{lines}:2: invalid JSON: Extra data (column 1); one record per line is JSON Lines: name the file .jsonl"
    ]
    array = tmp_path / "array.jsonl"
    array.write_text(json.dumps(RECORDS["text"], indent=1))
    issues = inspect_dataset(array).issues
    assert str(issues[0]) == (
        f"{array}:1: invalid JSON: Expecting value (column 2); the file looks like a JSON array: name it .json"
    )
    assert "looks like a JSON array" not in str(issues[1])


def test_dataset_dict_without_train_split(tmp_path: Path) -> None:
    write_arrow_dir(tmp_path / "dd" / "validation", RECORDS["text"])
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["validation"]}))
    with pytest.raises(UserError, match=r"has no `train` split \(splits: validation\); pass the split's directory"):
        inspect_dataset(tmp_path / "dd")


def test_large_json_array_is_refused_with_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "d.json", [])
    path.write_text(json.dumps(RECORDS["text"] * 100))
    monkeypatch.setattr(dataset_readers, "MAX_JSON_BYTES", 1000)
    with pytest.raises(UserError, match="too large to read as one document .* convert it to JSONL"):
        inspect_dataset(path)


def test_csv_errors_use_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b'instruction,input,output\n"multi\nline",,ok\na,b\nx,y,z,extra\nq,,"caf\xe9"\n')
    report = inspect_dataset(path)
    assert [str(i) for i in report.issues] == [
        f"{path}:4: missing field `output`",
        f"{path}:5: row has 4 cells but the header has 3 columns",
        f"{path}:6: undecodable bytes: byte 0xe9 at column 8 is not UTF-8; save the file as UTF-8",
    ]
    assert report.examples == 1


def test_parquet_and_arrow_errors_use_rows(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "completion": "c"}] * 11 + [{"prompt": "p", "completion": None}]
    pq_path = write_parquet(tmp_path / "data.parquet", rows, row_group_size=5)
    assert [str(i) for i in inspect_dataset(pq_path).issues] == [
        f"{pq_path}:row 12: null content: `completion` is null"
    ]
    arrow = write_arrow_dir(tmp_path / "saved", rows, shards=3)
    report = inspect_dataset(arrow)
    assert [str(i) for i in report.issues] == [f"{arrow}:row 12: null content: `completion` is null"]
    assert (report.file_format, report.examples) == ("arrow", 11)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    assert str(inspect_dataset(bad).issues[0]).startswith(f"{bad}: not a readable Parquet file:")


def test_exact_counts_and_issue_cap(tmp_path: Path) -> None:
    records: list[Any] = [MSG_OK] * 1234
    for i in (10, 500, 501, 900, 1200):
        records[i] = {"messages": []}
    path = write_jsonl(tmp_path / "d.jsonl", records)
    report = inspect_dataset(path, max_issues=2)
    assert (report.examples, report.issue_count, len(report.issues)) == (1229, 5, 2)
    assert [i.line for i in report.issues] == [11, 501]
    assert report.size_tier == "medium"
    data = report.to_dict()
    assert data["error_count"] == 5 and data["examples"] == 1229 and len(data["errors"]) == 2
    assert data["format"] == "jsonl" and data["size_tier"] == "medium" and data["shape"] == "messages"
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(
    ("examples", "tier"),
    [(0, "small"), (1, "small"), (999, "small"), (1000, "medium"), (5000, "medium"), (10000, "medium"),
     (10001, "large"), (10**7, "large")],
)
def test_size_tier_boundaries(examples: int, tier: str) -> None:
    assert size_tier(examples) == tier


def test_size_tier_rejects_negative() -> None:
    with pytest.raises(ValueError, match="`examples`"):
        size_tier(-1)


@pytest.mark.parametrize(
    ("issue", "text"),
    [
        (DatasetIssue("d.jsonl", 3, None, "bad"), "d.jsonl:3: bad"),
        (DatasetIssue("d.parquet", None, 12, "bad"), "d.parquet:row 12: bad"),
        (DatasetIssue("d.jsonl", None, None, "bad"), "d.jsonl: bad"),
    ],
)
def test_issue_rendering(issue: DatasetIssue, text: str) -> None:
    assert str(issue) == text


@pytest.mark.parametrize(
    ("name", "match"),
    [("missing.jsonl", "no such file or directory"), ("data.txt", r"unsupported file type '\.txt'")],
)
def test_user_errors_for_path_and_format(tmp_path: Path, name: str, match: str) -> None:
    if name.endswith(".txt"):
        (tmp_path / name).write_text("hello")
    with pytest.raises(UserError, match=match):
        inspect_dataset(tmp_path / name)


def test_directory_without_data_files_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="no data files in this directory"):
        inspect_dataset(tmp_path)


def test_streaming_keeps_memory_flat(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "big.jsonl"
    content = "x" * 2500
    line = json.dumps({"messages": [{"role": "user", "content": content},
                                    {"role": "assistant", "content": content}]}) + "\n"
    count = 50 * 2**20 // len(line) + 1
    with path.open("w") as fh:
        for _ in range(count // 100):
            fh.write(line * 100)
        fh.write(line * (count % 100))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        report = inspect_dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 50 * 2**20
    assert report.examples == count and report.ok
    assert peak < size / 20, f"peak {peak} bytes for a {size} byte file"


def _tiny_tokenizer(directory: Path) -> Path:
    """A word-level tokenizer: one token per word or punctuation run, no special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "w": 1, "user": 2, ":": 3, "assistant": 4}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    return directory


def test_token_stats_with_a_local_tokenizer(tmp_path: Path) -> None:
    tok_dir = _tiny_tokenizer(tmp_path / "tok")
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": " ".join(["w"] * n)} for n in range(1, 21)])
    report = inspect_dataset(path, tokenizer=tok_dir, max_seq_length=15)
    stats = report.token_stats
    assert stats is not None
    assert (stats.count, stats.median, stats.p95, stats.max, stats.over_max) == (20, 10, 19, 20, 5)
    assert stats.mean == pytest.approx(10.5) and stats.max_seq_length == 15
    assert stats.trained_token_share == 1.0 and stats.template == ""  # plain text: every token, no template
    assert stats.first_over == f"{path}:16"
    chat = write_jsonl(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "w w"},
                                                            {"role": "assistant", "content": "w"}]}])
    chat_report = inspect_dataset(chat, tokenizer=tok_dir / "tokenizer.json")
    chat_stats = chat_report.token_stats
    assert chat_stats is not None and chat_stats.max == 9  # ### User : w w ### Assistant : w (fallback template)
    assert chat_stats.max_seq_length == 1024 and chat_stats.template.startswith("lora-tui fallback template")
    assert round(chat_stats.trained_token_share * 9) == 1  # the assistant's `w` (this tokenizer has no EOS)
    assert any("no chat template" in note and "fallback" in note for note in chat_report.notes)


def test_tokenizer_from_the_local_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tiny_tokenizer(tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    path = write_jsonl(tmp_path / "d.jsonl", RECORDS["text"])
    stats = inspect_dataset(path, tokenizer="org/tiny").token_stats
    assert stats is not None and stats.tokenizer == "org/tiny" and stats.count == 3
    with pytest.raises(UserError, match="not in the Hugging Face cache"):
        inspect_dataset(path, tokenizer="org/absent")
    with pytest.raises(UserError, match="no tokenizer.json in this directory"):
        inspect_dataset(path, tokenizer=tmp_path)


def test_real_save_to_disk_dataset_dict(tmp_path: Path) -> None:
    import datasets

    train = datasets.Dataset.from_list(RECORDS["messages"] * 4)
    test = datasets.Dataset.from_list(RECORDS["messages"][:1])
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    report = inspect_dataset(tmp_path / "dd")
    assert (report.file_format, report.shape, report.examples, report.ok) == ("arrow", "messages", 12, True)
    assert "DatasetDict: using the `train` split (splits: train, test)" in report.notes
    assert inspect_dataset(tmp_path / "dd" / "test").examples == 1


def test_sample_dataset_is_generated_and_clean() -> None:
    assert sample_dataset_path() == SAMPLE_DATA_PATH
    script = Path(__file__).resolve().parents[3] / "scripts" / "make_sample_data.py"
    spec = importlib.util.spec_from_file_location("make_sample_data", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert SAMPLE_DATA_PATH.read_text(encoding="utf-8") == module.generate()
    report = inspect_dataset(SAMPLE_DATA_PATH)
    assert report.ok and report.shape == "messages" and 300 <= report.examples <= 400
    assert report.bytes < 150 * 1024
    answers = [ex["messages"][-1]["content"] for _, ex in iter_examples(SAMPLE_DATA_PATH)]
    assert all(a.endswith(("— Koko", "— ココ")) for a in answers)
    assert any("ココ" in a for a in answers) and any("Koko" in a for a in answers)


def test_demo_tokenizer_is_built_on_first_need_then_the_models_own_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lora_tui.core.dataset.tokens import find_tokenizer_file

    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path))
    assert find_tokenizer_file("demo") == tmp_path / "demo-tokenizer" / "tokenizer.json"
    (tmp_path / "demo-model").mkdir()
    (tmp_path / "demo-model" / "tokenizer.json").write_text("{}")
    assert find_tokenizer_file("demo") == tmp_path / "demo-model" / "tokenizer.json"


# ---- progress ------------------------------------------------------------------------------------------


def _chats(n: int) -> list[dict[str, Any]]:
    return [{"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "an answer"}]}
            for i in range(n)]


@pytest.fixture
def every_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress events are not thinned out in time (the files here are read in milliseconds)."""
    from lora_tui.core.dataset import report

    monkeypatch.setattr(report, "PROGRESS_INTERVAL_S", 0.0)


@pytest.mark.usefixtures("every_event")
def test_inspection_tells_how_many_bytes_of_a_line_file_are_read(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "chats.jsonl", _chats(3000))
    events: list[Any] = []
    report = inspect_dataset(path, progress=events.append, max_seq_length=64)
    assert report.examples == 3000
    size = path.stat().st_size
    assert events[0].stage == "reading the data" and events[0].total == size and events[0].unit == "bytes"
    running = [e for e in events if not e.final]
    assert [e.done for e in running] == sorted(e.done for e in running) and running[-1].done > 0
    assert all(e.done <= size for e in running)
    assert len(running) >= 3000 // 256
    assert events[-1].final and not events[-1].cancelled and events[-1].done == size
    assert sum(e.final for e in events) == 1


@pytest.mark.usefixtures("every_event")
def test_shards_are_counted_file_by_file_and_whole_file_formats_by_records(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(3):
        write_parquet(shards / f"train-0000{i}-of-00003.parquet", _chats(400))
    events: list[Any] = []
    inspect_dataset(shards, progress=events.append)
    total = sum(f.stat().st_size for f in shards.iterdir())
    assert events[0].total == total and events[0].unit == "bytes"
    # 1,200 records, 400 a shard, told every 256 (after the stage's first event): the shards finished so far
    first, second = (path.stat().st_size for path in sorted(shards.iterdir())[:2])
    done = [e.done for e in events if not e.final]
    assert done[:5] == [0, 0, first, first, first + second]
    assert events[-1].final and events[-1].done == total

    one = write_parquet(tmp_path / "one.parquet", _chats(600))
    events = []
    inspect_dataset(one, progress=events.append)
    assert events[0].total is None and events[0].unit == "records"
