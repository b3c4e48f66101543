"""Snapshots of each screen at 80x24 and 120x40 (fixed fake hardware and data, relative paths, no clocks)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lora_tui.core import runs
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temporary directory so every path shown is relative and the same on every machine, with an empty
    cache (whether another test built the demo model must not change what the screens show)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_TUI_CACHE", "cache")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    return tmp_path


def finished_run(root: Path) -> Path:
    run = root / "demo-run"
    run.mkdir(parents=True)
    (run / runs.RUN_FILE).write_text(TrainingPlan(output=str(run)).to_toml(), encoding="utf-8")
    with open(run / runs.METRICS_FILE, "w", encoding="utf-8") as fh:
        for i in range(1, 41):
            rec = {"step": i, "epoch": i / 20, "loss": round(1.0 + 2.0 * 0.93**i, 4), "learning_rate": 5e-5,
                   "grad_norm": 1.0 + (i % 5) / 10, "tokens_per_second": 1200.0}
            if i % 10 == 0:
                rec["eval_loss"] = round(1.1 + 2.0 * 0.93**i, 4)
            fh.write(json.dumps(rec) + "\n")
    (run / runs.LOG_FILE).write_text("".join(f"step {i}/40\n" for i in range(1, 41)), encoding="utf-8")
    (run / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run / "adapter_model.safetensors").write_bytes(b"x")
    runs.write_status(run, runs.RunStatus(state="finished", started_at=1000.0, ended_at=1125.0, step=40,
                                          max_steps=40, adapter_dir="."))
    return run


def app_for(gpu_gib: int | None, **kwargs):
    return make_app(hardware_probe=fakes.probe(gpu_gib), gpu_query=fakes.gpu_query(gpu_gib),
                    launcher=fakes.FakeLauncher(), runs_root=Path("runs"), gpu_interval=0, **kwargs)


async def _wait(pilot) -> None:
    await waits.settle(pilot)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("gpu_gib", [None, 24])
def test_hardware(snap_compare, workdir: Path, size: tuple[int, int], gpu_gib: int | None) -> None:
    assert snap_compare(app_for(gpu_gib), terminal_size=size, run_before=_wait)


@pytest.mark.parametrize("size", SIZES)
def test_advisor(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    async def go(pilot) -> None:
        await _wait(pilot)
        for _ in range(3):
            await pilot.press("ctrl+n")
            await _wait(pilot)

    assert snap_compare(app_for(8), terminal_size=size, run_before=go)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(8), terminal_size=size, press=["f1"], run_before=_wait)


@pytest.mark.parametrize("size", SIZES)
def test_monitor_finished(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    run = finished_run(Path("runs"))

    async def until_summary(pilot) -> None:
        await waits.wait_until(pilot, lambda: "Adapter:" in str(pilot.app.screen.query_one("#mon-summary").render()),
                               10, "the summary")
        await pilot.wait_for_scheduled_animations()  # the log pane keeps to its end by itself

    assert snap_compare(app_for(None, start="runs", open_run=run), terminal_size=size, run_before=until_summary)


def overfitting_run(root: Path) -> Path:
    """A finished run whose eval loss rose after step 15, with run.log lines longer than the log pane."""
    run = root / "overfit-run"
    run.mkdir(parents=True)
    (run / runs.RUN_FILE).write_text(TrainingPlan(output=str(run), eval_split=0.05).to_toml(), encoding="utf-8")
    evals = {10: 1.6, 15: 1.5, 20: 1.6, 25: 1.7, 30: 1.8}
    with open(run / runs.METRICS_FILE, "w", encoding="utf-8") as fh:
        for i in range(1, 31):
            rec = {"step": i, "epoch": i / 15, "loss": round(2.0 - 0.05 * i, 4), "learning_rate": 5e-5,
                   "grad_norm": 0.6778, "tokens_per_second": 1234.0}
            if i in evals:
                rec["eval_loss"] = evals[i]
            fh.write(json.dumps(rec) + "\n")
    (run / runs.LOG_FILE).write_text("".join(
        f"step {i}/30  epoch {i / 15:.2f}  loss {2.0 - 0.05 * i:.4f}  grad norm 0.6778  lr 4.87e-5  1,234 tok/s\n"
        for i in range(1, 31)), encoding="utf-8")
    (run / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run / "adapter_model.safetensors").write_bytes(b"x")
    runs.write_status(run, runs.RunStatus(state="finished", started_at=1000.0, ended_at=1125.0, step=30,
                                          max_steps=30, adapter_dir="."))
    return run


@pytest.mark.parametrize(("size", "presses"), [((80, 24), []), ((80, 24), ["d"]), ((120, 40), [])])
def test_monitor_advice_and_summary(snap_compare, workdir: Path, size: tuple[int, int], presses: list[str]) -> None:
    """Advice and summary both shown: at 80x24 in one line each (or in full after `d`, scrolling), the log keeps
    its lines, wrapped, with the last one at the bottom; the best eval step is marked on the chart."""
    run = overfitting_run(Path("runs"))

    async def until_advice(pilot) -> None:
        screen = pilot.app.screen
        await waits.wait_until(pilot, lambda: "Adapter:" in str(screen.query_one("#mon-summary").render())
                               and screen.symptoms, 10, "the summary and the advice")
        for key in presses:
            await pilot.press(key)
        await waits.settle(pilot)
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(app_for(None, start="runs", open_run=run), terminal_size=size, run_before=until_advice)


@pytest.mark.parametrize("size", SIZES)
def test_runs(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    finished_run(Path("runs"))
    assert snap_compare(app_for(None, start="runs"), terminal_size=size, run_before=_wait)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("step", "presses"), [("data", 1), ("task", 2), ("review", 4)])
def test_wizard_step(snap_compare, workdir: Path, size: tuple[int, int], step: str, presses: int) -> None:
    # a data file inside the working directory, so the path shown is the same on every machine
    sample = SAMPLE_DATA_PATH.read_text(encoding="utf-8").splitlines(keepends=True)[:40]
    Path("chats.jsonl").write_text("".join(sample), encoding="utf-8")

    async def go(pilot) -> None:
        await _wait(pilot)
        for _ in range(presses):
            await pilot.press("ctrl+n")
            await _wait(pilot)

    app = app_for(8, plan=TrainingPlan(data="chats.jsonl", output="runs/lora-run"))
    assert snap_compare(app, terminal_size=size, run_before=go)


@pytest.mark.parametrize("size", SIZES)
def test_adapters(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    from tests.helpers.adapter_fakes import fake_adapter

    fake_adapter(Path("runs") / "chat-adapter-with-a-long-descriptive-name", losses=[2.0, 1.5, 1.25])
    fake_adapter(Path("runs") / "failed-run", state="failed", weights=False)

    async def go(pilot) -> None:
        await _wait(pilot)
        await pilot.press("ctrl+a")
        await _wait(pilot)

    assert snap_compare(app_for(None, start="runs"), terminal_size=size, run_before=go)


@pytest.mark.parametrize("size", SIZES)
def test_compare(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    first = finished_run(Path("runs"))
    second = Path("runs") / "demo-run-r32"
    second.mkdir(parents=True)
    (second / runs.RUN_FILE).write_text(TrainingPlan(output=str(second), lora_r=32, lora_alpha=64,
                                                     learning_rate=2e-4).to_toml(), encoding="utf-8")
    with open(second / runs.METRICS_FILE, "w", encoding="utf-8") as fh:
        for i in range(1, 31):
            rec = {"step": i, "loss": round(0.8 + 2.2 * 0.9**i, 4), "tokens_per_second": 900.0}
            if i % 10 == 0:
                rec["eval_loss"] = round(1.0 + 2.2 * 0.9**i, 4)
            fh.write(json.dumps(rec) + "\n")
    runs.write_status(second, runs.RunStatus(state="stopped", started_at=2000.0, ended_at=2090.0, step=30,
                                             max_steps=40))
    assert snap_compare(app_for(None, start="runs", open_compare=[first, second]), terminal_size=size,
                        run_before=_wait)
