"""Padding-free and packed batches train correctly without FlashAttention: transformers masks each example of a
flat row off from the others by its position ids (SDPA here, on the CPU), so a padding-free run logs the same
losses as padded batches of the same examples. In-process worker, three steps each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lora_tui.core import launcher, run_files, runs
from tests.train.test_shapes import keep_signal_handlers  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, batching: str) -> list[run_files.MetricsRecord]:
    from lora_tui.train.worker import run_worker

    given: dict[str, object] = {
        "model": "demo", "output": str(tmp_path / batching), "max_steps": 3, "batching": batching,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "max_seq_length": 128,
        "logging_steps": 1, "gradient_checkpointing": False,
        "lora_dropout": 0.0}  # dropout draws its masks in the batch's shape: without it the steps are equal
    run_dir = launcher.prepare_run_dir(launcher.resolve_run(given))
    assert run_worker(run_dir) == 0, (run_dir / runs.LOG_FILE).read_text()[-2000:]
    status = runs.read_status(run_dir)
    assert status is not None and status.state == "finished" and status.step == 3
    return [m for m in run_files.read_metrics(run_dir)[0] if m.loss is not None]


@pytest.fixture
def runs_of(tmp_path: Path, demo_model: Path, keep_signal_handlers: None) -> Iterator[object]:  # noqa: F811
    yield lambda batching: _run(tmp_path, batching)


def test_padding_free_logs_the_losses_of_padded_batches_and_packed_trains(runs_of) -> None:  # type: ignore[no-untyped-def]
    padded, flat = runs_of("random"), runs_of("padding-free")
    assert [round(m.loss, 4) for m in flat] == [round(m.loss, 4) for m in padded]  # the same examples per step
    assert all(abs(f.grad_norm - p.grad_norm) < 1e-4 * p.grad_norm for f, p in zip(flat, padded, strict=True))  # type: ignore[operator]
    assert all((m.padding_share or 0) > 0.05 for m in padded) and all(m.padding_share == 0 for m in flat)
    packed = runs_of("packed")
    assert len(packed) == 3 and all(m.padding_share == 0 for m in packed)
    assert packed[-1].epoch > 2 * padded[-1].epoch  # rows of several examples: more of the data per step
