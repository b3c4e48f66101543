"""End to end on the CPU with the demo model: run files, adapter, stop/resume, kill -9, OOM, two processes.

Runs use one example per step (batch 1, no accumulation) so each step is a fraction of a second.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_tui.cli import main
from lora_tui.core import launcher, run_files, runs

pytestmark = pytest.mark.slow
SMALL = ["--model", "demo", "--batch-size", "1", "--gradient-accumulation-steps", "1", "--max-seq-length", "128"]


def _wait(cond: Callable[[], bool], timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def _status(run_dir: Path) -> runs.RunStatus:
    status = runs.read_status(run_dir)
    assert status is not None
    return status


def _wait_exit(run_dir: Path, timeout: float = 240) -> runs.RunStatus:
    _wait(lambda: _status(run_dir).effective_state() not in ("starting", "running"), timeout)
    return _status(run_dir)


def test_run_writes_every_file_and_a_loadable_adapter(demo_model: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    assert main(["train", *SMALL, "--max-steps", "3", "--learning-rate", "1e-3", "--output", str(out)]) == 0
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "training_info.json", "metrics.jsonl", "run.log", "status.json", "run.toml"):
        assert (out / name).is_file(), name
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["lora_alpha"] == 16 and config["r"] == 8 and "alpha" not in config
    assert Path(config["base_model_name_or_path"]) == demo_model
    assert "chat_template" in (out / "tokenizer_config.json").read_text() or (out / "chat_template.jinja").is_file()
    metrics = [m for m in run_files.read_metrics(out)[0] if m.loss is not None]  # evaluation lines aside
    assert [m.step for m in metrics] == [1, 2, 3]
    losses = run_files.finite(m.loss for m in metrics)
    assert len(losses) == 3 and min(losses) > 0
    assert all(m.learning_rate is not None and (m.tokens_per_second or 0) > 0 for m in metrics)
    info = json.loads((out / "training_info.json").read_text())
    assert info["steps"] == 3 and info["tokens_seen"] > 0
    assert info["settings"]["lora_r"] == {"value": 8, "source": "recommended"}
    assert info["settings"]["learning_rate"]["source"] == "given"
    assert info["final_loss"] == losses[-1] and info["best_loss"] == min(losses)
    assert info["memory"]["estimate"]["total_bytes"] > 0 and info["versions"]["peft"]
    status = _status(out)
    assert status.state == "finished" and status.step == 3 and status.last_checkpoint == "checkpoints/checkpoint-3"
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
    model = PeftModel.from_pretrained(base, str(out))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and max(float(p.abs().max()) for p in lora_b) > 0
    assert isinstance(lora_b[0], torch.Tensor)


def test_graceful_stop_then_resume_reaches_the_same_final_step(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--max-steps", "12", "--save-steps", "100", "--output", str(out),
                 "--detach"]) == 0
    # metrics.jsonl has every step (status.json is updated at most once a second)
    _wait(lambda: len(run_files.read_metrics(out)[0]) >= 2
          or _status(out).effective_state() not in ("starting", "running"))
    assert runs.request_stop(out)
    status = _wait_exit(out)
    assert status.state == "stopped" and 2 <= status.step < 12
    ckpt = runs.latest_complete_checkpoint(out)
    assert ckpt is not None and runs.checkpoint_step(ckpt) == status.step
    assert runs.is_adapter_dir(out)
    assert main(["train", "--output", str(out), "--resume"]) == 0
    final = _status(out)
    assert final.state == "finished" and final.step == 12
    info = json.loads((out / "training_info.json").read_text())
    assert info["resumed_from"] == f"checkpoints/checkpoint-{status.step}"
    steps = [m.step for m in run_files.read_metrics(out)[0]]
    assert steps[-1] == 12 and sorted(set(steps)) == list(range(1, 13))


def test_stop_asked_while_the_run_is_starting_still_saves_and_stops(demo_model: Path, tmp_path: Path) -> None:
    """SIGTERM right after the start (while the worker still imports the training stack) is a graceful stop."""
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--max-steps", "50", "--save-steps", "100", "--output", str(out),
                 "--detach"]) == 0
    assert _status(out).state == "starting"
    assert runs.request_stop(out)
    status = _wait_exit(out)
    assert status.state == "stopped", status.error
    assert status.step >= 1 and runs.latest_complete_checkpoint(out) is not None and runs.is_adapter_dir(out)


def test_kill_9_leaves_a_resumable_directory(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--max-steps", "8", "--save-steps", "2", "--output", str(out), "--detach"]) == 0
    _wait(lambda: runs.latest_complete_checkpoint(out) is not None)
    os.killpg(_status(out).pgid or 0, signal.SIGKILL)
    _wait(lambda: _status(out).effective_state() == "lost")
    partial = out / runs.CHECKPOINTS_DIR / "checkpoint-999"
    partial.mkdir()
    (partial / "trainer_state.json").write_text("{}")  # a save cut short: no weights, no marker
    good = runs.latest_complete_checkpoint(out)
    assert good is not None and good.name != "checkpoint-999"
    assert main(["train", "--output", str(out), "--resume"]) == 0
    assert _status(out).state == "finished" and _status(out).step == 8


def _raise_oom_at(step: int) -> Any:
    """A test-only callback raising torch.OutOfMemoryError once, at `step` (not reachable from the CLI)."""
    import torch
    from transformers import TrainerCallback

    class RaiseOOM(TrainerCallback):
        fired = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step == step and not self.fired:
                self.fired = True
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (faked by a test)")
            return control

    return RaiseOOM()


@pytest.fixture
def restore_signals() -> Any:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("retries", [0, 1])
def test_out_of_memory_gives_status_oom_and_next_settings(retries: int, demo_model: Path, tmp_path: Path,
                                                          restore_signals: Any) -> None:
    from lora_tui.train.worker import run_worker

    given = {"model": "demo", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1,
             "max_steps": 3, "max_seq_length": 128, "output": str(tmp_path / "run")}
    resolved = launcher.resolve_run(given, auto_oom_retry=retries)
    run_dir = launcher.prepare_run_dir(resolved)
    rc = run_worker(run_dir, extra_callbacks=[_raise_oom_at(2)])
    status = _status(run_dir)
    if retries == 0:
        assert rc == 1 and status.state == "oom"
        assert "OutOfMemoryError" in (status.error or "")
        assert status.next_settings == {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 2}
    else:
        assert rc == 0 and status.state == "finished" and status.step == 3
        assert "per_device_train_batch_size = 1" in (run_dir / runs.RUN_FILE).read_text()
        info = json.loads((run_dir / runs.INFO_FILE).read_text())
        assert [a["outcome"] for a in info["attempts"]] == ["oom", "finished"]


def test_two_processes_one_adapter(demo_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--max-steps", "2", "--num-processes", "2", "--output", str(out)]) == 0
    info = json.loads((out / "training_info.json").read_text())
    assert info["world_size"] == 2 and info["effective_batch_size"] == 2
    assert _status(out).state == "finished"
    assert runs.is_adapter_dir(out)
    loss_steps = [m.step for m in run_files.read_metrics(out)[0] if m.loss is not None]
    assert loss_steps == [1, 2]  # rank 0 only: one training line per step
