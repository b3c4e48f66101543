"""The TUI launches a REAL demo-model run through the real launcher and watches it finish in the monitor.

Slow: it starts `python -m lora_tui.train` (torch, transformers, PEFT, TRL) and, when the session cache has no
demo model yet, that process builds it first. Loss values are not asserted (the demo model's pre-training may
change); the run finishing, its files and what the monitor shows are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Log, Static

from lora_tui.core import runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from lora_tui.ui.format import display_path
from tests.helpers import ui_fakes as fakes

pytestmark = pytest.mark.slow

MAX_STEPS = 6
"""Optimizer steps of the real run (one example each: a fraction of a second per step on a CPU)."""


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def wait_until(pilot, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Let the app run until `predicate()` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.2)


async def test_tui_launches_a_real_demo_run_and_sees_it_finish(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "demo-real"
    plan = TrainingPlan(model="demo", output=str(out), max_steps=MAX_STEPS, per_device_train_batch_size=1,
                        gradient_accumulation_steps=1, max_seq_length=128, learning_rate=1e-3, save_steps=100)
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), runs_root=tmp_path / "runs",
                   plan=plan, gpu_interval=0, poll_interval=0.1, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.screen.query("#review-cmd") and "--max-steps 6" in
                         text_of(app, "#review-cmd"), 10, "the review screen")
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "MonitorScreen", 60, "the monitor")
        monitor = app.screen
        status = runs.read_status(out)
        assert status is not None and status.pid, "the real launcher records the worker's pid"
        await wait_until(pilot, lambda: monitor.status is not None
                         and monitor.status.effective_state() not in ("starting", "running"), 900,
                         "the run to end")
        await wait_until(pilot, lambda: "Adapter:" in text_of(app, "#mon-summary")
                         or monitor.status.effective_state() != "finished", 10, "the summary")
        log_lines = list(monitor.query_one("#mon-log", Log).lines)
        assert monitor.status.effective_state() == "finished", "\n".join(log_lines[-30:])
        assert f"step {MAX_STEPS}/{MAX_STEPS}" in text_of(app, "#mon-progress-text")
        assert len([m for m in monitor.metrics if m.loss is not None]) == MAX_STEPS
        summary = text_of(app, "#mon-summary")
        assert "final loss" in summary and "best loss" in summary
        assert f"Adapter: {display_path(out.resolve())}" in summary
        assert len(monitor.query_one("#loss-chart").data[0].values) == MAX_STEPS
        assert log_lines, "the run's output reaches the log pane"
    for name in ("adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "run.toml", "status.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["r"] == plan.lora_r and config["lora_alpha"] == plan.lora_alpha
