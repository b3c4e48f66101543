"""The Advisor: the advice switch (the guide's tables or current practice) changes the plan and each reason shows
the other's value; the memory table wraps its detail column instead of cutting it; no note names a flag."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import RadioButton, Static

from lora_tui.core.memory import plan_estimate
from lora_tui.core.models.modules import load_inventory
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from lora_tui.ui.screens.advisor import memory_table
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _app(tmp_path: Path, gpu_gib: int | None = 8, **kwargs):
    return make_app(hardware_probe=fakes.probe(gpu_gib), gpu_query=fakes.gpu_query(gpu_gib),
                    launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0, **kwargs)


async def _to_advisor(pilot) -> None:
    await waits.settle(pilot)
    for _ in range(3):
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
    assert pilot.app.screen.query("#advisor-advice")


def _text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_the_advice_switch_changes_the_plan_and_shows_the_other_value(tmp_path: Path) -> None:
    app = _app(tmp_path, plan=TrainingPlan(task="chat", model="smollm2-135m"))
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        state = app.state
        assert state.plan.advice == "guide" and state.plan.target_modules == SEVEN[:4]
        guide_lr = state.plan.learning_rate
        assert "common LoRA practice gives" in _text(app, "#why-learning_rate")
        practice = next(b for b in app.screen.query(RadioButton) if b.name == "practice")
        practice.value = True
        await waits.settle(pilot)
        assert state.plan.advice == "practice" and state.sources["advice"] == "given"
        assert state.plan.target_modules == SEVEN and state.plan.learning_rate != guide_lr
        why = _text(app, "#why-learning_rate")
        assert why.startswith("common LoRA practice") and "the guide says" in why
        assert "the guide says" in _text(app, "#why-target_modules")
        assert "--advice practice" in state.plan.command_line()
        await pilot.press("ctrl+o")  # Reset forgets hand edits, not the advice chosen
        await waits.settle(pilot)
        assert state.plan.advice == "practice"


async def test_a_run_file_with_practice_advice_shows_the_switch_on_practice(tmp_path: Path) -> None:
    app = _app(tmp_path, plan=TrainingPlan(advice="practice", model="smollm2-135m"))
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        pressed = [b.name for b in app.screen.query(RadioButton) if b.value and b.name in ("guide", "practice")]
        assert pressed == ["practice"]


@pytest.mark.parametrize("width", [56, 76, 120])
def test_the_memory_table_wraps_its_detail_instead_of_cutting_it(width: int) -> None:
    inv = load_inventory("smollm2-135m")
    parts = plan_estimate(inv, TrainingPlan(model="smollm2-135m"), 6 * 10**9).parts
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(memory_table(parts))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    flat = " ".join(text.split())
    for part in parts:  # every word of every detail is shown whole (wrapped at spaces, never cut)
        for word in part.detail.split():
            assert word in flat, (word, text)


async def test_the_advisor_shows_the_memory_table_within_the_screen(tmp_path: Path) -> None:
    app = _app(tmp_path, plan=TrainingPlan(model="smollm2-135m"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _to_advisor(pilot)
        memory = app.screen.query_one("#memory", Static)
        assert memory.size.width <= 80 and memory.size.height > len(app.state.resolved.notes)
        shown = " ".join(memory.render_line(y).text for y in range(memory.size.height))
        assert "part" in shown and "detail" in shown and "Frozen base weights" in shown


async def test_no_note_sends_the_person_to_a_flag(tmp_path: Path) -> None:
    app = _app(tmp_path, gpu_gib=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        notes = _text(app, "#notes")
        assert "No GPU VRAM known" in notes and "--vram-gb" not in notes
