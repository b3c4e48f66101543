"""Checkpoints verified before a resume (without torch), set aside when damaged; a full disk told apart."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from lora_tui.core import checkpoints, disk, runs
from tests.helpers.fake_trainer import write_safetensors


def _checkpoint(run: Path, step: int, max_steps: int = 30) -> Path:
    ck = run / runs.CHECKPOINTS_DIR / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": max_steps,
                                                       "num_train_epochs": 3}))
    write_safetensors(ck / "adapter_model.safetensors", {"a": [4, 8], "b": [8, 4]})
    (ck / "optimizer.pt").write_bytes(b"\0" * 10)
    runs.mark_checkpoint_complete(ck, step)
    return ck


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def _garbage_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:8] + b"\xff" * (len(data) - 8))


def _save_empty(path: Path) -> None:
    from safetensors.torch import save_file

    save_file({}, str(path), metadata={"format": "pt"})


def _wrong_size(path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 100]}}
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * 100)


@pytest.mark.parametrize(("damage", "problem"), [
    (_truncate, "adapter_model.safetensors: truncated (the header says"),
    (_garbage_header, "adapter_model.safetensors: damaged header"),
    (_wrong_size, "adapter_model.safetensors: tensor a: 100 bytes for shape [4, 8] of F32"),
    (lambda p: p.write_bytes(b"abc"), "adapter_model.safetensors: truncated or not a safetensors file (3 bytes)"),
    (lambda p: _save_empty(p), "adapter_model.safetensors: holds no weights"),  # PEFT matched no tensor to save
    (lambda p: (p.parent / "trainer_state.json").write_text("{garbage"), "trainer_state.json: missing or not valid"),
    (lambda p: (p.parent / "trainer_state.json").unlink(), "trainer_state.json: missing or not valid JSON"),
    (lambda p: (p.parent / "trainer_state.json").write_text("{}"), "trainer_state.json: no global_step"),
])
def test_a_damaged_checkpoint_is_set_aside_and_the_previous_one_used(damage, problem: str,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    _checkpoint(tmp_path, 10)
    newest = _checkpoint(tmp_path, 20)
    damage(newest / "adapter_model.safetensors")
    assert checkpoints.checkpoint_problem(newest).startswith(problem)  # type: ignore[union-attr]
    looked = checkpoints.choose_checkpoint(tmp_path)  # only looking: nothing renamed
    assert looked.checkpoint is not None and looked.checkpoint.name == "checkpoint-10" and newest.exists()
    choice = checkpoints.choose_checkpoint(tmp_path, set_aside=True)
    assert choice.checkpoint == tmp_path / "checkpoints" / "checkpoint-10"
    set_aside = tmp_path / "checkpoints" / "corrupt-checkpoint-20"
    assert choice.notes == [f"checkpoint-20 is damaged ({checkpoints.checkpoint_problem(set_aside)}); "
                            "set aside as corrupt-checkpoint-20"]
    assert not newest.exists() and set_aside.is_dir()  # renamed, kept
    assert [p.name for p in runs.list_checkpoints(tmp_path)] == ["checkpoint-10"]


def test_no_usable_checkpoint_left_and_a_deep_check(tmp_path: Path) -> None:
    only = _checkpoint(tmp_path, 10)
    choice = checkpoints.choose_checkpoint(tmp_path, deep_check=lambda ck: "optimizer.pt: cannot be loaded")
    assert choice.checkpoint is None and choice.damaged == [("checkpoint-10", "optimizer.pt: cannot be loaded")]
    (only / runs.COMPLETE_MARKER).unlink()  # a save cut short is passed over silently, as before
    assert checkpoints.choose_checkpoint(tmp_path) == checkpoints.Choice(None)


def test_planned_steps_and_partial_checkpoints(tmp_path: Path) -> None:
    ck = _checkpoint(tmp_path, 30)
    assert checkpoints.planned_steps(ck, 40, 3.0) == 40
    assert checkpoints.planned_steps(ck, -1, 3.0) == 30  # epochs: the checkpoint's own plan
    assert checkpoints.planned_steps(ck, -1, 5.0) is None  # more epochs asked: cannot tell
    partial = tmp_path / runs.CHECKPOINTS_DIR / "checkpoint-40"
    partial.mkdir()
    (partial / "optimizer.pt").write_bytes(b"half")
    assert checkpoints.remove_partial_checkpoints(tmp_path) == ["checkpoint-40"]
    assert [p.name for p in runs.list_checkpoints(tmp_path)] == ["checkpoint-30"]
    assert [p.name for p in checkpoints.adapter_files(ck)] == ["adapter_model.safetensors"]


def test_a_full_disk_is_told_apart(tmp_path: Path) -> None:
    assert disk.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk.is_disk_full(RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })"))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("save failed") from inner
    except RuntimeError as outer:
        assert disk.is_disk_full(outer)
    assert not disk.is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk.is_disk_full(RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"),
                                 tmp_path)  # this disk has room: some other failure
    assert disk.free_bytes(tmp_path / "not" / "yet") == disk.free_bytes(tmp_path)
