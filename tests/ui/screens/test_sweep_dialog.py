"""F6 on Review: the wizard's plan over a typed grid, started as `lora-tui sweep` in the background; a bad grid is
one line in the dialog and starts nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from lora_tui.core import sweep
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from lora_tui.ui.screens.runs import RunsScreen
from lora_tui.ui.screens.sweep_dialog import SweepDialog
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits


async def test_f6_starts_a_sweep_of_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[Any, ...]] = []

    def fake_start(plan: TrainingPlan, grid: dict[str, list[Any]], root: Path) -> tuple[Path, int]:
        started.append((plan.data, grid, root))
        return root / "sweep-r", 4321

    monkeypatch.setattr(sweep, "start_detached", fake_start)
    data = tmp_path / "chats.jsonl"
    data.write_text(SAMPLE_DATA_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0, start="review",
                   plan=TrainingPlan(data=str(data), output=str(tmp_path / "runs" / "r")))
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        await pilot.press("f6")
        assert isinstance(app.screen, SweepDialog)
        await pilot.press(*"lora_r=8,x", "enter")
        assert "`lora_r` (--lora-r): 'x' is not a whole number" in str(app.screen.query_one("#sweep-error",
                                                                                          Static).render())
        assert started == []
        app.screen.query_one("#sweep-grid").value = "lora_r=8,16 learning_rate=5e-5,2e-4"
        await pilot.press("enter")
        await waits.settle(pilot)
        assert started == [(str(data), {"lora_r": [8, 16], "learning_rate": [5e-5, 2e-4]}, tmp_path / "runs")]
        assert isinstance(app.screen, RunsScreen)


def test_the_sweep_file_written_for_the_tui_reads_back(tmp_path: Path) -> None:
    plan = TrainingPlan(output=str(tmp_path / "r"), model="demo", max_steps=3, lora_alpha=32)
    grid = sweep.parse_grid("lora_r=8,16 use_dora=yes,no")
    path = tmp_path / "s.toml"
    path.write_text(sweep.sweep_file_text(plan, grid), encoding="utf-8")
    spec = sweep.load_sweep(path)
    assert spec.grid == {"lora_r": [8, 16], "use_dora": [True, False]}
    assert spec.plan["max_steps"] == 3 and "output" not in spec.plan and "lora_r" not in spec.plan
