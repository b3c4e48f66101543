"""The monitor: driven by the fake trainer and by recorded run directories; troubleshooting.

The follower it reads the run with (bounded log, partial lines) is tested in tests/core/test_follow.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Log, Static

from lora_tui.core import runs
from lora_tui.core.run_files import best_eval
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.run_dirs import recorded_run


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def state_of(app) -> str:
    """The followed run's state as the monitor last read it ('' before the first read)."""
    status = getattr(app.screen, "status", None)
    return status.effective_state() if status is not None else ""


async def test_monitor_follows_fake_trainer_to_the_end(tmp_path: Path) -> None:
    launcher = fakes.FakeLauncher("--steps", "15", "--interval", "0.01", "--eval-every", "5")
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=launcher,
                   runs_root=tmp_path / "runs", gpu_interval=0, poll_interval=0.05, start="review")
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        await pilot.press("ctrl+l")
        await waits.wait_until(pilot, lambda: state_of(app) == "finished", 30, "the fake run to finish")
        await waits.wait_until(pilot, lambda: "Adapter:" in text_of(app, "#mon-summary"), 10, "the summary")
        monitor = app.screen
        assert "finished" in text_of(app, "#mon-status")
        assert len(monitor.metrics) == 15
        assert "step 15/15" in text_of(app, "#mon-progress-text")
        summary = text_of(app, "#mon-summary")
        assert "Adapter:" in summary and str(Path(app.state.plan.output).resolve()) in summary
        best = best_eval(monitor.metrics)
        assert best is not None and f"best eval {best[1]:.4f} at step {best[0]}" in summary
        assert monitor.query_one("#loss-chart").mark.step == best[0]
        assert "lora-tui" not in summary and "o: open it on the Adapters screen" in summary
        assert any("step 15/15" in line for line in monitor.query_one("#mon-log", Log).lines)
        train = monitor.query_one("#loss-chart").data[0].values
        assert train[0] > train[-1]  # the curve falls


async def test_stop_asks_the_run_to_stop(tmp_path: Path) -> None:
    launcher = fakes.FakeLauncher("--steps", "2000", "--interval", "0.02")
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=launcher,
                   runs_root=tmp_path / "runs", gpu_interval=0, poll_interval=0.05, start="review")
    async with app.run_test(size=(80, 24)) as pilot:
        await waits.settle(pilot)
        await pilot.press("ctrl+l")
        await waits.wait_until(pilot, lambda: state_of(app) == "running", 30, "the fake run to start")
        await pilot.press("s")
        launcher.wait(20)
        # the status file says stopped first (state_of re-reads it), the status line at the next poll
        await waits.wait_until(pilot, lambda: "stopped" in text_of(app, "#mon-status"), 10, "the monitor to see it")
        assert state_of(app) == "stopped"
        await waits.wait_until(pilot, lambda: "r resumes" in text_of(app, "#mon-summary"), 10, "the resume hint")
        assert runs.latest_complete_checkpoint(Path(app.state.plan.output)) is not None


@pytest.mark.parametrize(
    "losses, evals, title",
    [
        ([2.0 + 0.001 * (i % 2) for i in range(30)], None, "not falling"),  # judged after warmup, confirmed
        ([2.0 - 0.05 * i for i in range(30)], {10: 1.6, 15: 1.5, 20: 1.6, 25: 1.7, 30: 1.8}, "verfitting"),
    ],
)
async def test_troubleshooting_shows_evidence_and_a_applies_the_remedy(
        tmp_path: Path, losses: list[float], evals: dict[int, float] | None, title: str) -> None:
    run = recorded_run(tmp_path / "runs" / "r1", losses, evals=evals, state="running", max_steps=100,
                       pid=None)
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0, start="runs",
                   open_run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: getattr(app.screen, "symptoms", None), 10, "a diagnosis")
        advice = text_of(app, "#mon-advice")
        assert title in advice.lower() or title in advice
        symptom = app.screen.symptoms[0]
        await pilot.press("a")
        await waits.settle(pilot)
        assert app.screen.STEP == "review"
        for key, value in symptom.changes.items():
            assert getattr(app.state.plan, key) == value
        assert Path(app.state.plan.output) != run


async def test_oom_run_offers_next_settings(tmp_path: Path) -> None:
    run = recorded_run(tmp_path / "runs" / "oom", [3.0, 2.9], state="oom", error="CUDA out of memory",
                       next_settings={"per_device_train_batch_size": 1, "gradient_accumulation_steps": 16})
    app = make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0, start="runs",
                   open_run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: state_of(app) == "oom", 10, "the oom status")
        assert "oom" in text_of(app, "#mon-status") and "CUDA out of memory" in text_of(app, "#mon-status")
        await pilot.press("a")
        await waits.settle(pilot)
        assert app.state.plan.per_device_train_batch_size == 1
        assert app.state.plan.gradient_accumulation_steps == 16


async def test_runs_screen_lists_runs_and_opens_a_monitor(tmp_path: Path) -> None:
    recorded_run(tmp_path / "runs" / "alpha", [3.0, 2.5, 2.0])
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0, start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await waits.settle(pilot)
        table = app.screen.query_one("#runs-table")
        row = [str(cell) for cell in table.get_row_at(0)]
        assert table.row_count == 1 and {"finished", "3/3"} <= set(row) and any("alpha" in c for c in row)
        table.focus()
        await pilot.press("enter")
        await waits.wait_until(pilot, lambda: type(app.screen).__name__ == "MonitorScreen", 10, "the monitor")
        await waits.wait_until(pilot, lambda: "final loss" in text_of(app, "#mon-summary"), 10, "the summary")
        assert "final loss 2.0000" in text_of(app, "#mon-summary")
        assert app.screen.query_one("#loss-chart").data[0].values == (3.0, 2.5, 2.0)
        assert "lr 5e-5" in text_of(app, "#lr-label") and "grad 1" in text_of(app, "#gn-label")


async def test_a_nan_loss_is_left_out_of_the_curve_and_the_summary(tmp_path: Path) -> None:
    run = recorded_run(tmp_path / "runs" / "nan", [3.0, float("nan"), 2.0, float("inf")], evals={3: 2.5})
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0, start="runs",
                   open_run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: "final loss" in text_of(app, "#mon-summary"), 10, "the summary")
        assert "final loss 2.0000 · best loss 2.0000 · best eval 2.5000 at step 3" in text_of(app, "#mon-summary")
        train, evals = app.screen.query_one("#loss-chart").data
        assert (train.values, evals.values) == ((3.0, 2.0), (2.5,))
        assert "step 4/4" in text_of(app, "#mon-progress-text")


@pytest.mark.parametrize("building", [True, False])
async def test_a_starting_run_says_what_it_is_doing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    building: bool) -> None:
    import os

    cache = tmp_path / "cache"
    (cache / (".demo-model.x1y2" if building else "demo-model")).mkdir(parents=True)
    monkeypatch.setenv("LORA_TUI_CACHE", str(cache))
    run = recorded_run(tmp_path / "runs" / "new", [], state="running", pid=os.getpid())
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0, start="runs",
                   open_run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: "Starting:" in text_of(app, "#mon-summary"), 10, "the note")
        note = text_of(app, "#mon-summary")
        assert ("builds the demo model in " + str(cache)) in note if building else "builds" not in note


async def test_runs_over_a_wizard_step_and_back_returns_to_it(tmp_path: Path) -> None:
    recorded_run(tmp_path / "runs" / "alpha", [3.0, 2.5, 2.0])
    app = make_app(hardware_probe=fakes.probe(8), gpu_query=fakes.gpu_query(8), launcher=fakes.FakeLauncher(),
                   runs_root=tmp_path / "runs", gpu_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await waits.settle(pilot)
        await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert app.screen.STEP == "data"
        await pilot.press("ctrl+r")
        await waits.settle(pilot)
        app.screen.query_one("#runs-table").focus()
        await pilot.press("enter")
        await waits.wait_until(pilot, lambda: type(app.screen).__name__ == "MonitorScreen", 10, "the monitor")
        await pilot.press("ctrl+r")  # the runs list again: the monitor closes, the list is not stacked twice
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "RunsScreen" and len(app.screen_stack) == 3
        await pilot.press("escape")
        await waits.settle(pilot)
        assert getattr(app.screen, "STEP", None) == "data"
