"""`lora-tui inspect`: human and JSON output, exit status 0 for a clean file and 2 for problems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lora_tui.cli import main

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
