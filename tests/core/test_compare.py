"""core.compare: the numbers of each run, from its own files, whatever its state; the settings that differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_tui.core import compare, run_files, runs
from lora_tui.core.plan import TrainingPlan
from lora_tui.core.run_files import LaunchInfo, MemoryCheck, Timings, TrainingInfo
from lora_tui.errors import UserError
from tests.helpers.run_dirs import recorded_run


def _with_numbers(run_dir: Path, *, speeds: list[float], tokens_per_step: int, elapsed_per_step: float) -> None:
    """Rewrite the metrics with throughput, tokens and elapsed time on each line."""
    records, _ = run_files.read_metrics(run_dir)
    (run_dir / runs.METRICS_FILE).unlink()
    with run_files.open_metrics(run_dir) as fh:
        for r, speed in zip(records, speeds, strict=True):
            r.tokens_per_second, r.tokens_seen, r.elapsed = speed, r.step * tokens_per_step, r.step * elapsed_per_step
            run_files.append_metrics(fh, r)


def test_numbers_of_a_finished_a_stopped_and_a_lost_run(tmp_path: Path) -> None:
    done = recorded_run(tmp_path / "done", [2.0, 1.5, 1.7], evals={2: 1.6, 3: 1.65})
    _with_numbers(done, speeds=[100.0, 200.0, 300.0], tokens_per_step=50, elapsed_per_step=2.0)
    run_files.write_launch_info(done, LaunchInfo(memory_estimate={"total_bytes": 3_000_000}))
    run_files.write_training_info(done, TrainingInfo(state="finished", timings=Timings(wall_seconds=42.5),
                                                     memory=MemoryCheck(measured={"peak_allocated_bytes": 2_500_000})))
    stopped = recorded_run(tmp_path / "stopped", [2.2, 2.1], state="stopped")
    lost = recorded_run(tmp_path / "lost", [2.4, 2.3, 2.2, 2.1], state="running", pid=2**22 + 12345)
    runs.update_status(lost, ended_at=None)  # killed: it never wrote its end
    _with_numbers(lost, speeds=[10.0, 20.0, 30.0, 40.0], tokens_per_step=10, elapsed_per_step=3.0)

    result = compare.compare_runs([done, stopped, lost])
    a, b, c = result.runs
    assert (a.state, a.final_loss, a.best_loss, a.best_eval_loss, a.best_step, a.steps) == \
        ("finished", 1.7, 1.5, 1.6, 2, 3)
    assert a.tokens_per_second == pytest.approx(200.0) and a.wall_seconds == 42.5
    assert (a.peak_estimated_bytes, a.peak_measured_bytes) == (3_000_000, 2_500_000)
    assert [(p.step, p.tokens, p.loss) for p in a.eval] == [(2, 100, 1.6), (3, 150, 1.65)]
    assert (b.state, b.final_loss, b.best_eval_loss, b.steps, b.wall_seconds) == ("stopped", 2.1, None, 2, 100.0)
    assert b.tokens_per_second is None and b.peak_measured_bytes is None
    assert (c.state, c.final_loss, c.steps, c.tokens_per_second, c.wall_seconds) == ("lost", 2.1, 4, 25.0, 12.0)
    assert result.differences == []  # recorded_run writes the same plan, output aside


def test_differences_are_the_settings_that_differ_output_excluded(tmp_path: Path) -> None:
    a = recorded_run(tmp_path / "a", [2.0])
    b = recorded_run(tmp_path / "b", [2.0])
    plan = TrainingPlan(output=str(b), lora_r=32, lora_alpha=64, learning_rate=2e-4)
    (b / runs.RUN_FILE).write_text(plan.to_toml(), encoding="utf-8")
    result = compare.compare_runs([a, b])
    assert result.differences == ["lora_r", "lora_alpha", "learning_rate"]
    header, rows = compare.table(result)
    assert header[2:5] == ["lora_r", "lora_alpha", "learning_rate"]
    assert rows[0][2:5] == ["16", "32", "5e-5"] and rows[1][2:5] == ["32", "64", "2e-4"]
    assert result.to_dict()["runs"][1]["settings"]["lora_r"] == 32


def test_sort_key_best_eval_then_final_loss(tmp_path: Path) -> None:
    rows = [compare.read_run(recorded_run(tmp_path / name, losses, evals=evals))
            for name, losses, evals in [("no-eval", [1.0], {}), ("worse", [1.2, 1.1], {2: 1.5}),
                                        ("tie-high", [1.3, 1.4], {1: 1.2}), ("tie-low", [1.3, 1.2], {1: 1.2})]]
    assert [r.name for r in sorted(rows, key=compare.sort_key)] == ["tie-low", "tie-high", "worse", "no-eval"]


def test_refuses_a_non_run_and_a_single_run(tmp_path: Path) -> None:
    a = recorded_run(tmp_path / "a", [2.0])
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="plain: not a run directory"):
        compare.compare_runs([a, tmp_path / "plain"])
    with pytest.raises(UserError, match="at least two"):
        compare.compare_runs([a, tmp_path / "a"])
    with pytest.raises(UserError, match="no such run directory"):
        compare.compare_runs([a, tmp_path / "missing"])
