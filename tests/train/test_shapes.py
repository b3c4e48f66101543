"""Every record shape `lora-tui inspect` accepts also trains (in-process worker, two steps each)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from data.dataset_files import RECORDS

from lora_tui.core import launcher, run_files, runs
from lora_tui.core.dataset.report import SHAPES

pytestmark = pytest.mark.slow


@pytest.fixture
def keep_signal_handlers() -> Iterator[None]:
    """The worker routes SIGINT/SIGTERM to its stop flag; give pytest its handlers back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_every_shape_is_covered() -> None:
    assert set(RECORDS) == set(SHAPES)


@pytest.mark.parametrize("shape", sorted(RECORDS))
def test_shape_trains(shape: str, demo_model: Path, tmp_path: Path, keep_signal_handlers: None) -> None:
    from lora_tui.train.worker import run_worker

    data = tmp_path / f"{shape}.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS[shape] * 2), encoding="utf-8")
    given = {"model": "demo", "data": str(data), "output": str(tmp_path / "run"), "max_steps": 2,
             "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1, "max_seq_length": 64}
    run_dir = launcher.prepare_run_dir(launcher.resolve_run(given))
    assert run_worker(run_dir) == 0
    status = runs.read_status(run_dir)
    assert status is not None and status.state == "finished" and status.step == 2
    losses = [m.loss for m in run_files.read_metrics(run_dir)[0] if m.loss is not None]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    info = json.loads((run_dir / runs.INFO_FILE).read_text(encoding="utf-8"))
    trained_as = "messages" if shape in ("sharegpt", "alpaca") else shape  # converted to chat turns first
    assert info["data"]["shape"] == trained_as and info["data"]["examples"] == 6
    assert runs.is_adapter_dir(run_dir)
