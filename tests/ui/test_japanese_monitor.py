"""The monitor in Japanese on a finished run of two machines x two GPUs (a demo-like run whose eval loss rose, with
every GPU's peak memory recorded): no message left in English but names (the symptoms and remedies included), every
message from the catalogue, the world and each machine's memory shown; snapshots at 80x24 and 120x40."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_tui import i18n
from lora_tui.core import run_files, runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import LaunchInfo, MetricsRecord, RankMemory, TrainingInfo
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.japanese import english_words, screen_texts
from tests.ui.test_japanese import japanese  # noqa: F401 - the fixture

SIZES = [(80, 24), (120, 40)]
GIB = 1024**3
def two_node_run(root: Path) -> Path:
    """A finished demo run of 2 machines x 2 GPUs whose eval loss rose after step 15, its adapter the best step."""
    run = root / "demo-run"
    run.mkdir(parents=True)
    plan = TrainingPlan(output=str(run), eval_split=0.05, nnodes=2, num_processes=2, master_addr="10.0.0.1")
    (run / runs.RUN_FILE).write_text(plan.to_toml(), encoding="utf-8")
    evals = {10: 1.6, 15: 1.5, 20: 1.6, 25: 1.7, 30: 1.8}
    ranks = [RankMemory(rank=n * 2 + g, node=n, local_rank=g, device="cuda", peak_bytes=int((3.2 + n / 2 + g / 10)
                                                                                         * GIB),
                        reserved_bytes=4 * GIB, total_bytes=24 * GIB) for n in range(2) for g in range(2)]
    with run_files.open_metrics(run) as fh:
        for i in range(1, 31):
            run_files.append_metrics(fh, MetricsRecord(
                step=i, epoch=i / 15, loss=round(2.0 - 0.05 * i, 4), learning_rate=5e-5, grad_norm=0.6778,
                tokens_per_second=1234.0, padding_share=0.1, eval_loss=evals.get(i), ranks=ranks if i == 3 else None))
    (run / runs.LOG_FILE).write_text("".join(f"step {i}/30  loss {2.0 - 0.05 * i:.4f}\n" for i in range(1, 31)),
                                     encoding="utf-8")
    (run / "adapter_config.json").write_text("{}", encoding="utf-8")
    (run / "adapter_model.safetensors").write_bytes(b"x")
    run_files.write_launch_info(run, LaunchInfo(memory_estimate={"total_bytes": 3 * GIB}))
    run_files.write_training_info(run, TrainingInfo(state="finished", world_size=4, adapter_step=15,
                                                    adapter_kept="best", adapter_eval_loss=1.5))
    measured = {"device": "cuda", "peak_allocated_bytes": int(3.2 * GIB), "peak_reserved_bytes": 4 * GIB}
    runs.write_status(run, runs.RunStatus(state="finished", started_at=1000.0, ended_at=1125.0, step=30,
                                          max_steps=30, adapter_dir=".", extra={"world_size": 4, "memory": measured}))
    return run


def _app(run: Path):
    return make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None), launcher=fakes.FakeLauncher(),
                    runs_root=Path("runs"), gpu_interval=0, start="runs", open_run=run)


def _left_in_english(screen) -> dict[str, list[str]]:
    """English words each widget shows, the run's own log left out (run.log is a run file, English by design)."""
    found = {}
    for where, text in screen_texts(screen, skip=("mon-log",)).items():
        words = english_words(text)
        if words:
            found[where] = words
    return found


async def _until_shown(pilot) -> None:
    screen = pilot.app.screen
    await waits.wait_until(pilot, lambda: "アダプター:" in str(screen.query_one("#mon-summary").render())
                           and screen.symptoms, 10, "the summary and the advice")
    await waits.settle(pilot)
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("size", SIZES)
async def test_the_monitor_is_japanese(japanese: Path, size: tuple[int, int]) -> None:  # noqa: F811
    run = two_node_run(Path("runs"))
    app = _app(run)
    async with app.run_test(size=size) as pilot:
        await _until_shown(pilot)
        screen = app.screen
        texts = screen_texts(screen)
        status = texts[next(k for k in texts if k.startswith("mon-status"))]
        assert "完了  ワールドサイズ 4（2 ノード × 2 プロセス）" in status
        assert "見積もり 3.00 GiB" in status
        if size == (120, 40):  # each machine and each GPU on a tall screen
            assert "ノード 1: GPU 2 台で確保済みのピーク計 7.5 GiB（GPU0 3.7/24.0 GiB、GPU1 3.8/24.0 GiB）" in status
        else:  # every machine in one line on a short one
            assert "\n  ノードごとの確保済みのピーク: ノード 0 6.5 GiB、ノード 1 7.5 GiB" in status
        progress = texts[next(k for k in texts if k.startswith("mon-progress-text"))]
        assert progress.startswith("ステップ 30/30 · エポック 2.00 · 1,234 tok/s · パディング 10%")
        assert "⚠ " in " ".join(texts.values()) and "a:" in " ".join(texts.values())
        assert "再開" in texts["footer"] and "解決策を適用" in texts["footer"] and "詳細" in texts["footer"]
        assert _left_in_english(screen) == {}
        if size == (80, 24):  # the advice and the summary in full too
            await pilot.press("d")
            await waits.settle(pilot)
            summary = str(screen.query_one("#mon-summary").render())
            assert "アダプター: runs/demo-run（ステップ 15、評価損失が最も低いもの 1.5000（keep: best））" in summary
            assert "ほかの解決策:" in str(screen.query_one("#mon-advice").render())
            assert "ノード 0: GPU 2 台で" in str(screen.query_one("#mon-details").render())  # each GPU, in the notes
            assert _left_in_english(screen) == {}
    assert i18n.missing == set()


@pytest.mark.parametrize("size", SIZES)
def test_ja_monitor_snapshots(snap_compare, japanese: Path, size: tuple[int, int]) -> None:  # noqa: F811
    run = two_node_run(Path("runs"))
    assert json.loads((run / runs.STATUS_FILE).read_text())["extra"]["world_size"] == 4
    assert snap_compare(_app(run), terminal_size=size, run_before=_until_shown)


async def test_the_live_gpu_line_shows_nvmls_status_in_japanese(japanese: Path,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML's status is an English Phrase (it is data too); the TUI's real GPU query keeps it one, so the monitor's
    GPU line shows it translated."""
    import pynvml

    from lora_tui.core.hardware import detect
    from lora_tui.ui.app import _default_gpu_query
    from lora_tui.ui.messages import GpusSampled
    from tests.helpers.fake_nvml import FakeNvml

    monkeypatch.setattr(detect, "_load_nvml", lambda: FakeNvml([], init_error=pynvml.NVMLError_LibraryNotFound))
    gpus, status = _default_gpu_query()
    run = two_node_run(Path("runs"))
    app = _app(run)
    async with app.run_test(size=(120, 40)) as pilot:
        await _until_shown(pilot)
        app.screen.post_message(GpusSampled(tuple(gpus), status))
        await waits.settle(pilot)
        line = str(app.screen.query_one("#mon-gpu").render())
        assert line.startswith("GPU: なし（NVML のライブラリが見つかりません"), line
        assert english_words(line) == [], line
