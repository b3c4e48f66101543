"""lora-tui's FSDP path run for real on two CPU processes: sharded training with FSDP's activation checkpointing,
whole adapters in every checkpoint and at the end, and a stop and resume that ends bitwise where an uninterrupted
run ends.

accelerate offers FSDP on GPUs only, so the launcher refuses `--distributed fsdp` here (tested in
test_distributed); these runs are started below the launch checks (`launcher.prepare_run_dir` and
`start_worker`) with tests/helpers/fsdp_on_cpu on PYTHONPATH, which lets accelerate shard across gloo processes.
The worker, the Trainer and its FSDP2 wrapping, saving and loading are the real ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lora_tui.core import checkpoints, launcher, runs
from lora_tui.core.plan import TrainingPlan

pytestmark = pytest.mark.slow

EMULATION = {"PYTHONPATH": str(Path(__file__).parents[1] / "helpers" / "fsdp_on_cpu"),
             "LORA_TUI_TEST_FSDP_ON_CPU": "1"}


def _plan(out: Path, **settings: object) -> TrainingPlan:
    return TrainingPlan(**{"model": "demo", "output": str(out), "num_processes": 2, "distributed": "fsdp",
                           "max_steps": 8, "save_steps": 2, "per_device_train_batch_size": 1,
                           "gradient_accumulation_steps": 1, "max_seq_length": 128, "gradient_checkpointing": True,
                           **settings})


def _start(out: Path, *, resume: bool = False, **settings: object):  # type: ignore[no-untyped-def]
    plan = _plan(out, **settings)
    run = launcher.ResolvedRun(plan=plan, sources={}, mode="resume" if resume else "new")
    run_dir = launcher.prepare_run_dir(run)
    return launcher.start_worker(run_dir, resume=resume, num_processes=2, plan=plan, env=EMULATION)


def _wait(what: Callable[[], bool], timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def _tensors(path: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(path)


def _expected(demo_model: Path, out: Path) -> dict[str, tuple[int, ...]]:
    """The adapter tensors (names and shapes) PEFT saves for this adapter_config on one process."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    config = json.loads((out / "adapter_config.json").read_text())
    lora = LoraConfig(r=config["r"], lora_alpha=config["lora_alpha"], target_modules=config["target_modules"],
                      task_type="CAUSAL_LM")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(demo_model), lora)
    return {k: tuple(v.shape) for k, v in get_peft_model_state_dict(model).items()}


def test_fsdp_saves_whole_adapters_and_resumes_to_the_uninterrupted_result(demo_model: Path, tmp_path: Path) -> None:
    """With an eval split, so the end also loads the best checkpoint under FSDP and copies its adapter."""
    stopped = tmp_path / "stopped"
    proc = _start(stopped, eval_split=0.1)
    _wait(lambda: ((runs.read_status(stopped) or runs.RunStatus()).step or 0) >= 3)
    (stopped / runs.STOP_FILE).touch()  # the run saves a checkpoint at its next step and stops
    assert proc.wait(timeout=240) == 0, (stopped / runs.LOG_FILE).read_text()[-3000:]
    status = runs.read_status(stopped)
    assert status is not None and status.state == "stopped" and 3 <= status.step < 8
    log = (stopped / runs.LOG_FILE).read_text()
    assert "FSDP is not active" not in log
    # every checkpoint's adapter holds every LoRA tensor (FSDP's activation checkpointing hid them from PEFT)
    expected = _expected(demo_model, stopped)
    assert len(expected) == 32  # 4 layers x 4 projections x (A, B)
    for checkpoint in sorted((stopped / runs.CHECKPOINTS_DIR).glob("checkpoint-*")):
        saved = _tensors(checkpoint / "adapter_model.safetensors")
        assert {k: tuple(v.shape) for k, v in saved.items()} == expected, checkpoint.name  # type: ignore[attr-defined]
        assert (checkpoint / checkpoints.FSDP_STATE_FILES[0]).is_file()

    assert _start(stopped, resume=True, eval_split=0.1).wait(timeout=240) == 0, \
        (stopped / runs.LOG_FILE).read_text()[-3000:]
    resumed = runs.read_status(stopped)
    assert resumed is not None and resumed.state == "finished" and resumed.step == 8
    assert f"resumed from checkpoint-{status.step}" in (stopped / runs.LOG_FILE).read_text()
    info = json.loads((stopped / runs.INFO_FILE).read_text())
    assert info["world_size"] == 2 and info["adapter_kept"] == "best" and info["adapter_step"] == resumed.adapter_step
    assert f"the final adapter is checkpoint-{resumed.adapter_step}, the lowest eval loss" in \
        (stopped / runs.LOG_FILE).read_text()

    whole = tmp_path / "whole"
    assert _start(whole, eval_split=0.1).wait(timeout=240) == 0, (whole / runs.LOG_FILE).read_text()[-3000:]
    final, reference = _tensors(stopped / "adapter_model.safetensors"), _tensors(whole / "adapter_model.safetensors")
    assert {k: tuple(v.shape) for k, v in final.items()} == expected  # type: ignore[attr-defined]
    # the resumed run restored every rank's shard of the adapter and of the optimizer: it ends where the
    # uninterrupted run ends, to the bit
    assert all(bool((final[k] == reference[k]).all()) for k in expected)  # type: ignore[attr-defined,index]
    assert any(bool(final[k].abs().sum() > 0) for k in expected if "lora_B" in k)  # type: ignore[attr-defined,index]


def test_qlora_under_fsdp_shards_the_4_bit_weights(demo_model: Path, tmp_path: Path) -> None:
    """The packed 4-bit weights are stored in the compute dtype, so FSDP2 shards them (stored as bytes,
    accelerate leaves each one whole on every process and says so)."""
    out = tmp_path / "qlora"
    assert _start(out, load_in_4bit=True, max_steps=2).wait(timeout=240) == 0, (out / runs.LOG_FILE).read_text()[-3000:]
    log = (out / runs.LOG_FILE).read_text()
    assert "base in 4-bit NF4" in log and "Excluding from FSDP2 sharding" not in log
    status = runs.read_status(out)
    assert status is not None and status.state == "finished" and status.step == 2
    saved = _tensors(out / "adapter_model.safetensors")
    assert {k: tuple(v.shape) for k, v in saved.items()} == _expected(demo_model, out)  # type: ignore[attr-defined]
