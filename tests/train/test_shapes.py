"""Every schema `lora-tui inspect` accepts also trains (in-process worker, two steps each), with the loss on the
response where the schema marks one; an explicit --columns mapping is recorded in the run and used."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lora_tui.core import launcher, run_files, runs
from lora_tui.core.dataset.mapping import SCHEMA_NAMES
from tests.helpers.dataset_files import RECORDS, SHAPE_OF, write_csv, write_jsonl

pytestmark = pytest.mark.slow

LOSS_ON = {"messages": "assistant turns", "chat_prompt_completion": "completion", "prompt_completion": "completion",
           "text": "all tokens"}


@pytest.fixture
def keep_signal_handlers() -> Iterator[None]:
    """The worker routes SIGINT/SIGTERM to its stop flag; give pytest its handlers back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_every_schema_is_covered() -> None:
    assert set(RECORDS) == set(SCHEMA_NAMES)


def _train(data: Path, tmp_path: Path, **more: Any) -> tuple[Path, dict[str, Any]]:
    from lora_tui.train.worker import run_worker

    given = {"model": "demo", "data": str(data), "output": str(tmp_path / "run"), "max_steps": 2,
             "per_device_train_batch_size": 1, "gradient_accumulation_steps": 1, "max_seq_length": 64, **more}
    run_dir = launcher.prepare_run_dir(launcher.resolve_run(given))
    assert run_worker(run_dir) == 0
    status = runs.read_status(run_dir)
    assert status is not None and status.state == "finished" and status.step == 2
    losses = [m.loss for m in run_files.read_metrics(run_dir)[0] if m.loss is not None]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert runs.is_adapter_dir(run_dir)
    return run_dir, json.loads((run_dir / runs.INFO_FILE).read_text(encoding="utf-8"))


@pytest.mark.parametrize("schema", sorted(RECORDS))
def test_schema_trains(schema: str, demo_model: Path, tmp_path: Path, keep_signal_handlers: None) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", RECORDS[schema] * 2)
    _, info = _train(data, tmp_path)
    shape = SHAPE_OF.get(schema, "messages")
    assert (info["data"]["shape"], info["data"]["examples"], info["data"]["loss_on"]) == (shape, 6, LOSS_ON[shape])
    assert info["assistant_only_loss"] is (shape == "messages")
    share = info["data"]["trained_token_share"]
    assert share == 1.0 if shape == "text" else 0 < share < 0.8  # the response only, where the schema has one


def test_columns_mapping_trains_and_is_recorded(demo_model: Path, tmp_path: Path, keep_signal_handlers: None) -> None:
    rows = [{"q": f"What is {i}+{i}?", "a": str(2 * i), "sys": "Be brief."} for i in range(6)]
    data = write_csv(tmp_path / "d.csv", rows)
    run_dir, info = _train(data, tmp_path, columns="prompt=q,response=a,system=sys")
    assert 'columns = "prompt=q,response=a,system=sys"' in (run_dir / runs.RUN_FILE).read_text(encoding="utf-8")
    assert info["data"]["columns"] == "prompt=q,response=a,system=sys" and info["data"]["examples"] == 6
    launch = json.loads((run_dir / runs.LAUNCH_FILE).read_text(encoding="utf-8"))
    assert launch["data_report"]["columns"] == "prompt=q,response=a,system=sys"
    assert launch["data_report"]["token_stats"]["max_seq_length"] == 64
