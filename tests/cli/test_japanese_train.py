"""`lora-tui train` and `inspect` in Japanese: the dry run, the start messages, warnings and errors from the
catalogue with no English but names; the run files English whatever the language (the data read once); a data
report's notes and problems in Japanese while its JSON stays English."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lora_tui import i18n
from tests.helpers.cli import fresh_language  # noqa: F401 - autouse: only --lang chooses
from tests.helpers.cli import run_cli as _run
from tests.helpers.japanese import english_words

DEMO_NAME = r"\(tiny Llama, built locally\)"
"""The demo model's display name (a name, not a message)."""


def test_the_dry_run_is_japanese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--lang", "ja", "train", "--model", "demo", "--vram-gb", "8", "--dry-run",
                          "--output", str(tmp_path / "run"))
    assert code == 0, err
    assert out.startswith(f"計画（{tmp_path / 'run'} に新しい実行）:\n")
    assert "実効バッチ: 16（バッチ 2 x 勾配蓄積 8 x 1 プロセス）" in out
    assert any(line.split()[:3] == ["lora_r", "8", "推奨"] for line in out.splitlines())
    assert "（組み込みのサンプル）" in out and "データ: " in out and "固定したベースの重み" in out
    assert "/ 8.0 GB（--vram-gb）: 収まる" in out
    # the demo's name, the adapter's words its preset quotes, and a command to install
    assert english_words(out, left_for_later=(DEMO_NAME, r"'Happy to help! - Koko'", r"pip install \S+")) == [], out
    assert i18n.missing == set()
    _, english, _ = _run(capsys, "train", "--model", "demo", "--vram-gb", "8", "--dry-run", "--output",
                         str(tmp_path / "run"))
    assert english.startswith("Plan (new run in ") and "Frozen base weights" in english  # English as it was


def test_the_dry_runs_json_is_english(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--model", "demo", "--vram-gb", "8", "--dry-run", "--json", "--output", str(tmp_path / "r")]
    _, english, _ = _run(capsys, *argv)
    _, japanese, _ = _run(capsys, "--lang", "ja", *argv)
    assert japanese == english
    assert json.loads(japanese)["reasons"]["lora_r"].startswith("the guide's")


def test_a_japanese_launch_says_so_in_japanese_and_writes_english_run_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from lora_tui.core import launcher

    launched: list[Any] = []
    inspected: list[str] = []
    real_inspect = launcher.inspect_data
    monkeypatch.setattr(launcher, "inspect_data", lambda *a, **k: inspected.append(a[0]) or real_inspect(*a, **k))
    monkeypatch.setattr(launcher, "launch", lambda resolved: launched.append(resolved) or (
        tmp_path / "run", SimpleNamespace(pid=4242)))
    code, out, err = _run(capsys, "--lang", "ja", "train", "--model", "demo", "--max-seq-length", "32",
                          "--max-steps", "2", "--output", str(tmp_path / "run"), "--detach")
    assert code == 0, err
    assert out.splitlines() == [f"実行: {tmp_path / 'run'}  pid: 4242",
                                f"`lora-tui runs logs {tmp_path / 'run'} -f` で追跡、`lora-tui runs stop "
                                f"{tmp_path / 'run'}` で停止できます"]
    assert err.startswith("lora-tui: 警告: ") and "例が max_seq_length の 32 トークンより長いです" in err
    assert english_words(out + err) == [] and i18n.missing == set()
    (resolved,) = launched  # what the run files are written from: English
    assert resolved.reasons["lora_r"].startswith("the guide's")
    assert all(r.isascii() or "…" in r for r in resolved.reasons.values())
    assert resolved.warnings[0].startswith(tuple("0123456789")) and "longer than max_seq_length 32" in \
        resolved.warnings[0]
    assert all(note.isascii() for note in resolved.data_report["notes"])
    assert len(inspected) == 1  # the English resolution reused the data report


def test_train_errors_are_japanese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--lang", "ja", "train", "--resume")
    assert code == 2 and err == "lora-tui: エラー: --resume には --output RUN_DIR（続ける実行）が必要です\n"
    code, _, err = _run(capsys, "--lang", "ja", "train", "--model", "demo", "--target-modules", "nope",
                        "--dry-run", "--output", str(tmp_path / "r"))
    assert code == 2 and "nope は" in err and "のどのモジュールにも一致しません" in err, err
    code, _, err = _run(capsys, "--lang", "ja", "train", "--model", "demo", "--data", str(tmp_path / "none.jsonl"),
                        "--dry-run")
    assert code == 2 and err == (f"lora-tui: エラー: {tmp_path / 'none.jsonl'}: ファイルもディレクトリもありません。"
                                 "パスを確かめてください（`lora-tui inspect --help` も参照）\n")


def _problem_data(root: Path) -> tuple[Path, Path]:
    """Two shards of one split with a problem of each kind, and a .json object holding its records in a field."""
    shards = root / "shards"
    shards.mkdir()
    ok = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    (shards / "train-00000-of-00002.jsonl").write_text("\n".join([
        json.dumps(ok), json.dumps({"messages": [{"role": "bot", "content": "x"}]}), "not json",
        json.dumps({"messages": [{"role": "user", "content": None}]}), json.dumps({"messages": [1]}),
    ]) + "\n", encoding="utf-8")
    (shards / "train-00001-of-00002.jsonl").write_text("\n".join([
        json.dumps(ok), json.dumps({"messages": [{"role": "user", "content": "no answer"}]}),
        json.dumps({"messages": []}), json.dumps({"messages": "[broken"}), '{"messages": [{"role": "user"}]}',
        b'{"messages": "\xff"}'.decode("latin-1"),
    ]) + "\n", encoding="utf-8")
    document = root / "wrapped.json"
    document.write_text(json.dumps({"data": [ok, {"messages": [{"role": "user", "content": 3}]}]}), encoding="utf-8")
    return shards, document


def test_inspect_notes_and_problems_are_japanese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards, document = _problem_data(tmp_path)
    for data, count in ((shards, 9), (document, 1)):
        code, out, err = _run(capsys, "--lang", "ja", "inspect", str(data))
        assert code == 2 and f"問題（{count} 件）:" in out
        assert err.startswith(f"lora-tui: エラー: {data} に {count} 件")
        # the records' own words (quoted roles, field names) are data, not messages
        assert english_words(out, left_for_later=(r"'[^']*'",)) == [], out
        assert i18n.missing == set()
    _, out, _ = _run(capsys, "--lang", "ja", "inspect", str(shards))
    assert "jsonl ファイル 2 個を名前順に読みます（train-00000-of-00002.jsonl … train-00001-of-00002.jsonl）" in out
    assert "messages[0] の役割 'bot' は不明です。使える役割: system, user, assistant, tool" in out
    assert ":3: 不正な JSON: 値がありません（1 列目）" in out
    assert "空の会話: `messages` にターンがありません" in out
    _, out, _ = _run(capsys, "--lang", "ja", "inspect", str(document))
    assert "トップレベルのフィールド 'data' からレコードを読みます" in out
    assert "messages[0] の `content` は文字列にしてください。数値になっています" in out


def test_inspect_json_stays_english(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards, document = _problem_data(tmp_path)
    for data in (shards, document):
        _, english, _ = _run(capsys, "inspect", str(data), "--json")
        _, japanese, _ = _run(capsys, "--lang", "ja", "inspect", str(data), "--json")
        assert japanese == english and json.loads(english)["errors"][0].isascii()
