"""The training process's own check of a checkpoint before resuming from it: the files torch loads, for a
checkpoint of one process or DDP (optimizer.pt) and of FSDP (its gathered adapter and optimizer state)."""

from __future__ import annotations

from pathlib import Path

import torch

from lora_tui.train.resume import torch_problem


def _checkpoint(path: Path, *names: str) -> Path:
    path.mkdir()
    for name in names:
        torch.save({"state": {}, "param_groups": []} if "optim" in name else {"w": torch.zeros(2)}, path / name)
    return path


def test_a_checkpoint_of_one_process_needs_its_optimizer_and_scheduler(tmp_path: Path) -> None:
    assert torch_problem(_checkpoint(tmp_path / "plain", "optimizer.pt", "scheduler.pt")) is None
    assert torch_problem(_checkpoint(tmp_path / "no-optimizer", "scheduler.pt")) == "optimizer.pt: missing"


def test_an_fsdp_checkpoint_is_checked_for_its_own_files(tmp_path: Path) -> None:
    whole = _checkpoint(tmp_path / "fsdp", "pytorch_model_fsdp.bin", "optimizer.bin", "scheduler.pt")
    assert torch_problem(whole) is None  # no optimizer.pt, as accelerate writes it
    cut = _checkpoint(tmp_path / "cut", "optimizer.bin", "scheduler.pt")
    assert torch_problem(cut) == "pytorch_model_fsdp.bin: missing"
    (whole / "optimizer.bin").write_bytes(b"garbage")
    assert torch_problem(whole) == "optimizer.bin: cannot be loaded (UnpicklingError)"
