"""`lora-tui inspect`: human and JSON output, exit status 0 for a clean file and 2 for problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lora_tui.cli import main
from tests.helpers.dataset_files import chat_model_dir

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return _write(tmp_path / "chat.jsonl", [json.dumps(GOOD)] * 1000)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    return _write(tmp_path / "data.jsonl", [
        json.dumps(GOOD),
        '{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}',
        "{not json",
        json.dumps(GOOD),
        '{"messages": []}',
    ])


def test_clean_file_exits_0_with_summary(clean: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(clean)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"{clean}\n  format      jsonl\n" in out
    assert "  shape       messages (" in out
    assert "  examples    1,000\n" in out
    assert "  size tier   medium: 1K-10K examples" in out
    assert "Problems" not in out


def test_broken_file_lists_each_problem_and_exits_2(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(broken)]) == 2
    out, err = capsys.readouterr()
    assert "  examples    2\n" in out
    assert "Problems (3):" in out
    problem_lines = [line for line in out.splitlines() if line.startswith(str(broken) + ":")]
    assert problem_lines == [
        f"{broken}:2: unknown role 'bot' in messages[0]; allowed roles: system, user, assistant, tool",
        f"{broken}:3: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"{broken}:5: empty conversation: `messages` has no turns",
    ]
    assert err == f"lora-tui: error: {broken} has 3 problems; fix them and inspect again\n"
    assert "Traceback" not in out + err


def test_max_errors_limits_the_list(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(broken), "--max-errors", "1"]) == 2
    out = capsys.readouterr().out
    assert f"{broken}:2: unknown role" in out and f"{broken}:3:" not in out
    assert "... and 2 more (raise --max-errors to list them)" in out


@pytest.mark.parametrize(("fixture", "status"), [("clean", 0), ("broken", 2)])
def test_json_output(fixture: str, status: int, request: pytest.FixtureRequest,
                     capsys: pytest.CaptureFixture[str]) -> None:
    path: Path = request.getfixturevalue(fixture)
    assert main(["inspect", str(path), "--json"]) == status
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "jsonl" and data["shape"] == "messages"
    if status == 0:
        assert (data["examples"], data["size_tier"], data["error_count"], data["errors"]) == (1000, "medium", 0, [])
    else:
        assert (data["examples"], data["size_tier"], data["error_count"]) == (2, "small", 3)
        assert data["errors"][2] == f"{path}:5: empty conversation: `messages` has no turns"
    assert data["token_stats"] is None


def test_token_stats_in_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    data = _write(tmp_path / "t.jsonl", [json.dumps({"text": "a b c"}), json.dumps({"text": "a b c d e f"})])
    assert main(["inspect", str(data), "--tokenizer", str(tmp_path), "--max-seq-length", "4"]) == 0
    out = capsys.readouterr().out
    assert f"  tokens      median 3, p95 6, max 6, mean 4.5 ({tmp_path})" in out
    assert "  too long    1 of 2 longer than max_seq_length 4" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "nope.jsonl"], "lora-tui: error: nope.jsonl: no such file or directory"),
        (["inspect", "{data}", "--max-seq-length", "0"], "lora-tui: error: --max-seq-length must be at least 1"),
        (["inspect", "{data}", "--tokenizer", "no/such-model"], "lora-tui: error: --tokenizer no/such-model:"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], message: str, clean: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main([a.replace("{data}", str(clean)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") <= 2


def test_subprocess_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bin.jsonl"
    bad.write_bytes(b"\x00\x00\x00\x00")
    proc = subprocess.run([sys.executable, "-m", "lora_tui", "inspect", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{bad}: not a text file: binary data" in proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("lora-tui: error:")


# ---- the public datasets' schemas, refusals, --columns, previews, paths that are not data files -------------

SCHEMA_LINE = {"Dolly": "  schema      Dolly (prompt=instruction,input=context,response=response)\n",
               "question/answer": "  schema      question/answer (prompt=question,response=answer)\n",
               "TRL conversational prompt-completion": "  schema      TRL conversational prompt-completion "
                                                       "(prompt=prompt,response=completion)\n"}


@pytest.mark.parametrize("schema", sorted(SCHEMA_LINE))
def test_the_issues_three_refused_files_are_recognised(schema: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.dataset_files import RECORDS, write_csv, write_jsonl

    path = (write_csv(tmp_path / "d.csv", RECORDS[schema]) if schema == "question/answer"
            else write_jsonl(tmp_path / "d.jsonl", RECORDS[schema]))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert SCHEMA_LINE[schema] in out and "  examples    3\n" in out


@pytest.mark.parametrize(("records", "message"), [
    ([{"chosen": "a", "rejected": "b"}], "is for DPO-style training, which lora-tui does not train"),
    ([{"prompt": [{"role": "user", "content": "q"}]}], "prompt-only data (for RL-style training such as GRPO)"),
    ([{"q": "x", "a": "y"}], "no known schema in the fields (a, q); map them with --columns"),
])
def test_refused_files_say_why_and_what_to_do(records: list, message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps(r) for r in records * 5])
    assert main(["inspect", str(path)]) == 2
    out, err = capsys.readouterr()
    problems = [line for line in out.splitlines() if line.startswith(f"{path}:")]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:1: ") and message in problems[0]
    assert "--columns" in problems[0] and err.count("\n") == 1 and "Traceback" not in out + err


def test_columns_flag_maps_other_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps({"ask": "2+2?", "reply": "4"})] * 3)
    assert main(["inspect", str(path), "--columns", "prompt=ask,response=reply", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["schema"], data["columns"], data["shape"], data["examples"]) == (
        "--columns", "prompt=ask,response=reply", "messages", 3)
    assert main(["inspect", str(path), "--columns", "prompt=ask,response=answer"]) == 2
    out = capsys.readouterr().out
    assert f"{path}:1: --columns prompt=ask,response=answer: no field `answer` in the records; their fields: ask, " \
           "reply" in out
    assert main(["inspect", str(path), "--columns", "prompt=ask"]) == 2
    assert capsys.readouterr().err.startswith("lora-tui: error: --columns 'prompt=ask': prompt needs a response")


def _local_model(folder: Path) -> Path:
    return chat_model_dir(folder, "hi hello what is 2 4 a b c")


def test_model_flag_measures_through_the_chat_template_and_shows_trained_spans(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _local_model(tmp_path / "model")
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD)] * 4)
    assert main(["inspect", str(path), "--model", str(model), "--show", "1"]) == 0
    out = capsys.readouterr().out
    # <s> <|user|> Hi </s> <|assistant|> Hello ! </s>: 8 tokens, `Hello!</s>` trained
    assert f"  tokens      median 8, p95 8, max 8, mean 8.0 ({model / 'tokenizer.json'})" in out
    assert "  template    chat template (chat_template.jinja)\n" in out
    assert "  trained     37.5% of the tokens carry the loss\n" in out
    assert f"--- {path}:1: 8 tokens, 3 trained ---\n<s><|user|>\nHi</s>\n<|assistant|>\n⟦Hello!</s>⟧\n" in out
    assert main(["inspect", str(path), "--model", str(model), "--json", "--max-seq-length", "6"]) == 0
    stats = json.loads(capsys.readouterr().out)["token_stats"]
    assert {k: stats[k] for k in ("median", "p95", "max", "over_max", "max_seq_length", "trained_token_share")} == {
        "median": 8, "p95": 8, "max": 8, "over_max": 4, "max_seq_length": 6, "trained_token_share": 0.375}
    assert stats["first_over"] == f"{path}:1"


def test_model_not_on_this_machine_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD)])
    assert main(["inspect", str(path), "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "token statistics need the model's tokenizer on this machine" in out
    assert "No preview: Qwen/Qwen2.5-0.5B-Instruct's tokenizer is not on this machine" in out


def test_the_demo_tokenizer_is_built_on_first_need(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "cache"))
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD)])
    assert main(["inspect", str(path), "--model", "demo", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["token_stats"]
    assert stats["max"] > 0 and stats["over_max"] == 0
    assert (tmp_path / "cache" / "demo-tokenizer" / "tokenizer.json").is_file()


def test_fetch_tokenizer_measures_a_hub_model_whose_weights_are_not_here(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.fake_hub import FakeHub, serve

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "cache"))
    hub = FakeHub()
    hub.add_dir("acme/chat-1b", _local_model(tmp_path / "model"))
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD)] * 4)
    with serve(hub):
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert main(["inspect", str(path), "--model", "acme/chat-1b"]) == 0
        assert "need the model's tokenizer on this machine: pass --model" in capsys.readouterr().out
        assert main(["inspect", str(path), "--model", "acme/chat-1b", "--fetch-tokenizer", "--json"]) == 0
        stats = json.loads(capsys.readouterr().out)["token_stats"]
        assert (stats["median"], stats["trained_token_share"]) == (8, 0.375)
        hub.files.clear()  # fetched once: found locally from now on, with no flag
        assert main(["inspect", str(path), "--model", "acme/chat-1b", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["token_stats"]["median"] == 8
        assert main(["inspect", str(path), "--model", "acme/other", "--fetch-tokenizer"]) == 2
        assert capsys.readouterr().err.strip() == (
            "lora-tui: error: acme/other: could not fetch its tokenizer: tokenizer.json: not found")


def _hangs_not(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lora_tui", *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("argv", [["inspect", "{p}"], ["recommend", "--data", "{p}"],
                                  ["train", "--data", "{p}", "--dry-run"]])
def test_a_fifo_as_data_is_a_one_line_error(argv: list[str], tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    proc = _hangs_not([a.replace("{p}", str(fifo)) for a in argv])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("lora-tui: error: ") and proc.stderr.count("\n") == 1
    assert f"{fifo}: a FIFO (named pipe), not a data file" in proc.stderr


@pytest.mark.parametrize("argv", [["inspect", "/dev/zero"], ["train", "--data", "", "--dry-run"]])
def test_a_device_or_an_empty_data_path_is_a_one_line_error(argv: list[str]) -> None:
    proc = _hangs_not(argv)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "a character device" in proc.stderr or "`data` (--data) must not be empty" in proc.stderr


def test_train_dry_run_reports_truncation_and_the_length_it_recommends(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LORA_TUI_CACHE", str(cache))
    _local_model(cache / "demo-model")  # the demo model's tokenizer, as once it is built
    long = {"messages": [{"role": "user", "content": "a " * 300}, {"role": "assistant", "content": "b " * 300}]}
    lines = [json.dumps(GOOD)] * 30 + [json.dumps(long)]
    path = _write(tmp_path / "long.jsonl", lines)
    assert main(["train", "--data", str(path), "--dry-run", "--json"]) == 0
    out, err = capsys.readouterr()
    resolved = json.loads(out)
    stats = resolved["data"]["token_stats"]
    assert (stats["max"], stats["p95"], stats["median"]) == (605, 8, 8)
    assert resolved["plan"]["max_seq_length"] == 64 == stats["max_seq_length"]  # p95 8 rounded up to 64
    assert stats["over_max"] == 1 and stats["first_over"] == f"{path}:31"
    assert "95% of the examples are at most 8 tokens" in resolved["reasons"]["max_seq_length"]
    assert f"1 longer example(s) will be cut at the end (first: {path}:31)" in resolved["reasons"]["max_seq_length"]
    assert (f"lora-tui: warning: 1 of 31 example is longer than max_seq_length 64 tokens (the longest: 605; first: "
            f"{path}:31)") in err
    assert main(["train", "--data", str(path), "--dry-run", "--max-seq-length", "1024"]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err and "  tokens      median 8, p95 8, max 605" in out
