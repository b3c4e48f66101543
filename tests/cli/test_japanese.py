"""The human output of recommend, plan, hw and inspect with `--lang ja`: every message from the catalogue, no
English but names, columns aligned by cell width; JSON output is the same in every language."""

from __future__ import annotations

import json

import pytest

from lora_tui import i18n
from lora_tui.cells import width
from lora_tui.cli import main
from lora_tui.core.hardware import detect as hardware
from lora_tui.core.paths import SAMPLE_DATA_PATH
from tests.helpers.cli import fresh_language  # noqa: F401 - autouse: only --lang chooses
from tests.helpers.cli import run_cli as _run
from tests.helpers.fake_nvml import GIB, FakeGpu, FakeNvml
from tests.helpers.japanese import english_words


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml()
    fake.gpus = [FakeGpu("NVIDIA GeForce RTX 4060", 8 * GIB, used=GIB // 2, cc=(8, 9))]
    monkeypatch.setattr(hardware, "_load_nvml", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


def test_recommend_gives_its_reasons_in_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--lang", "ja", "recommend", "--task", "chat", "--examples", "5000", "--vram-gb", "12")
    assert code == 0
    assert out.startswith("入力: タスク chat、例の数 5000、VRAM 12 GB (--vram-gb)")
    assert "ガイドの「タスク別推奨設定」の表、行「対話・チャットボット」: lora_r = 16" in out
    assert "「データサイズ別推奨設定」の表、行「中 (1K-10K)」も同じ値です" in out
    assert "「リソース制約別推奨設定」の表、行「標準環境 (8-16GB VRAM)」" in out
    assert "[ガイドの実践例]" in out and "実践的な設定例、例1: 日本語対話特化モデル" in out
    assert english_words(out) == []
    assert i18n.missing == set()
    assert all(width(line) <= 120 for line in out.splitlines())


@pytest.mark.parametrize("argv", [
    ["recommend", "--task", "code", "--examples", "200", "--cpu"],
    ["recommend", "--examples", "50000", "--vram-gb", "6", "--advice", "practice"],
    ["plan", "--model", "demo", "--vram-gb", "8"],
    ["plan", "--model", "qwen2.5-7b", "--vram-gb", "6"],
    ["plan", "--model", "qwen2.5-7b", "--vram-gb", "4", "--load-in-4bit"],
    ["plan", "--list-models"],
    ["hw"],
    ["inspect", str(SAMPLE_DATA_PATH)],
])
def test_each_command_in_japanese_has_no_untranslated_message(argv: list[str], fake_nvml: FakeNvml,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, *argv, "--lang", "ja")
    assert code == 0, err
    assert i18n.missing == set()
    later: tuple[str, ...] = ()
    if argv[0] == "plan" and "--model" in argv:
        later = (r"\(tiny Llama, built locally\)",)  # the model's display name is a name
    if argv[0] == "hw":
        later = (r"CPU: [^、]*",)  # the machine's CPU name
    if "--list-models" in argv:
        out = out.splitlines()[0]  # the rows are model names and hub ids
    assert english_words(out, left_for_later=later) == [], out


def test_plan_table_columns_align_by_cell_width(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "plan", "--model", "demo", "--lang", "ja")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("モジュール"))
    rule, rows = lines[header + 1], lines[header + 2: header + 2 + 7]
    columns = [width(part) for part in rule.split("  ")]
    assert columns[0] >= width("モジュール")
    ends = [sum(columns[:i + 1]) + 2 * i for i in range(len(columns))]
    for line in [lines[header], *rows]:  # right-aligned columns end where the rule's dashes end
        if line.startswith("-"):
            break
        for end in ends[2:]:
            assert line[:_chars(line, end)].endswith(("%", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "層",
                                                     "重み", "LoRA", "割合")), (line, end)


def _chars(line: str, cells: int) -> int:
    """How many characters of `line` fill `cells` cells."""
    used = 0
    for i, ch in enumerate(line):
        if used >= cells:
            return i
        used += width(ch)
    return len(line)


def test_hw_columns_align_by_cell_width(fake_nvml: FakeNvml, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--lang", "ja", "hw")
    assert code == 0
    header, row = [line for line in out.splitlines() if line.startswith(("GPU ", "0 "))][:2]
    assert header.startswith("GPU  名前")
    for word in ("空き", "CC", "MIG"):
        at = header.index(word)
        value_start = _chars(row, width(header[:at]))
        assert row[value_start - 1] == " " and row[value_start] != " ", (header, row, word)


def test_json_output_is_english_whatever_the_language(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["recommend", "--task", "chat", "--examples", "5000", "--vram-gb", "12", "--json"]
    _, english, _ = _run(capsys, *argv)
    _, japanese, _ = _run(capsys, "--lang", "ja", *argv)
    assert japanese == english
    assert json.loads(japanese)["reasons"]["lora_r"].startswith("the guide's task table")


def test_the_variable_and_the_locale_choose_japanese(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    _, out, _ = _run(capsys, "recommend", "--examples", "500", "--cpu")
    assert "ガイドの「データサイズ別推奨設定」の表、行「小 (< 1K例)」" in out
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    _, out, _ = _run(capsys, "recommend", "--examples", "500", "--cpu")
    assert "the guide's data-size table, row '< 1K examples'" in out
    _, out, _ = _run(capsys, "recommend", "--examples", "500", "--cpu", "--lang", "ja")
    assert "小 (< 1K例)" in out


def test_user_errors_in_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--lang", "ja", "recommend", "--examples", "-3")
    assert code == 2
    assert err == "lora-tui: エラー: --examples は 0 以上にしてください（指定値 -3）\n"
    code, _, err = _run(capsys, "--lang", "ja", "plan")
    assert code == 2 and err.startswith("lora-tui: エラー: plan: --model が必要です")
    code, _, err = _run(capsys, "--lang", "fr", "hw")
    assert code == 2 and err == "lora-tui: error: --lang 'fr': unknown; choose one of en, ja\n"


def test_help_is_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["recommend", "--help", "--lang", "ja"])
    out = capsys.readouterr().out
    assert "ガイドのタスクのプリセット" in out and "--lang {en,ja}" in out


# ---- part 2: runs, adapters and sweep ------------------------------------------------------------------------


def _two_runs(root) -> tuple:
    from lora_tui.core import runs
    from lora_tui.core.plan import TrainingPlan
    from tests.helpers.run_dirs import recorded_run

    done = recorded_run(root / "run_done", [2.0, 1.5, 1.6], evals={2: 1.55})
    stopped = recorded_run(root / "run_stopped", [2.2, 2.0], state="stopped")
    (stopped / runs.RUN_FILE).write_text(TrainingPlan(output=str(stopped), lora_r=8, lora_alpha=16,
                                                      learning_rate=2e-4).to_toml(), encoding="utf-8")
    return done, stopped


def _starts(line: str, words: list[str]) -> list[int]:
    """The cell where each word of `words` starts in `line`."""
    return [width(line[:line.index(w)]) for w in words]


def test_runs_list_show_and_compare_in_japanese(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    done, stopped = _two_runs(tmp_path)
    code, out, err = _run(capsys, "--lang", "ja", "runs", "list", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{tmp_path} 以下の実行:"
    header, rows = lines[1], lines[2:]
    assert header.split()[:3] == ["状態", "ステップ", "損失"]
    assert {r.split()[0] for r in rows} == {"完了", "停止"}
    # right-aligned numbers end where their heading ends, whatever the width of the Japanese state words
    for row in rows:
        assert width(row[:row.index(" ", _chars(row, width("状態") + 1))]) >= width("状態")
        assert _starts(row, [row.split()[-1]])[0] == _starts(header, ["実行"])[0]
    assert english_words(out) == [] and i18n.missing == set()
    code, out, err = _run(capsys, "--lang", "ja", "runs", "compare", str(done), str(stopped))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["実行", "状態"] and lines[1].split()[:2] == ["run_done", "完了"]
    assert lines[-1] == "異なる設定: lora_r, lora_alpha, learning_rate"
    for column in ("lora_r", "最終損失", "最良の損失"):  # each value ends under its right-aligned heading
        end = width(lines[0][:lines[0].index(column)]) + width(column)
        for row in lines[1:3]:
            cut = _chars(row, end)
            assert row[cut - 1] != " " and (cut == len(row) or row[cut] == " "), (row, column)
    assert english_words(out) == [] and i18n.missing == set()
    code, out, err = _run(capsys, "--lang", "ja", "runs", "show", str(done))
    assert code == 0, err
    shown = out.split("\n\n# lora-tui run file")[0]  # the run file that follows is the file itself
    assert "状態" in shown and "完了" in shown and "最良の評価損失 1.5500（ステップ 2）" in shown
    assert english_words(shown) == [] and i18n.missing == set()
    _, english, _ = _run(capsys, "runs", "compare", str(done), str(stopped), "--json")
    _, japanese, _ = _run(capsys, "--lang", "ja", "runs", "compare", str(done), str(stopped), "--json")
    assert japanese == english


def test_runs_errors_in_japanese(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    done, _stopped = _two_runs(tmp_path)
    code, _, err = _run(capsys, "--lang", "ja", "runs", "compare", str(done))
    assert code == 2 and err == "lora-tui: エラー: compare には異なる実行のディレクトリが 2 つ以上必要です\n"
    code, _, err = _run(capsys, "--lang", "ja", "runs", "stop", str(done))
    assert code == 2 and err == f"lora-tui: エラー: {done}: 実行中ではありません（状態: 完了）\n"
    code, _, err = _run(capsys, "--lang", "ja", "runs", "show", str(tmp_path / "nope"))
    assert code == 2 and err == f"lora-tui: エラー: {tmp_path / 'nope'}: 実行のディレクトリがありません\n"


def test_adapters_list_and_show_in_japanese(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.adapter_fakes import fake_adapter

    fake_adapter(tmp_path / "adapter_1", losses=[2.0, 1.5])
    fake_adapter(tmp_path / "adapter_2", losses=[2.1, 1.7])
    code, out, err = _run(capsys, "--lang", "ja", "adapters", "list", str(tmp_path))
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["名前", "状態", "ベース"]
    for word in ("状態", "ベース", "R", "ALPHA", "サイズ", "損失"):  # each column starts under its heading
        at = width(header[:header.index(word)])
        for row in rows:
            cut = _chars(row, at)
            assert row[cut - 1] == " " and row[cut] != " ", (row, word)
    assert {r.split()[1] for r in rows} == {"完了"}
    assert english_words(out) == [] and i18n.missing == set()
    code, out, err = _run(capsys, "--lang", "ja", "adapters", "show", str(tmp_path / "adapter_1"))
    assert code == 0, err
    assert out.startswith(f"アダプター {tmp_path / 'adapter_1'}\n  状態: 完了")
    assert "  ファイル:" in out and "  ベースモデル: demo" in out
    # the file names, the adapter's problems (core/adapters.py) and the versions are names or later
    later = (r"(?m)^    \S+\s+[\d.]+ \w+$", r"(?m)^  ! .*$", r"バージョン: .*", r"データ: .*")
    assert english_words(out, left_for_later=later) == [], out
    assert i18n.missing == set()


def test_sweep_dry_run_in_japanese(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "grid.toml"
    spec.write_text('[plan]\nmodel = "demo"\nmax_steps = 2\n[grid]\nlora_r = [4, 8]\n', encoding="utf-8")
    code, out, err = _run(capsys, "--lang", "ja", "sweep", str(spec), "--dry-run", "--vram-gb", "8",
                          "--output", str(tmp_path / "sw"))
    assert code == 0, err
    assert out.startswith(f"スイープ {spec}: {tmp_path / 'sw'} に 2 点")
    assert "（収まる）" in out or "(収まる)" in out
    assert english_words(out) == [] and i18n.missing == set()


def test_runs_adapters_and_sweep_help_are_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, phrase in ((["runs", "compare"], "実行のディレクトリ（2 つ以上）"),
                         (["adapters", "merge"], "マージしたモデル"), (["sweep"], "設定のグリッドの各点")):
        with pytest.raises(SystemExit):
            main([*argv, "--help", "--lang", "ja"])
        assert phrase in capsys.readouterr().out


# ---- part 3: the memory estimate, precision and fit steps ------------------------------------------------------


def test_plan_memory_table_is_japanese_and_aligned_by_cell_width(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--lang", "ja", "plan", "--model", "qwen2.5-7b", "--vram-gb", "6")
    assert code == 0, err
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("学習時のピークメモリ"))
    assert lines[start + 1] == "  精度: auto: bf16（bf16 対応の GPU を想定）"
    parts = lines[start + 3: start + 9]
    assert [p.split()[0] for p in parts] == ["固定したベースの重み", "LoRA",
                                             "アクティベーション（勾配チェックポイント）", "損失（TRL", "CUDA", "合計"]
    # every size ends in the same cell, whatever the width of the Japanese part names before it
    ends = {width(p[:p.index(unit) + len(unit)]) for p in parts for unit in (" GiB", " MB") if unit in p[:60]}
    assert len(ends) == 1, parts
    assert "対策 1: 16 ビットではすべての対策を施しても" in out and "（最大の内訳: 固定したベースの重み、" in out
    _, english, _ = _run(capsys, "plan", "--model", "qwen2.5-7b", "--vram-gb", "6")
    assert "  Frozen base weights " in english and "fix 1: 16-bit needs" in english  # English as it was
    _, as_json, _ = _run(capsys, "--lang", "ja", "plan", "--model", "qwen2.5-7b", "--vram-gb", "6", "--json")
    memory = json.loads(as_json)["memory"]
    assert memory["parts"][0]["label"] == "Frozen base weights"
    assert memory["settings"]["precision_reason"] == "auto: bf16 (assumed: a GPU with bf16 support)"


def test_argparses_own_messages_in_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's usage errors and help headings go through the catalogue; English stays English."""
    code, _, err = _run(capsys, "--lang", "ja", "recommend", "--task", "foo")
    assert code == 2
    assert err == ("lora-tui: エラー: lora-tui recommend: 引数 --task: 選べない値です: 'foo'（'chat', 'domain', "
                   "'code', 'style' から選んでください）\n")
    code, _, err = _run(capsys, "--lang", "ja", "recommend", "--vram-gb", "-1")
    assert code == 2 and "引数 --vram-gb: GB 単位の正の有限な数値にしてください（指定値 -1）" in err
    with pytest.raises(SystemExit):
        main(["recommend", "--help", "--lang", "ja"])
    out = capsys.readouterr().out
    assert out.startswith("使い方: lora-tui recommend") and "\nオプション:\n" in out
    assert "このヘルプを表示して終了します" in out
    code, _, err = _run(capsys, "recommend", "--task", "foo")
    assert err.startswith("lora-tui: error: lora-tui recommend: argument --task: invalid choice: 'foo'")
