"""The Task and model step through make_app and a Pilot: a model seen for the first time tells how far its check is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static

from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from lora_tui.ui.screens import task as task_screen
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits


async def test_a_new_models_inventory_build_shows_its_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "my-qwen"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(
        {"model_type": "qwen2", "vocab_size": 307, "hidden_size": 32, "intermediate_size": 48,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}), encoding="utf-8")
    shown: list[str] = []
    original = task_screen.TaskScreen._show_progress

    def recording(self: Any, name: str, event: Any) -> None:
        original(self, name, event)
        shown.append(str(self.query_one("#model-status", Static).render()))

    monkeypatch.setattr(task_screen.TaskScreen, "_show_progress", recording)
    app = make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0, start="task",
                   plan=TrainingPlan(output=str(tmp_path / "runs" / "r")))
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        field = app.screen.query_one("#model", Input)
        field.value = str(model)
        await pilot.click("#model")
        await pilot.press("enter")
        await waits.wait_until(pilot, lambda: app.state.inventory is not None
                               and app.state.inventory.vocab_size == 307, timeout=60)
        assert shown and shown[0].startswith(f"Checking {model}: building the module tree of {model} on the meta "
                                             "device")
        assert "Checking" not in str(app.screen.query_one("#model-status", Static).render())
