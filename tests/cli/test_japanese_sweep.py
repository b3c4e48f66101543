"""`lora-tui sweep` in Japanese: a bad sweep file or grid is one line from the catalogue, a dropped point's reason
is Japanese on screen and English in sweep.json, and the points it launches write English run files."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lora_tui import i18n
from lora_tui.cli import main
from lora_tui.core import sweep
from lora_tui.errors import UserError
from tests.cli.test_sweep import _sweep
from tests.helpers.cli import fresh_language  # noqa: F401 - autouse: only --lang chooses
from tests.helpers.japanese import english_words

KEYS = (r"\[(plan|grid)\]", r"\b(plan|grid)\.\w+", r"'sixteen'", r"\bgrids\b")
"""The sweep file's own table names and keys, and the values given: names."""


@pytest.mark.parametrize(("text", "message"), [
    ('[plan]\nmodel = "demo"\n[grid]\nlora_rank = [8, 16]\n', "grid.lora_rank は設定ではありません（設定の一覧: "),
    ('[grid]\nlora_r = []\n', "grid.lora_r が空のリストです。値を少なくとも 1 つ指定してください"),
    ('[grid]\nlora_r = [8, "sixteen"]\n', "grid.lora_r = 'sixteen' は整数にしてください"),
    ('[plan]\nlearning_rate = "fast"\n[grid]\nlora_r = [8]\n', "plan.learning_rate = 'fast' は数値にしてください"),
    ('[grid]\nlora_r = 8\n', "grid.lora_r は値のリストにしてください。例: lora_r = [8, 16]"),
    ('[grid]\noutput = ["a", "b"]\n', "grid.output: 各点の実行のディレクトリはスイープのディレクトリの中に作られます"),
    ('[plan]\nmodel = "demo"\n', "[grid] が空か、ありません"),
    ('[grids]\nlora_r = [8]\n', "不明なキー grids。スイープファイルに書けるのは [plan] と [grid] の表です"),
    ('plan = 3\n[grid]\nlora_r = [8]\n', "[plan] は表にしてください"),
])
def test_a_bad_sweep_file_is_one_japanese_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                               message: str) -> None:
    path = _sweep(tmp_path, text)
    assert main(["--lang", "ja", "sweep", path, "--dry-run", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lora-tui: エラー: {path}: {message}") and err.count("\n") == 1
    assert english_words(err, left_for_later=KEYS + (r"'fast'",)) == [] and i18n.missing == set()


def test_a_dropped_point_is_japanese_on_screen_and_english_in_sweep_json(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from lora_tui.cli import train as train_cli
    from lora_tui.core import launcher

    path = _sweep(tmp_path, '[plan]\nmodel = "demo"\nmax_steps = 2\nmax_seq_length = 2048\n'
                            "[grid]\nper_device_train_batch_size = [1, 4096]\n")
    out = tmp_path / "out"
    launched: list[Any] = []
    monkeypatch.setattr(launcher, "launch", lambda resolved: launched.append(resolved) or (
        out / "01-per_device_train_batch_size1", SimpleNamespace(pid=4242)))
    monkeypatch.setattr(train_cli, "follow", lambda *a, **k: 0)
    main(["--lang", "ja", "sweep", path, "--vram-gb", "2", "--output", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"スイープ {path}: {out} に 2 点"
    assert lines[2].endswith("除外: 収まりません: 約 26.1 GiB 必要ですが、GPU は 1.9 GiB です")
    assert any(line.startswith("除外した点 02-per_device_train_batch_size4096: 収まりません: 約 ") for line in lines)
    assert english_words("\n".join(lines[:3])) == [] and i18n.missing == set()
    state = json.loads((out / sweep.STATE_FILE).read_text(encoding="utf-8"))
    assert state["points"][1]["reason"] == "cannot fit: needs about 26.1 GiB, the GPU has 1.9 GiB"
    results = json.loads((out / sweep.RESULTS_JSON).read_text(encoding="utf-8"))
    assert results["dropped"][0]["reason"].startswith("cannot fit: needs about")
    # the point planned in Japanese is launched from a plan resolved again in English: its run files are English
    assert len(launched) == 1 and launched[0].reasons["lora_dropout"].startswith("the guide's data-size table")
    assert all(not any("\u3040" <= c <= "\u30ff" for c in reason) for reason in launched[0].reasons.values())


@pytest.mark.parametrize(("grid", "message"), [
    ("lora_r", "グリッド: 'lora_r' は 設定=値,値 の形にしてください（例: lora_r=8,16）"),
    ("lora_r=", "グリッド: lora_r に値がありません。少なくとも 1 つ指定してください（例: lora_r=8,16）"),
    ("", "グリッド: 設定=値,値 を少なくとも 1 つ指定してください（例: lora_r=8,16 learning_rate=5e-5,2e-4）"),
])
def test_the_sweep_dialogs_grid_errors_are_japanese(grid: str, message: str) -> None:
    with i18n.using("ja"), pytest.raises(UserError) as caught:
        sweep.parse_grid(grid)
    assert str(caught.value) == message and i18n.missing == set()
    with pytest.raises(UserError, match=r"^grid: "):
        sweep.parse_grid(grid)  # English as it was
