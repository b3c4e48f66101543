"""The training callback and training_info.json, without training: what they write is what the readers read.

A real `transformers.TrainerState` stands in for a run; no model is loaded (seconds, not marked slow).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import transformers

from lora_tui.core import run_files
from lora_tui.core.follow import RunFollower
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import LaunchInfo
from lora_tui.core.symptoms import diagnose


def _callback(run_dir: Path) -> Any:
    from lora_tui.train.callbacks import RunCallback, StopFlag

    return RunCallback(run_dir, StopFlag(), is_main=True, world_size=1, effective_batch=4)


def _log(callback: Any, step: int, logs: dict[str, Any]) -> None:
    state = transformers.TrainerState(global_step=step, max_steps=20, epoch=step / 10)
    callback.on_log(None, state, transformers.TrainerControl(), logs=logs)


def test_callback_writes_records_the_follower_and_the_advice_read(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    callback = _callback(tmp_path)
    follower = RunFollower(tmp_path)
    for step in range(1, 16):  # the Trainer's own keys: `loss`, `num_tokens`, ...
        _log(callback, step, {"loss": 2.3, "learning_rate": 5e-5, "grad_norm": 0.5, "num_tokens": 100.0 * step})
    _log(callback, 15, {"eval_loss": 2.4, "eval_runtime": 0.1})
    _log(callback, 15, {"train_runtime": 9.0, "train_loss": 2.3})  # the end-of-training summary: not a line
    callback.close()
    records = follower.poll().metrics
    assert [r.step for r in records] == [*range(1, 16), 15]
    first = records[0]
    assert (first.loss, first.learning_rate, first.grad_norm, first.epoch, first.tokens_seen) == (2.3, 5e-5, 0.5,
                                                                                                  0.1, 100)
    assert first.tokens_per_second is not None and first.tokens_per_second > 0
    assert first.samples_per_second is not None and first.elapsed is not None and first.extra == {}
    assert records[-1].loss is None and records[-1].eval_loss == 2.4
    assert callback.losses == [2.3] * 15 and callback.eval_losses == [2.4] and callback.tokens_seen == 1500
    assert [s.key for s in diagnose(records)] == ["loss_not_falling"]  # a flat loss, seen in what it wrote
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("step 1/20  epoch 0.10  loss 2.3000  grad norm 0.5000  lr 5e-5  ")
    assert printed[0].endswith(" tok/s")  # the throughput depends on the clock
    assert printed[-1] == "step 15/20  epoch 1.50  eval loss 2.4000"


def test_callback_keeps_a_nan_loss_as_written(tmp_path: Path) -> None:
    callback = _callback(tmp_path)
    _log(callback, 1, {"loss": float("nan"), "learning_rate": 1e-4})
    callback.close()
    [record] = run_files.read_metrics(tmp_path)[0]
    assert record.loss is not None and math.isnan(record.loss) and run_files.finite([record.loss]) == []


def test_training_info_is_written_typed_and_read_back(tmp_path: Path) -> None:
    from lora_tui.train.info import build_info

    callback = _callback(tmp_path)
    for step, loss in enumerate([3.0, 2.0, 2.5], start=1):
        _log(callback, step, {"loss": loss})
    callback.close()
    plan = TrainingPlan(per_device_train_batch_size=2, gradient_accumulation_steps=4)
    launch = LaunchInfo(data_report={"examples": 40}, memory_estimate={"total_bytes": 1_000})
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=3, max_steps=3, num_input_tokens_seen=0))
    info = build_info(plan, {"lora_r": "given"}, launch, {"world_size": 1, "precision": "fp32"}, callback,
                      trainer, started=100.0, state="finished", error=None)
    run_files.write_training_info(tmp_path, info)
    back = run_files.read_training_info(tmp_path)
    assert back == info
    assert (back.first_loss, back.final_loss, back.best_loss, back.steps) == (3.0, 2.5, 2.0, 3)
    assert back.settings is not None and back.settings["lora_r"] == {"value": 16, "source": "given"}
    assert back.effective_batch_size == 8 and back.data == {"examples": 40} and back.data_report == {"examples": 40}
    assert back.memory is not None and back.memory.estimate == {"total_bytes": 1_000}
    assert back.timings is not None and back.timings.started_at == 100.0 and (back.timings.wall_seconds or 0) > 0


def test_each_line_has_useful_and_trained_tokens_per_second_and_the_padding_share(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from lora_tui.train import callbacks as callbacks_mod
    from lora_tui.train.info import build_info

    clock = iter([1000.0, 1000.0, 1002.0, 1004.0, 1005.0])  # construction, train begin, two lines, the info
    monkeypatch.setattr(callbacks_mod.time, "time", lambda: next(clock))
    callback = _callback(tmp_path)
    state = transformers.TrainerState(global_step=0, max_steps=2)
    callback.on_train_begin(None, state, transformers.TrainerControl())
    batch = {"input_ids": torch.ones(2, 100, dtype=torch.long),
             "attention_mask": torch.tensor([[1] * 100, [1] * 60 + [0] * 40]),
             "labels": torch.tensor([[-100] * 50 + [1] * 50, [-100] * 30 + [1] * 30 + [-100] * 40])}
    for step in (1, 2):
        callback.tally.add(batch)  # what LoraTuiTrainer.get_batch_samples does with each micro-batch
        _log(callback, step, {"loss": 2.0, "num_tokens": 1.0,  # TRL's count is not used when the tally has one
                              "mean_token_accuracy": 0.25, "entropy": 3.5})
    _log(callback, 2, {"train_runtime": 4.0})
    callback.close()
    first, second = run_files.read_metrics(tmp_path)[0]
    # per step: 200 positions, 160 real, 80 scored; 2 s between lines
    assert (first.tokens_seen, first.tokens_per_second, first.trained_tokens_per_second, first.padding_share) == \
        (160, 80.0, 40.0, 0.2)
    assert (second.tokens_seen, second.tokens_per_second, second.padding_share) == (320, 80.0, 0.2)
    assert (second.token_accuracy, second.entropy) == (0.25, 3.5)  # TRL computes them every step: kept
    assert capsys.readouterr().out.splitlines()[0].endswith("  80 tok/s  padding 20%")
    info = build_info(TrainingPlan(), {}, LaunchInfo(), {"world_size": 1, "train_seconds": 4.0}, callback, None,
                      started=1000.0, state="finished", error=None)
    assert (info.tokens_seen, info.trained_tokens, info.tokens_per_second, info.padding_share) == (320, 160, 80.0, 0.2)
