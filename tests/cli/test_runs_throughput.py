"""`lora-tui runs show`: the run's useful throughput, padding share and time to first step (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.cli import main
from lora_tui.core import run_files
from lora_tui.core.run_files import Timings, TrainingInfo
from tests.helpers.run_dirs import recorded_run


def test_show_gives_useful_and_trained_tokens_per_second_and_padding(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = recorded_run(tmp_path / "run", [2.0, 1.8])
    run_files.write_training_info(run, TrainingInfo(
        state="finished", steps=2, tokens_seen=24_000, trained_tokens=12_000, tokens_per_second=2_400.0,
        padding_share=0.083, timings=Timings(started_at=100.0, train_loop_seconds=10.0, first_step_at=105.25)))
    assert main(["runs", "show", str(run)]) == 0
    assert ("throughput: 2,400 useful tok/s (non-padding), 1,200 trained tok/s (loss-carrying), padding 8%; "
            "first step 5.2 s after the start") in capsys.readouterr().out.splitlines()


def test_show_leaves_the_line_out_for_a_run_that_measured_none(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = recorded_run(tmp_path / "old", [2.0])
    run_files.write_training_info(run, TrainingInfo(state="finished", steps=1, tokens_seen=10))
    assert main(["runs", "show", str(run)]) == 0
    assert "throughput:" not in capsys.readouterr().out
