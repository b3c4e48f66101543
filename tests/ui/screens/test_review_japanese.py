"""The Review step's launch in Japanese through the app's real launcher: a refusal the launch's own checks make
(the output directory filled after the screen checked it, a tracker that is not installed) reads in Japanese, a
launch writes English run files, and the sweep's toast is Japanese."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.widgets import Static

from lora_tui import i18n
from lora_tui.core import launcher, runs, sweep
from lora_tui.core.paths import SAMPLE_DATA_PATH
from lora_tui.core.plan import TrainingPlan
from lora_tui.ui import app as app_module
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.japanese import english_words, plain


@pytest.fixture
def japanese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_TUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    i18n.missing.clear()
    i18n.set_language("ja")
    yield tmp_path
    i18n.set_language("en")


def _app(tmp_path: Path, launch: Any = None, start: str = "review"):
    data = tmp_path / "chats.jsonl"
    data.write_text(SAMPLE_DATA_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=launch,
                    runs_root=tmp_path / "runs", gpu_interval=0, start=start,
                    plan=TrainingPlan(data=str(data), output=str(tmp_path / "runs" / "r"), max_steps=4))


def _error(app) -> str:
    return plain(app.screen.query_one("#error", Static).content).strip()


async def _launch(pilot) -> str:
    """Press Launch and wait for the refusal on the screen."""
    await waits.settle(pilot)
    assert type(pilot.app.screen).__name__ == "ReviewScreen" and _error(pilot.app) == ""
    await pilot.press("ctrl+l")
    await waits.wait_until(pilot, lambda: _error(pilot.app), what="the launch's refusal")
    return _error(pilot.app)


async def test_an_output_directory_filled_after_the_check_is_refused_in_japanese(japanese: Path) -> None:
    out = japanese / "runs" / "r"

    def another_process_writes_there_first(resolved: Any, **kwargs: Any) -> Any:
        out.mkdir(parents=True)
        (out / "notes.txt").write_text("mine\n", encoding="utf-8")
        return app_module._default_launcher(resolved, **kwargs)

    app = _app(japanese, another_process_writes_there_first)
    async with app.run_test(size=(120, 40)) as pilot:
        error = await _launch(pilot)
        assert type(app.screen).__name__ == "ReviewScreen"
    assert "ディレクトリが空ではありません" in error, error
    assert english_words(error, left_for_later=(r"--\w+",)) == [] and i18n.missing == set()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written


async def test_a_tracker_that_is_not_installed_is_refused_in_japanese(japanese: Path) -> None:
    app = _app(japanese)
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        app.state.update(report_to="wandb")
        error = await _launch(pilot)
    assert error == "--report-to wandb: wandb パッケージが入っていません。インストールする（`pip install wandb`）か、" \
                    "--report-to none にしてください"
    assert not (japanese / "runs" / "r").exists() and i18n.missing == set()


async def test_a_launch_in_japanese_writes_english_run_files(japanese: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Path] = []

    def start_worker(run_dir: Path, **kwargs: Any) -> Any:
        started.append(run_dir)
        return SimpleNamespace(pid=4242)

    monkeypatch.setattr(launcher, "start_worker", start_worker)
    app = _app(japanese, start="hardware")
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(4):  # every step, so the Data step's report and the Advisor's reasons are the launch's
            await waits.settle(pilot)
            await pilot.press("ctrl+n")
        await waits.settle(pilot)
        assert type(app.screen).__name__ == "ReviewScreen"
        await pilot.press("ctrl+l")
        await waits.wait_until(pilot, lambda: started, what="the training process's start")
        await waits.wait_until(pilot, lambda: type(app.screen).__name__ == "MonitorScreen", what="the monitor")
        await waits.settle(pilot)
    run_dir = started[0]
    info = json.loads((run_dir / runs.LAUNCH_FILE).read_text(encoding="utf-8"))
    texts = [*info["reasons"].values(), info["data_report"]["size_tier_meaning"],
             *(part["label"] for part in info["memory_estimate"]["parts"])]
    assert all(text.isascii() for text in texts), [t for t in texts if not t.isascii()]
    assert "of 360 examples" in info["reasons"]["eval_split"] and info["data_report"]["examples"] == 360
    assert (run_dir / runs.RUN_FILE).read_text(encoding="utf-8").isascii()


async def test_the_sweep_started_toast_is_japanese(japanese: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "start_detached", lambda plan, grid, root: (root / "sweep-r", 4321))
    app = _app(japanese, fakes.FakeLauncher())
    async with app.run_test(size=(120, 40)) as pilot:
        await waits.settle(pilot)
        await pilot.press("f6")
        await pilot.press(*"lora_r=8,16", "enter")
        await waits.settle(pilot)
        toast = next(n for n in app._notifications if "スイープ" in n.message)
    assert toast.title == "スイープ"
    assert toast.message.startswith("スイープを ")
    assert toast.message.endswith("で開始しました（pid 4321）。各実行は始まるとここに表示され、最後に results.csv "
                                  "が書かれます。")
    assert english_words(toast.message, left_for_later=(r"\S*sweep-r", r"results\.csv")) == []
