"""The launch's own checks (core.launch_checks): a sharded run needs GPUs this machine has, whatever VRAM figure the
plan was made for; the launch's refusals and warnings are in the language shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_tui import i18n
from lora_tui.cli import main
from lora_tui.core import launch_checks, launcher, runs
from lora_tui.core.hardware import detect
from lora_tui.core.plan import TrainingPlan
from lora_tui.errors import UserError
from tests.helpers import ui_fakes as fakes
from tests.helpers.japanese import english_words

FSDP = ["--model", "demo", "--num-processes", "2", "--distributed", "fsdp", "--vram-gb", "24"]
NO_GPU = ("--distributed fsdp needs CUDA GPUs (accelerate shards a model only across GPUs) and none was found; on "
          "the CPU use --distributed ddp")


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "detect_hardware", lambda *a, **k: fakes.hardware(None))


def test_fsdp_planned_for_24_gb_is_refused_at_launch_on_a_cpu_machine_in_one_line(
        cpu_only: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", *FSDP, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"lora-tui: error: {NO_GPU}\n"
    assert not out.exists()  # refused before anything is written
    with pytest.raises(UserError, match="none was found"):
        launcher.resolve_run({"model": "demo", "num_processes": 2, "distributed": "fsdp",
                              "output": str(out)}, vram_bytes=24 * 10**9)


def test_a_dry_run_of_it_warns_and_a_machine_with_a_gpu_passes(cpu_only: None, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", *FSDP, "--output", str(tmp_path / "run"), "--dry-run", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["warnings"] == [NO_GPU]
    assert f"lora-tui: warning: {NO_GPU}" in captured.err
    monkeypatch.setattr(detect, "detect_hardware", lambda *a, **k: fakes.hardware(24))
    assert launch_checks.check_gpus(TrainingPlan(num_processes=2, distributed="fsdp"), dry_run=False) == []
    assert launch_checks.check_gpus(TrainingPlan(num_processes=2), dry_run=False) == []


def test_ddp_never_asks_for_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "detect_hardware", lambda *a, **k: pytest.fail("detected for a ddp run"))
    assert launch_checks.check_gpus(TrainingPlan(num_processes=2), dry_run=False) == []


def _refusal(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError) as caught:
        call()
    return str(caught.value)


def test_the_launchs_refusals_are_in_japanese(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    bad = tmp_path / "d.jsonl"
    bad.write_text("{}\nnot json\n")
    report = launcher.inspect_data(str(bad), "demo")
    i18n.missing.clear()
    with i18n.using("ja"):
        shown = {
            "not empty": _refusal(lambda: runs.check_output_dir(used)),
            "overwrite": _refusal(lambda: runs.check_output_dir(used, overwrite=True)),
            "resume": _refusal(lambda: runs.check_output_dir(used, resume=True)),
            "link": _refusal(lambda: runs.check_output_dir(tmp_path / "link")),
            "both": _refusal(lambda: launch_checks.output_mode(TrainingPlan(output=str(used)), resume=True,
                                                               overwrite=True)),
            "data": _refusal(lambda: launch_checks.check_data(report, str(bad))),
            "retries": _refusal(lambda: launcher.ResolvedRun(plan=TrainingPlan(), sources={}, auto_oom_retry=9)),
        }
    assert shown["not empty"] == (f"--output {used}: ディレクトリが空ではありません。新しいディレクトリを選ぶか、"
                                  "--overwrite で置き換えてください")
    assert shown["overwrite"].startswith(f"--output {used}: --overwrite を拒否しました: lora-tui の実行ディレクトリでは"
                                         "ありません")
    assert shown["data"].startswith(f"--data {bad}: 問題が 1 件あります:\n")
    for key, text in shown.items():
        assert english_words(text.replace(str(tmp_path), "")) == [], key
    assert i18n.missing == set()


def test_an_fsdp_checkpoint_is_sized_with_its_gathered_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FSDP's pytorch_model_fsdp.bin holds the adapter again and, for a tied LM head, the embedding (the demo's is
    tied: 4,096 x 256 in 16-bit on a GPU); the disk check counts both."""
    import shutil
    from collections import namedtuple

    from lora_tui.core.lora_math import compute_lora_math
    from lora_tui.core.models.modules import load_inventory
    from lora_tui.core.units import MIB, fmt_bytes

    inventory = load_inventory("demo")
    plan = TrainingPlan(output=str(tmp_path / "run"), num_processes=2, distributed="fsdp", max_steps=1000,
                        save_steps=10)
    adapter = compute_lora_math(inventory, r=plan.lora_r, lora_alpha=plan.lora_alpha,
                                target_modules=list(plan.target_modules)).adapter_bytes_fp32
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 0, 30 * MIB))  # one fits, not all
    [warning] = launch_checks.check_space(plan, inventory)
    gathered = adapter + 4096 * 256 * 2
    assert f"FSDP's gathered state {fmt_bytes(gathered)}" in str(warning)
    assert f"a checkpoint takes about {fmt_bytes(3 * adapter + gathered + 8 * MIB)}" in str(warning)
    [ddp] = launch_checks.check_space(TrainingPlan(output=plan.output, max_steps=1000, save_steps=10), inventory)
    assert "FSDP" not in str(ddp) and f"about {fmt_bytes(3 * adapter + 8 * MIB)}:" in str(ddp)
