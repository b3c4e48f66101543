"""`lora-tui adapters` merge, try and compare in Japanese: the merge plan (its parts, the device's reason), the
progress, the results and the refusals from the catalogue with no English but names, while `--json` stays
English; the notes a person reads about checkpoints (a damaged one set aside on resume) and disk space (a run or
a merge that will not fit) in Japanese too, the run files English."""

from __future__ import annotations

import json
import re
import shutil
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lora_tui import i18n
from lora_tui.core import checkpoints, runs
from lora_tui.core.units import MIB
from lora_tui.errors import UserError
from lora_tui.inference.merge_plan import plan_merge
from tests.helpers.cli import fresh_language  # noqa: F401 - autouse: only --lang chooses
from tests.helpers.cli import run_cli as _run
from tests.helpers.fake_trainer import write_safetensors
from tests.helpers.japanese import english_words

FORMULA = r"W <- W \+ scaling x B @ A"
"""The merge's formula (the update's symbols), a name."""
LOAD_CALL = r"AutoModelForCausalLM\.from_pretrained\(\S+\)"
"""The call that loads the merged model: code."""
FILES = r"\S+\.(safetensors|jinja)\b"
"""File names the merge writes."""
GIB = 1024**3
USAGE = namedtuple("USAGE", "total used free")


def _untranslated(text: str, *paths: Path, later: tuple[str, ...] = ()) -> list[str]:
    """English words of `text` that are not names: the names of the directories `paths` are names too."""
    names = {w.lower() for p in paths for w in re.findall(r"[A-Za-z]+", p.name)}
    return [w for w in english_words(text, left_for_later=later) if w.lower() not in names]


# ---- merge ----------------------------------------------------------------------------------------------


def test_a_merge_tells_its_plan_progress_and_result_in_japanese(adapter_pair: tuple[Path, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    adapter, out = adapter_pair[0], tmp_path / "merged"
    code, stdout, err = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "--output", str(out),
                             "--dtype", "fp32", "--device", "cpu")
    assert code == 0, err
    plan = err.splitlines()[0]
    assert plan.startswith("計画: ベースの重み（fp32）: ") and "、アダプター（fp32）: " in plan
    assert "、作業用メモリ: " in plan and "、合計: cpu で " in plan and "（空き " in plan
    assert plan.endswith("、CPU でマージします（指定どおり）…")
    assert "マージ中: W <- W + scaling x B @ A: 0/" in err and f"{out} にマージしました（" in err
    assert stdout.startswith(f"アダプター {adapter} をベース ") and "にマージしました（fp32、cpu、" in stdout
    base = Path(json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"])
    later = (FORMULA, LOAD_CALL, FILES)
    assert _untranslated(stdout + err, adapter, base, out, later=later) == [], stdout + err
    assert i18n.missing == set()
    code, as_json, _ = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "--output", str(out),
                            "--dtype", "fp32", "--device", "cpu", "--overwrite", "--json")
    assert code == 0
    assert json.loads(as_json)["plan"]["reason"] == "merging on the CPU (requested)"  # JSON stays English


def test_a_partial_adapters_note_and_the_merge_refusals_are_japanese(adapter_pair: tuple[Path, Path],
                                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    adapter = tmp_path / "stopped"
    shutil.copytree(adapter_pair[0], adapter)
    runs.write_status(adapter, runs.RunStatus(state="stopped", step=2, max_steps=3))
    out = tmp_path / "merged"
    code, _, err = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "-o", str(out), "--device", "cpu")
    assert code == 0, err
    assert err.startswith(f"lora-tui: 注意: 実行 {adapter} の状態: 停止。"
                          "このアダプターは 3 ステップ中ステップ 3 のもの")
    code, as_json, _ = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "-o", str(out), "--device",
                            "cpu", "--overwrite", "--json")
    assert json.loads(as_json)["note"] == f"the run {adapter} is stopped: this adapter is from step 3 of 3"
    code, _, err = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "-o", str(out))
    assert code == 2 and err.endswith(f"--output {out}: ディレクトリが空ではありません。新しいディレクトリを選ぶか、"
                                      "--overwrite を指定してください\n")
    code, _, err = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "-o", str(tmp_path), "--overwrite")
    assert code == 2
    assert err.endswith(f"--output {tmp_path}: --overwrite を拒否しました: "
                        f"マージするアダプターを含んでいます（{adapter}）\n")
    code, _, err = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "-o", str(tmp_path / "m2"),
                        "--device", "cuda")
    assert code == 2
    assert "--device cuda: 使える CUDA の GPU がありません。--device cpu（または auto）を使ってください" in err
    monkeypatch.setattr(shutil, "disk_usage", lambda path: USAGE(10**12, 0, 1000))
    code, _, err = _run(capsys, "--lang", "ja", "adapters", "merge", str(adapter), "-o", str(tmp_path / "m3"))
    assert code == 2 and f"--output {tmp_path / 'm3'}: マージしたモデルには約 " in err
    assert "そのディスクの空きは 1000 B です。空き容量を増やすか、別のディスクを選んでください" in err
    assert _untranslated(err, adapter) == [] and i18n.missing == set()
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()


@pytest.mark.parametrize(("device", "gpu_free", "ram", "reason"), [
    ("auto", 24 * GIB, 64 * GIB, "GPU でマージします（収まるため: "),
    ("cuda", 24 * GIB, 64 * GIB, "GPU でマージします（指定どおり: "),
    ("auto", 2 * GIB, 64 * GIB, "CPU でマージします: GPU の空きは 2.00 GiB ですが、マージには "),
    ("auto", None, 64 * GIB, "CPU でマージします（CUDA の GPU がありません）"),
    ("cpu", None, None, "CPU でマージします（指定どおり）"),
])
def test_every_merge_plan_reads_in_japanese_and_keeps_its_english(device: str, gpu_free: int | None,
                                                                  ram: int | None, reason: str) -> None:
    plan = plan_merge(base_params=10**9, largest_weight_params=262_144 * 1152, adapter_params=13_000_000,
                      dtype="bf16", device=device, gpu_free_bytes=gpu_free, ram_available_bytes=ram)
    english = plan.lines()
    with i18n.using("ja"):
        lines = plan.lines()
    assert lines[0].startswith("ベースの重み（bf16）: ") and lines[-1].startswith(reason)
    assert lines[3].startswith(f"合計: {plan.device} で ") and (ram is None) == ("空き" not in lines[3])
    assert english_words("\n".join(lines)) == [] and i18n.missing == set()
    assert english[-1] == plan.reason and plan.reason.startswith("merging on the")  # English as data


def test_the_merge_plans_refusals_are_japanese() -> None:
    kwargs: dict[str, Any] = {"base_params": 8 * 10**9, "largest_weight_params": 10**8, "adapter_params": 10**7}
    with i18n.using("ja"):
        for extra, expected in (({"device": "cuda", "gpu_free_bytes": 8 * GIB}, "--device cuda: マージには 16."),
                                ({"device": "cpu", "ram_available_bytes": 4 * GIB}, "マージには RAM が "),
                                ({"dtype": "int8"}, "--dtype int8: bf16, fp16, fp32 のいずれか"),
                                ({"device": "tpu"}, "--device tpu: auto, cpu, cuda のいずれか")):
            with pytest.raises(UserError) as caught:
                plan_merge(**kwargs, **extra)
            assert str(caught.value).startswith(expected)
            assert english_words(str(caught.value), left_for_later=(r"\btpu\b",)) == []  # the value given
    assert i18n.missing == set()


# ---- try and compare ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["try", "compare"])
def test_try_and_compare_tell_their_progress_and_labels_in_japanese(command: str, adapter_pair: tuple[Path, Path],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(adapter_pair[0])] if command == "try" else [str(p) for p in adapter_pair]
    code, out, err = _run(capsys, "--lang", "ja", "adapters", command, *paths, "--prompt", "hello",
                          "--max-new-tokens", "3", "--device", "cpu")
    assert code == 0, err
    labels = [line for line in out.splitlines() if line.startswith(("===", "---"))]  # the answers are the model's
    assert labels == ["=== hello", "--- ベース", *(f"--- {Path(p).name}" for p in paths)]
    assert "ベースモデル " in err and "をベースに読み込んでいます" in err
    assert "ベースモデルの回答を生成しています" in err
    base = Path(json.loads((adapter_pair[0] / "adapter_config.json").read_text())["base_model_name_or_path"])
    assert _untranslated(err + "\n".join(labels), *adapter_pair, base, later=(r"hello",)) == [], err
    assert i18n.missing == set()


# ---- checkpoints and disk space ----------------------------------------------------------------------------


def _resumable(run: Path) -> Path:
    """A stopped demo run of 30 steps with checkpoints at 10 and 20, the newer one damaged."""
    from lora_tui.core.plan import TrainingPlan
    from tests.helpers.run_dirs import recorded_run

    recorded_run(run, [2.0, 1.5], state="stopped", max_steps=30)
    (run / runs.RUN_FILE).write_text(TrainingPlan(output=str(run), model="demo", max_steps=30).to_toml(),
                                     encoding="utf-8")
    for step in (10, 20):
        ck = run / runs.CHECKPOINTS_DIR / f"checkpoint-{step}"
        ck.mkdir(parents=True)
        (ck / checkpoints.TRAINER_STATE).write_text(json.dumps({"global_step": step, "max_steps": 30}))
        write_safetensors(ck / "adapter_model.safetensors", {"a": [4, 8], "b": [8, 4]})
        runs.mark_checkpoint_complete(ck, step)
    (run / runs.CHECKPOINTS_DIR / "checkpoint-20" / checkpoints.TRAINER_STATE).write_text("{}")
    return run


def _launches(monkeypatch: pytest.MonkeyPatch, run: Path) -> list[Any]:
    from lora_tui.core import launcher

    launched: list[Any] = []
    monkeypatch.setattr(launcher, "launch", lambda resolved: launched.append(resolved) or (
        run, SimpleNamespace(pid=4242)))
    return launched


def test_a_damaged_checkpoint_on_resume_is_told_in_japanese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = _resumable(tmp_path / "run")
    launched = _launches(monkeypatch, run)
    code, out, err = _run(capsys, "--lang", "ja", "train", "--resume", "--output", str(run), "--detach")
    assert code == 0, err
    assert err.startswith("lora-tui: 警告: checkpoint-20 は壊れています"
                          "（trainer_state.json: global_step がありません）")
    assert "checkpoint-10 から再開" in out
    assert english_words(err) == [] and i18n.missing == set()
    assert launched[0].warnings[0].startswith("checkpoint-20 is damaged (trainer_state.json: no global_step)")


def test_checkpoint_problems_and_notes_are_phrases(tmp_path: Path) -> None:
    run = _resumable(tmp_path / "run")
    (run / runs.CHECKPOINTS_DIR / "checkpoint-10" / "adapter_model.safetensors").write_bytes(b"abc")
    choice = checkpoints.choose_checkpoint(run, set_aside=True)
    assert choice.checkpoint is None and [str(n) for n in choice.notes] == [
        "checkpoint-20 is damaged (trainer_state.json: no global_step); set aside as corrupt-checkpoint-20",
        "checkpoint-10 is damaged (adapter_model.safetensors: truncated or not a safetensors file (3 bytes)); set "
        "aside as corrupt-checkpoint-10"]  # the training process's log reads these
    with i18n.using("ja"):
        shown = [i18n._(n) for n in choice.notes]
    assert shown == ["checkpoint-20 は壊れています（trainer_state.json: global_step がありません）。"
                     "corrupt-checkpoint-20 として退避しました",
                     "checkpoint-10 は壊れています（adapter_model.safetensors: 途中で切れているか "
                     "safetensors のファイルではありません（3 バイト））。corrupt-checkpoint-10 として退避しました"]
    bad = tmp_path / "bad.safetensors"
    raw = json.dumps({"a": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 100]}}).encode()
    bad.write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * 100)
    with i18n.using("ja"):
        assert i18n._(checkpoints.safetensors_problem(bad)) == \
            "bad.safetensors: テンソル a: F32 の形状 [4, 8] に対して 100 バイトです"
    assert i18n.missing == set()


def test_too_little_disk_for_a_run_is_told_in_japanese_and_launch_json_keeps_english(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    free = {"bytes": 10 * MIB}
    monkeypatch.setattr(shutil, "disk_usage", lambda path: USAGE(10**12, 0, free["bytes"]))
    out = tmp_path / "run"
    launched = _launches(monkeypatch, out)
    code, _, err = _run(capsys, "--lang", "ja", "train", "--model", "demo", "--max-steps", "3", "--output", str(out))
    assert code == 2 and f"--output {out}: そのディスクの空きは 10.0 MiB ですが、実行には少なくとも " in err
    assert "チェックポイント 1 つで約 " in err and "オプティマイザーの状態 " in err
    assert english_words(err) == [] and not launched
    free["bytes"] = 30 * MIB  # one checkpoint fits, all it keeps may not
    code, _, err = _run(capsys, "--lang", "ja", "train", "--model", "demo", "--max-steps", "200", "--save-steps", "10",
                        "--output", str(out), "--detach")
    assert code == 0, err
    warning = next(line for line in err.splitlines() if "ディスク" in line)
    assert warning.startswith(f"lora-tui: 警告: --output {out}: そのディスクの空きは 30.0 MiB です。実行は最大 ")
    assert "容量が足りなくなるおそれがあります（--save-total-limit を下げるか" in warning
    assert english_words(warning) == [] and i18n.missing == set()
    assert any("30.0 MiB free on its disk; the run may keep up to" in w for w in launched[0].warnings)
