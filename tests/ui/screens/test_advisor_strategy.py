"""The Advisor with more than one process: ddp or fsdp is one of its settings with the strategy's reason, the memory
is what one GPU holds under the plan's strategy (FSDP's per-GPU share, as resolve's choice counts it) and its
remedies (ctrl+g) fit that figure; with one process none of it shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from lora_tui import i18n
from lora_tui.core.fit import fit_to_vram
from lora_tui.core.memory import plan_estimate
from lora_tui.core.memory_sharded import per_gpu, per_gpu_text, sharded
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.format import fmt_bytes
from tests.helpers import waits
from tests.helpers.japanese import plain
from tests.ui.screens.test_advisor import _app, _text, _to_advisor
from tests.ui.test_japanese import _english, app_for, japanese  # noqa: F401 - the Japanese session fixture

FOURTEEN_B = "qwen3-14b"


def _per_gpu(state, plan: TrainingPlan):  # type: ignore[no-untyped-def]
    """DDP's whole estimate and FSDP's per-GPU one of `plan`, as resolve's choice computes them."""
    report = state.data_report
    whole = plan_estimate(state.inventory, plan, state.vram_bytes,
                          lengths=report.token_stats if report is not None else None)
    return whole, sharded(whole, plan.world_size, state.inventory.num_layers)


async def test_fsdp_chosen_shows_its_reason_and_the_per_gpu_memory(tmp_path: Path) -> None:
    app = _app(tmp_path, gpu_gib=24, plan=TrainingPlan(task="chat", model=FOURTEEN_B, num_processes=2))
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        state = app.state
        assert state.plan.distributed == "fsdp" and not state.plan.load_in_4bit
        assert app.screen.query_one("#row-distributed").display
        assert app.screen.query_one("#set-distributed", Input).value == "fsdp"
        assert _text(app, "#why-distributed") == state.reasons["distributed"]
        assert state.reasons["distributed"].startswith("fsdp: in 16-bit, DDP needs ")
        whole, fsdp = _per_gpu(state, state.plan)
        assert whole.verdict == "will_not_fit" and fsdp.verdict != "will_not_fit"
        verdict = _text(app, "#verdict")
        assert verdict.startswith(f"Peak memory per GPU ≈ {fmt_bytes(fsdp.total_bytes)} of ")
        assert "will not fit" not in verdict.splitlines()[0]
        assert per_gpu_text(per_gpu(whole, 2, state.inventory.num_layers)) in verdict
        assert "Decoder layers gathered whole (FSDP)" in plain(app.screen.query_one("#memory", Static).content)
        assert _text(app, "#remedies") == ""  # FSDP's figure fits: nothing to remedy (DDP's would not)


async def test_the_remedies_fit_fsdps_per_gpu_figure(tmp_path: Path) -> None:
    app = _app(tmp_path, gpu_gib=24, plan=TrainingPlan(task="chat", model=FOURTEEN_B, num_processes=2))
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        state = app.state
        assert "Memory: fsdp: in 16-bit" in _text(app, "#notes")
        app.screen.query_one("#set-per_device_train_batch_size", Input).value = "64"
        await waits.settle(pilot)
        assert state.plan.distributed == "ddp" and _text(app, "#why-distributed").startswith("ddp: neither fits")
        assert "Memory: fsdp" not in _text(app, "#notes")  # the notes follow the edit
        app.screen.query_one("#set-distributed", Input).value = "fsdp"
        await waits.settle(pilot)
        assert state.plan.distributed == "fsdp" and state.sources["distributed"] == "given"
        assert _per_gpu(state, state.plan)[1].verdict == "will_not_fit"
        steps = fit_to_vram(state.inventory, state.plan, state.vram_bytes, shards=2)
        shown = _text(app, "#remedies")
        assert shown.startswith("Remedies (ctrl+g applies them):")
        for step in steps:
            assert f"{step.description} -> {fmt_bytes(step.estimate.total_bytes)}" in shown
        assert steps != fit_to_vram(state.inventory, state.plan, state.vram_bytes)  # not DDP's remedies
        await pilot.press("ctrl+g")
        await waits.settle(pilot)
        assert state.plan.distributed == "fsdp"
        assert _per_gpu(state, state.plan)[1].verdict != "will_not_fit"
        assert _text(app, "#remedies") == ""


async def test_one_process_shows_no_strategy(tmp_path: Path) -> None:
    app = _app(tmp_path, gpu_gib=24, plan=TrainingPlan(task="chat", model=FOURTEEN_B))
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        assert not app.screen.query_one("#row-distributed").display
        assert not app.screen.query_one("#why-distributed").display
        assert _text(app, "#verdict").startswith("Peak memory ≈ ")
        assert "Per-GPU memory" not in _text(app, "#verdict")


@pytest.mark.usefixtures("japanese")
async def test_the_strategy_and_the_per_gpu_memory_in_japanese() -> None:
    app = app_for(24, plan=TrainingPlan(task="chat", model=FOURTEEN_B, num_processes=2))
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        assert app.state.plan.distributed == "fsdp"
        assert _text(app, "#why-distributed").startswith("fsdp: 16 ビットでは DDP は各 GPU で")
        verdict = _text(app, "#verdict")
        assert verdict.startswith("GPU ごとのピークメモリ ≈ ") and "GPU ごとのメモリ: ddp " in verdict
        assert "全体を集めるデコーダー層（FSDP）" in plain(app.screen.query_one("#memory", Static).content)
        assert _english(app.screen) == {}
    assert sorted(i18n.missing) == []


async def test_reset_forgets_an_edited_strategy(tmp_path: Path) -> None:
    app = _app(tmp_path, gpu_gib=24, plan=TrainingPlan(task="chat", model=FOURTEEN_B, num_processes=2))
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_advisor(pilot)
        state = app.state
        app.screen.query_one("#set-distributed", Input).value = "ddp"
        await waits.settle(pilot)
        assert state.plan.distributed == "ddp" and state.sources["distributed"] == "given"
        await pilot.press("ctrl+o")  # back to the recommendation
        await waits.settle(pilot)
        assert state.plan.distributed == "fsdp" and state.sources["distributed"] != "given"
        assert app.screen.query_one("#set-distributed", Input).value == "fsdp"
