"""Nothing lost, with the real training process on the demo model: a run killed before its final adapter is
finished from its last checkpoint, damaged checkpoints are set aside, a full disk fails the run cleanly, and
the metrics of the steps a resume discards are superseded.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lora_tui.cli import main
from lora_tui.core import checkpoints, launcher, output_dir, run_files, run_lock, runs
from tests.helpers import FAKE_TRAINER

pytestmark = pytest.mark.slow
SMALL = ["--model", "demo", "--batch-size", "1", "--gradient-accumulation-steps", "1", "--max-seq-length", "128",
         "--eval-split", "0"]
FAKE = FAKE_TRAINER


def _status(run_dir: Path) -> runs.RunStatus:
    status = runs.read_status(run_dir)
    assert status is not None
    return status


def _loss_steps(run_dir: Path) -> list[int]:
    return [m.step for m in run_files.read_metrics(run_dir)[0] if m.loss is not None]


@pytest.fixture(scope="module")
def trained(demo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run with complete checkpoints at steps 2 and 4 (copied by each test)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *SMALL, "--max-steps", "4", "--save-steps", "2", "--output", str(out)]) == 0
    assert [p.name for p in runs.list_checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]
    return out


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (out / run_lock.LOCK_FILE).unlink(missing_ok=True)
    return out


KILL_BEFORE_FINAL_SAVE = r"""
import os, sys
from lora_tui.train import resume
resume.save_final_adapter = lambda *a, **k: os._exit(137)  # killed after the last checkpoint, before the adapter
from lora_tui.train.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_before_its_final_adapter_is_finished_from_its_last_checkpoint(
        demo_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(launcher, "worker_command", lambda run_dir, **kw: [sys.executable, "-c", KILL_BEFORE_FINAL_SAVE,
                                                                         str(run_dir)])
        assert main(["train", *SMALL, "--max-steps", "3", "--save-steps", "100", "--output", str(out),
                     "--detach"]) == 0
        deadline = time.time() + 240
        while run_lock.probe(out) is not False:  # until the process is gone
            assert time.time() < deadline, "timed out"
            time.sleep(0.1)
    assert not runs.is_adapter_dir(out) and runs.latest_complete_checkpoint(out) == out / "checkpoints/checkpoint-3"
    assert _status(out).effective_state() == "lost"
    capsys.readouterr()
    assert main(["train", "--output", str(out), "--resume"]) == 0
    text = capsys.readouterr().out
    assert "checkpoint-3 is the run's last step: wrote the final adapter from it" in text
    status = _status(out)
    assert (status.state, status.step, status.adapter_step, status.adapter_dir) == ("finished", 3, 3, ".")
    ckpt = out / "checkpoints" / "checkpoint-3"
    for name in runs.ADAPTER_FILES:
        assert (out / name).read_bytes() == (ckpt / name).read_bytes()
    info = run_files.read_training_info(out)
    assert info is not None and info.state == "finished" and info.steps == 3 and info.extra["finished_from_checkpoint"]
    assert info.final_loss is not None and _loss_steps(out) == [1, 2, 3]
    assert main(["train", "--output", str(out), "--resume"]) == 2  # now it is finished: nothing more to do
    assert "already reached step 3" in capsys.readouterr().err


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a checkpoint file\n" * 4)


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda ck: (ck / "adapter_model.safetensors").write_bytes((ck / "adapter_model.safetensors").read_bytes()[:-9]),
     "adapter_model.safetensors: truncated"),
    (lambda ck: _garbage(ck / "optimizer.pt"), "optimizer.pt: cannot be loaded ("),
    (lambda ck: _garbage(ck / "scheduler.pt"), "scheduler.pt: cannot be loaded ("),
    (lambda ck: _garbage(ck / "trainer_state.json"), "trainer_state.json: missing or not valid JSON"),
    (lambda ck: (ck / "trainer_state.json").unlink(), "trainer_state.json: missing or not valid JSON"),
], ids=["truncated-adapter", "garbage-optimizer", "garbage-scheduler", "garbage-trainer-state", "no-trainer-state"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_used(
        damage: Any, problem: str, run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    damage(run_copy / "checkpoints" / "checkpoint-4")
    assert main(["train", "--output", str(run_copy), "--resume", "--max-steps", "6"]) == 0
    text = capsys.readouterr()
    log = (run_copy / runs.LOG_FILE).read_text()
    line = f"lora-tui: checkpoint-4 is damaged ({problem}"
    assert line in log and line in text.out and "set aside as corrupt-checkpoint-4" in log
    assert "lora-tui: resumed from checkpoint-2" in log and "resumed from checkpoint-2" in text.out
    assert "weights_only=False" not in log + text.out + text.err and "Traceback" not in log
    assert (run_copy / "checkpoints" / "corrupt-checkpoint-4").is_dir()  # set aside, not deleted
    status = _status(run_copy)
    assert status.state == "finished" and status.step == 6
    assert _loss_steps(run_copy) == [1, 2, 3, 4, 5, 6]  # steps 3-4 of the first attempt superseded


def test_no_usable_checkpoint_left_is_a_clear_failure_without_a_resume_hint(
        run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for step in (2, 4):
        _garbage(run_copy / "checkpoints" / f"checkpoint-{step}" / "optimizer.pt")
    assert main(["train", "--output", str(run_copy), "--resume", "--max-steps", "6"]) == 1
    out = capsys.readouterr().out
    status = _status(run_copy)
    assert status.state == "failed" and (status.error or "").startswith("no usable checkpoint to resume from: ")
    assert "checkpoint-4: optimizer.pt: cannot be loaded" in (status.error or "")
    assert "Traceback" not in out and "--resume" not in out.split("lora-tui: run failed")[1]
    assert runs.is_adapter_dir(run_copy)  # the finished run's adapter is untouched
    for step in (2, 4):
        assert (run_copy / "checkpoints" / f"corrupt-checkpoint-{step}").is_dir()


@pytest.fixture
def disk_fills_at_the_second_save(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """torch.save writes half the optimizer state of the second checkpoint, then fails as a full disk does."""
    import torch

    real_save = torch.save
    saves: list[str] = []

    def save(obj: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith("optimizer.pt"):
            saves.append(str(path))
            if len(saves) == 2:
                Path(path).write_bytes(b"half an optimizer")
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    saved = {sig: __import__("signal").getsignal(sig) for sig in (2, 15)}
    yield
    for sig, handler in saved.items():
        __import__("signal").signal(sig, handler)


def test_a_full_disk_mid_run_fails_cleanly_and_keeps_the_last_complete_checkpoint(
        demo_model: Path, tmp_path: Path, disk_fills_at_the_second_save: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    from lora_tui.train.worker import run_worker

    out = tmp_path / "run"
    subprocess.run([sys.executable, str(FAKE), str(out), "--steps", "2", "--interval", "0"], check=True,
                   stdout=subprocess.DEVNULL)
    (out / runs.RUN_FILE).write_text("[plan]\n")  # an earlier run, replaced by --overwrite
    given = {"model": "demo", "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1,
             "max_steps": 6, "save_steps": 2, "max_seq_length": 128, "eval_split": 0.0, "output": str(out)}
    run_dir = launcher.prepare_run_dir(launcher.resolve_run(given, overwrite=True))
    assert (run_dir / output_dir.TRASH_DIR).is_dir()
    assert run_worker(run_dir) == 1
    printed = capsys.readouterr().out
    status = _status(run_dir)
    assert status.state == "failed" and status.effective_state() == "failed"
    assert status.error == ("no space left on device; removed the partial checkpoint-4; kept checkpoint-2; "
                            "free space, then resume with --resume")
    assert f"lora-tui: {status.error}" in printed and "Traceback" not in printed
    assert [p.name for p in runs.list_checkpoints(run_dir)] == ["checkpoint-2"]
    assert checkpoints.choose_checkpoint(run_dir).checkpoint == run_dir / "checkpoints" / "checkpoint-2"
    assert not (run_dir / output_dir.TRASH_DIR).exists()  # emptied once the new run had started
    info = json.loads((run_dir / runs.INFO_FILE).read_text())
    assert info["state"] == "failed" and info["error"] == status.error
