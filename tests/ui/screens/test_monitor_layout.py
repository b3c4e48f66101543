"""The monitor as a person reads it: the log keeps up with the bar and wraps, the best eval step, the advice and
summary that fold away on a short screen, keys instead of commands, early stopping on `a`, the demo build."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.widgets import ProgressBar, Static

from lora_tui.core import run_files, runs
from lora_tui.core.demo_progress import write_progress
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import MetricsRecord
from lora_tui.ui.app import make_app
from lora_tui.ui.widgets.chart import LineChart
from lora_tui.ui.widgets.wrapped_log import WrappedLog
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.run_dirs import recorded_run

SIZES = [(80, 24), (120, 40)]
LONG = "step {i}/{n}  epoch 1.62  loss 5.4894  grad norm 0.6778  lr 4.87e-5  1,234 tok/s"
OVERFIT_LOSSES = [2.0 - 0.05 * i for i in range(30)]
OVERFIT_EVALS = {10: 1.6, 15: 1.5, 20: 1.6, 25: 1.7, 30: 1.8}


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def visible_log(app) -> list[str]:
    """The log rows on screen now."""
    log = app.screen.query_one("#mon-log", WrappedLog)
    top, height = round(log.scroll_y), log.scrollable_content_region.height
    return [row for row in log.lines[top:top + height]]


def last_log_step(app) -> int:
    rows = [r for r in visible_log(app) if r.startswith("step ")]
    return int(rows[-1].split()[1].split("/")[0])


def bar_step(app) -> int:
    return int(text_of(app, "#mon-progress-text").split()[1].split("/")[0])


def monitor_app(root: Path, run: Path, **kwargs):
    return make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                    runs_root=root, gpu_interval=0, start="runs", open_run=run, **kwargs)


def extend_run(run: Path, start: int, stop: int, max_steps: int) -> None:
    """The trainer goes on: steps start..stop-1 appended to metrics, log and status."""
    with run_files.open_metrics(run) as fh:
        for i in range(start, stop):
            run_files.append_metrics(fh, MetricsRecord(step=i, epoch=i / max_steps, loss=1.0, learning_rate=5e-5,
                                                       grad_norm=1.0))
    with open(run / runs.LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write("".join(f"step {i}\n" for i in range(start, stop)))
    runs.update_status(run, step=stop - 1)


@pytest.mark.parametrize("size", SIZES)
async def test_after_reattaching_the_log_is_not_behind_the_bar(tmp_path: Path, size: tuple[int, int]) -> None:
    # 61 steps done of 100, the monitor opened over the running run (as after leaving it and coming back); the
    # overfitting evals make the advice appear, which shortens the log pane after its first fill
    losses = [2.0 - 0.01 * i for i in range(61)]
    run = recorded_run(tmp_path / "runs" / "r", losses, evals={10: 1.6, 20: 1.5, 40: 1.7, 61: 1.8},
                       state="running", max_steps=100, pid=os.getpid())
    app = monitor_app(tmp_path / "runs", run, poll_interval=0.05)
    async with app.run_test(size=size) as pilot:
        await waits.wait_until(pilot, lambda: "step 61/100" in text_of(app, "#mon-progress-text"), 10, "the bar")
        await waits.wait_until(pilot, lambda: app.screen.symptoms, 10, "the advice")
        # behind, the log stays behind for good (the bug this guards): a few seconds is time enough to catch up
        await waits.wait_until(pilot, lambda: last_log_step(app) == 61, 5, "the log at the bar's step")
        assert bar_step(app) == 61
        extend_run(run, 62, 75, 100)
        await waits.wait_until(pilot, lambda: bar_step(app) == 74, 10, "the next poll")
        await waits.wait_until(pilot, lambda: last_log_step(app) == 74, 5, "the log at the bar's step")


@pytest.mark.parametrize("size", SIZES)
async def test_long_log_lines_wrap_instead_of_being_cut(tmp_path: Path, size: tuple[int, int]) -> None:
    run = recorded_run(tmp_path / "runs" / "r", [3.0 - 0.01 * i for i in range(30)])
    (run / runs.LOG_FILE).write_text("".join(LONG.format(i=i, n=30) + "\n" for i in range(1, 31)), encoding="utf-8")
    app = monitor_app(tmp_path / "runs", run)
    async with app.run_test(size=size) as pilot:
        await waits.wait_until(pilot, lambda: "final loss" in text_of(app, "#mon-summary"), 10, "the summary")
        await pilot.pause(0.2)
        log = app.screen.query_one("#mon-log", WrappedLog)
        width = log.scrollable_content_region.width
        assert width < len(LONG)  # the lines are longer than the pane at both sizes
        assert all(cell_len(row) <= width for row in log.lines)
        assert " ".join(" ".join(visible_log(app)).split()).endswith(" ".join(LONG.format(i=30, n=30).split()))


async def test_the_best_eval_step_is_marked_and_named(tmp_path: Path) -> None:
    run = recorded_run(tmp_path / "runs" / "r", OVERFIT_LOSSES, evals=OVERFIT_EVALS)
    app = monitor_app(tmp_path / "runs", run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: "final loss" in text_of(app, "#mon-summary"), 10, "the summary")
        chart = app.screen.query_one("#loss-chart", LineChart)
        assert chart.mark is not None and (chart.mark.step, chart.mark.value) == (15, 1.5)
        assert chart.data[1].steps == (10, 15, 20, 25, 30)  # eval points sit at their steps
        assert "◆ best eval 1.5000 at step 15" in str(chart.render())
        assert "best eval 1.5000 at step 15" in text_of(app, "#mon-summary")
        assert "best eval 1.5000 at step 15" in text_of(app, "#mon-summary-brief")


def _finished_with_adapter(run: Path) -> Path:
    (run / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": 32}), encoding="utf-8")
    (run / "adapter_model.safetensors").write_bytes(b"x")
    runs.update_status(run, adapter_dir=".")
    return run


@pytest.mark.parametrize("others", [0, 1])
async def test_the_summary_offers_the_adapters_screen_not_a_command(tmp_path: Path, others: int) -> None:
    root = tmp_path / "runs"
    run = _finished_with_adapter(recorded_run(root / "mine", [3.0, 2.5, 2.0]))
    for i in range(others):
        _finished_with_adapter(recorded_run(root / f"newer-{i}", [3.0, 2.9]))
    os.utime(run / runs.STATUS_FILE, (1, 1))  # a newer run is listed first
    app = monitor_app(root, run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: "Adapter:" in text_of(app, "#mon-summary"), 10, "the summary")
        for selector in ("#mon-summary", "#mon-summary-brief", "#mon-advice"):
            shown = text_of(app, selector)
            assert "lora-tui" not in shown and "--" not in shown, shown
        assert "o: open it on the Adapters screen" in text_of(app, "#mon-summary")
        await pilot.press("o")
        await waits.wait_until(pilot, lambda: type(app.screen).__name__ == "AdaptersScreen", 10, "the Adapters")
        await pilot.pause(0.2)
        selected = app.screen.selected
        assert selected is not None and Path(selected.run_dir).resolve() == run.resolve()
        assert len(app.screen.adapters) == 1 + others
        await waits.wait_until(pilot, lambda: "Select an adapter" not in str(
            app.screen.query_one("#adapter-details", Static).render()), 10, "the adapter's details")


async def test_o_before_the_adapter_exists_says_so(tmp_path: Path) -> None:
    run = recorded_run(tmp_path / "runs" / "r", [3.0, 2.5], state="running", max_steps=10, pid=os.getpid())
    app = monitor_app(tmp_path / "runs", run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: app.screen.status is not None, 10, "the status")
        await pilot.press("o")
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "MonitorScreen"


def _overfit_run(root: Path, eval_split: float) -> Path:
    run = recorded_run(root / "over", OVERFIT_LOSSES, evals=OVERFIT_EVALS, state="running", max_steps=100,
                       pid=None)
    plan = TrainingPlan(output=str(run), lora_r=16, lora_alpha=32, learning_rate=5e-5, eval_split=eval_split)
    (run / runs.RUN_FILE).write_text(plan.to_toml(), encoding="utf-8")
    return run


@pytest.mark.parametrize("eval_split", [0.0, 0.1])
async def test_a_applies_early_stopping_to_an_overfitting_run(tmp_path: Path, eval_split: float) -> None:
    run = _overfit_run(tmp_path / "runs", eval_split)
    app = monitor_app(tmp_path / "runs", run)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.wait_until(pilot, lambda: app.screen.symptoms, 10, "a diagnosis")
        symptom = app.screen.symptoms[0]
        assert symptom.key == "overfitting"
        # early stopping leads, labelled as beyond the guide, and keeps (or brings) the eval split it watches
        expected = {"early_stopping": 3} if eval_split else {"early_stopping": 3, "eval_split": 0.05}
        assert symptom.changes == expected
        advice = text_of(app, "#mon-advice")
        assert "remedy (beyond the guide): early stopping off -> 3" in advice and "--" not in advice
        assert "dropout 0.05 -> 0.1 (the guide's)" in advice
        await pilot.press("a")
        await waits.settle(pilot)
        assert app.screen.STEP == "review"
        plan = app.state.plan
        assert plan.early_stopping == 3 and plan.eval_split == (eval_split or 0.05)
        assert Path(plan.output) != run


async def test_advice_and_summary_fold_on_a_short_screen_and_d_switches(tmp_path: Path) -> None:
    run = recorded_run(tmp_path / "runs" / "r", OVERFIT_LOSSES, evals=OVERFIT_EVALS)
    app = monitor_app(tmp_path / "runs", run)
    async with app.run_test(size=(80, 24)) as pilot:
        await waits.wait_until(pilot, lambda: "final loss" in text_of(app, "#mon-summary"), 10, "the summary")
        await waits.wait_until(pilot, lambda: app.screen.symptoms, 10, "the advice")
        await pilot.pause(0.2)
        screen = app.screen

        def shown() -> set[str]:
            return {n for n in ("mon-advice", "mon-advice-brief", "mon-summary", "mon-summary-brief")
                    if screen.query_one(f"#{n}").display}

        log = screen.query_one("#mon-log", WrappedLog)
        assert shown() == {"mon-advice-brief", "mon-summary-brief"} and not screen.details_shown()
        assert log.scrollable_content_region.height >= 4 and log.region.bottom <= screen.size.height - 1
        await pilot.press("d")
        await pilot.pause(0.2)
        assert shown() == {"mon-advice", "mon-summary"} and screen.details_shown()
        assert log.scrollable_content_region.height >= 4 and log.region.bottom <= screen.size.height - 1
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert shown() == {"mon-advice", "mon-summary"}
        await pilot.press("d")
        await pilot.pause(0.2)
        assert shown() == {"mon-advice-brief", "mon-summary-brief"}


async def test_a_run_waiting_for_the_demo_build_shows_its_progress(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    building = cache / ".demo-model.x1y2"
    building.mkdir(parents=True)
    monkeypatch.setenv("LORA_TUI_CACHE", str(cache))
    write_progress(building, stage="pretraining", step=37, total=100, elapsed=33.0)
    run = recorded_run(tmp_path / "runs" / "new", [], state="running", pid=os.getpid())
    app = monitor_app(tmp_path / "runs", run, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await waits.wait_until(pilot, lambda: "building the demo model" in text_of(app, "#mon-progress-text"),
                               10, "the build's progress")
        assert text_of(app, "#mon-progress-text").startswith("building the demo model: step 37/100, about ")
        bar = app.screen.query_one("#mon-progress", ProgressBar)
        assert (bar.total, bar.progress) == (100, 37)
        write_progress(building, stage="pretraining", step=80, total=100, elapsed=72.0)
        await waits.wait_until(pilot, lambda: "step 80/100" in text_of(app, "#mon-progress-text"), 10, "an update")
        extend_run(run, 1, 3, 10)  # the model is built and training has begun: the run's own steps again
        building.rename(cache / "demo-model")
        await waits.wait_until(pilot, lambda: text_of(app, "#mon-progress-text").startswith("step 2/"), 10,
                               "the run's steps")
        assert app.screen.build is None
