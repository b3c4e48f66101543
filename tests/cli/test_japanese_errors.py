"""User errors in Japanese: a bad setting in a sweep file or run file, a prompts file that cannot be read, the
target-module reason, a missing tracker, the 4-bit and hub errors, the memory estimate's own checks; each one line
from the catalogue, and what goes into JSON stays English."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lora_tui import i18n
from lora_tui.cli import main
from lora_tui.core import hub, paths
from lora_tui.core.memory import estimate_memory
from lora_tui.core.models.modules import load_inventory
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.targets import map_targets
from lora_tui.errors import UserError
from lora_tui.train import quant
from tests.helpers.cli import fresh_language  # noqa: F401 - autouse: only --lang chooses
from tests.helpers.japanese import english_words


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


FILE_WORDS = (r"'worst'", r"\b(on|true|false)\b", r"\[plan\]", r"（Expected .*）")
"""The file's own words: a value given, TOML's literals and table name, tomllib's own (English) parse error."""


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line of a refused command (exit status 2), its prefix removed."""
    assert main(["--lang", "ja", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lora-tui: エラー: ") and err.count("\n") == 1, err
    return err.removeprefix("lora-tui: エラー: ").rstrip("\n")


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_bad_setting_in_a_sweep_file_is_japanese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, "grid.toml", '[plan]\nmodel = "demo"\n[grid]\nlora_r = [0, 8]\n')
    line = _error(capsys, "sweep", path, "--dry-run", "--vram-gb", "8", "--output", str(tmp_path / "out"))
    assert line == "点 01-lora_r0: 設定: `lora_r`（--lora-r）は正の整数にしてください（指定値 0、上限 65,536）"
    assert english_words(line) == [] and i18n.missing == set()


@pytest.mark.parametrize(("text", "message"), [
    ('[plan]\nlora_r = 0\n', "設定: `lora_r`（--lora-r）は正の整数にしてください（指定値 0、上限 65,536）"),
    ('[plan]\nuse_dora = { on = 1 }\n',
     "設定: `use_dora`（--use-dora）は true か false にしてください（指定値 {'on': 1}）"),
    ('[plan]\nlearning_rate = 0\n',
     "設定: `learning_rate`（--learning-rate）は 0 より大きくしてください（指定値 0、上限 1）"),
    ('[plan]\nkeep = "worst"\n', "設定: `keep`（--keep）は best, last のいずれかにしてください（指定値 'worst'）"),
    ('[plan]\nwarmup_ratio = 1\n', "設定: `warmup_ratio`（--warmup-ratio）は [0, 1) の範囲にしてください（指定値 1）"),
    ("plan = 3\n", "{path}: [plan] は表にしてください"),
    ("[plan\n", "{path}: 有効な TOML ではありません"),
])
def test_a_bad_run_file_is_japanese(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                    message: str) -> None:
    path = _file(tmp_path, "run.toml", text)
    line = _error(capsys, "train", "--config", path, "--dry-run")
    assert line.startswith(message.replace("{path}", path)), line
    assert english_words(line, left_for_later=FILE_WORDS) == []
    assert i18n.missing == set()


def test_a_run_file_that_is_not_there_or_not_a_file_is_japanese(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, "train", "--config", "nope.toml", "--dry-run")
    assert line == "nope.toml: 実行設定ファイルが見つかりません"
    line = _error(capsys, "train", "--config", str(tmp_path), "--dry-run")
    assert line == f"{tmp_path}: ディレクトリで、通常のファイルではありません。実行設定ファイルを指定してください"
    assert i18n.missing == set()


def test_a_prompts_file_that_cannot_be_read_is_japanese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    adapter = str(tmp_path / "adapter")  # the prompts are read before the adapter is looked at
    assert _error(capsys, "adapters", "try", adapter, "--prompts", "nope.txt") == \
        "--prompts nope.txt: プロンプトファイルが見つかりません"
    os.mkfifo(tmp_path / "fifo")
    assert _error(capsys, "adapters", "try", adapter, "--prompts", "fifo") == \
        "--prompts fifo: FIFO（名前付きパイプ）で、通常のファイルではありません。プロンプトファイルを指定してください"
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    assert _error(capsys, "adapters", "try", adapter, "--prompts", "latin1.txt") == \
        "--prompts latin1.txt: UTF-8 のテキストではありません。プロンプトファイルを UTF-8 で保存してください"
    assert i18n.missing == set()
    assert main(["adapters", "try", adapter, "--prompts", "nope.txt"]) == 2  # the English is the source text
    assert capsys.readouterr().err == "lora-tui: error: --prompts nope.txt: prompts file not found\n"


def test_the_target_module_reason_is_japanese_and_english_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--lang", "ja", "train", "--model", "phi-3-mini", "--target-modules", "maximum", "--dry-run"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "ガイドの「maximum」パターン（選んだとおり）。このモデルのモジュール（qkv_proj, o_proj, gate_up_proj, " \
           "down_proj）に対応づけました" in shown
    assert main([*argv, "--json"]) == 0
    reasons = json.loads(capsys.readouterr().out)["reasons"]
    assert reasons["target_modules"] == "the guide's 'maximum' pattern, as you chose; mapped to this model's " \
                                        "modules (qkv_proj, o_proj, gate_up_proj, down_proj)"
    assert i18n.missing == set()


def test_the_mapping_note_names_what_the_model_lacks_in_one_sentence() -> None:
    inventory = load_inventory("demo")
    with i18n.using("ja"):
        assert map_targets(["q_proj", "w_in"], inventory) == (
            ["q_proj"], "。このモデルのモジュール（q_proj）に対応づけました。w_in はこのモデルにありません")
        assert map_targets(["w_in"], inventory) == (
            [], "。このモデルのモジュール（なし）に対応づけました。w_in はこのモデルにありません")
    assert map_targets(["q_proj", "w_in"], inventory)[1] == "; mapped to this model's modules (q_proj); it has no w_in"
    assert i18n.missing == set()


def test_a_missing_tracker_and_a_bad_field_value_are_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, "train", "--report-to", "wandb", "--dry-run")
    assert line == "--report-to wandb: wandb パッケージが入っていません。インストールする（`pip install wandb`）か、" \
                   "--report-to none にしてください"
    with i18n.using("ja"), pytest.raises(UserError) as caught:
        TrainingPlan.parse_field("use_dora", "maybe")
    assert str(caught.value) == "`use_dora`（--use-dora）: 'maybe' は「yes」か「no」ではありません"
    assert i18n.missing == set()


def test_the_4bit_hub_memory_and_language_errors_are_japanese(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # importing it raises ImportError (torch not loaded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(paths, "_FREE_NAMES", 2)
    for name in ("r", "r-2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.toml").write_text("", encoding="utf-8")
    with i18n.using("ja"):
        with pytest.raises(quant.FourBitUnavailable, match=r"^--load-in-4bit には bitsandbytes が必要ですが、ここでは "
                                                           r"import できません（.*）。`pip install bitsandbytes`"):
            quant.check_four_bit("cpu")
        with pytest.raises(hub.HubError, match="^HF_HUB_OFFLINE が設定されています$"):
            hub.hub_file("org/model", "config.json", timeout=1)
        with pytest.raises(UserError, match=r"^メモリの見積もり: `attn` は .* のいずれかにしてください"
                                            r"（指定値 'flash'）$"):
            estimate_memory(load_inventory("demo"), lora_r=2, target_modules=["q_proj"], batch_size=1, seq_len=4,
                            attn="flash")
        with pytest.raises(UserError, match=r"空いている実行ディレクトリがありません（r から r-2 まですべて使用中）"):
            paths.free_run_dir(tmp_path, "r")
        with pytest.raises(UserError, match=r"^--lang 'xx': 不明な言語です。en, ja のいずれかを選んでください$"):
            i18n.choose_language("xx")
    with pytest.raises(quant.FourBitUnavailable, match=r"^--load-in-4bit needs bitsandbytes, which is not importable"):
        quant.check_four_bit("cpu")  # what a run's status.json holds: the training process runs in English
    assert i18n.missing == set()


def test_a_fused_expert_note_is_japanese_on_screen_and_english_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--lang", "ja", "plan", "--model", "qwen3-30b-a3b", "--vram-gb", "80", "--target-modules", "all-linear"]
    assert main(argv) == 0
    note = next(line for line in capsys.readouterr().out.splitlines() if "PEFT" in line)
    assert note.startswith("注記: PEFT は融合されたエキスパート/ルーターの重み ")
    assert note.endswith("。lora_dropout=0 が必要で、DoRA は使えません。gate_up_proj のランクは 2r になります。")
    assert main([*argv, "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert notes[0].startswith("PEFT adapts the fused expert/router weights ") and notes[0].endswith("gets rank 2r.")
    assert i18n.missing == set()


def test_half_of_a_fused_pair_is_refused_in_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, "plan", "--model", "qwen3-30b-a3b", "--vram-gb", "80", "--target-modules", "q_proj,gate_proj")
    assert line == ("--target-modules: gate_proj には up_proj も必要です: "
                    "Qwen3-30B-A3B はこれらを gate_up_proj に融合しています。")
    assert i18n.missing == set()
