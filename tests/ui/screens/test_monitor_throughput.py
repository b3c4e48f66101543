"""The monitor's progress line shows the run's useful throughput and its padding share (issue 16)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from lora_tui.core import run_files
from lora_tui.core.run_files import MetricsRecord
from lora_tui.ui.app import make_app
from tests.helpers import ui_fakes as fakes
from tests.helpers import waits
from tests.helpers.run_dirs import recorded_run


async def test_progress_line_shows_useful_tokens_per_second_and_padding(tmp_path: Path) -> None:
    run = recorded_run(tmp_path / "runs" / "speed", [3.0, 2.5])
    with run_files.open_metrics(run) as fh:  # the line the training process writes with its token tally
        run_files.append_metrics(fh, MetricsRecord(step=3, epoch=1.0, loss=2.2, tokens_per_second=1234.4,
                                                   trained_tokens_per_second=600.0, padding_share=0.124))
    app = make_app(hardware_probe=fakes.probe(None), gpu_query=fakes.gpu_query(None),
                   launcher=fakes.FakeLauncher(), runs_root=tmp_path / "runs", gpu_interval=0, start="runs",
                   open_run=run)
    async with app.run_test(size=(120, 40)) as pilot:
        def progress() -> str:
            return str(app.screen.query_one("#mon-progress-text", Static).render())

        await waits.wait_until(pilot, lambda: "tok/s" in progress(), 10, "the progress line")
        assert "epoch 1.00 · 1,234 tok/s · padding 12% · " in progress()
